"""Checkpoints: ``tg.save(obj, path)`` and ``tg.load(path)``, without pickle.

``obj`` is a tree of dicts (any of str/int/float/bool/None/tuple keys), lists, tuples,
str, int, float, bool, None, tg Tensors, torch tensors and numpy arrays: model and
optimizer state dicts, the RNG state (``tg.get_rng_state()``), an epoch counter.
Anything else (a class instance, a function) is refused with a TypeError naming where
it sits in the tree: loading never runs code.

File format (version 1), all integers little-endian::

    offset 0    8 bytes   magic b"TGCKPT\\x00\\x01"
    offset 8    8 bytes   uint64 H: length of the header
    offset 16   H bytes   header: UTF-8 JSON (below)
    then        zero padding to a multiple of 64 bytes: the data section starts there
    data        each tensor's raw bytes, C order, little-endian, at its recorded offset
                (relative to the data section start, 64-byte aligned)
    last 8      trailer b"TGCKEND\\x00", after exactly ``data_bytes`` bytes of data

    header = {"format": "tritongrad-checkpoint", "version": 1,
              "data_bytes": total length of the data section,
              "tensors": [{"name": "model/0.weight", "kind": "tg" | "torch" | "numpy",
                           "dtype": "bfloat16", "shape": [5, 10], "offset": 0,
                           "nbytes": 100, "crc32": 1234567}, ...],
              "tree": <node>}

A tree node is JSON ``null``, ``true``/``false``, a number, a string or a list for
those Python values; every other value is a one-key object: ``{"$dict": [[key, value],
...]}`` (``$odict`` for an OrderedDict), ``{"$tuple": [...]}``, ``{"$float": "nan" |
"inf" | "-inf"}``, ``{"$dtype": "float32"}`` and ``{"$tensor": index into tensors}``.

Every dtype round-trips bit for bit: the bytes are stored as they are in memory.
numpy has no bfloat16, so bf16 (like every dtype) is written through a same-width
integer view and restored from its dtype tag. ``kind`` says what ``load`` returns:
"tg" a tg Tensor on tritongrad's device, "torch" a CPU torch tensor (the RNG state
is one), "numpy" an ndarray. Tensors that shared storage are stored separately.

Writes are atomic: the file is written to a temporary file in the same directory,
flushed and fsync'ed, then renamed over the target (and the directory fsync'ed), so
an interrupted save leaves the previous checkpoint intact. ``load`` checks the magic,
the header, the file length, the trailer and each tensor's CRC-32, and raises
``CheckpointError`` naming the problem.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import struct
import sys
import tempfile
import zlib
from collections import OrderedDict
from typing import Any, BinaryIO

import numpy as np
import torch

from .kernels._checks import TritongradError

MAGIC = b"TGCKPT\x00\x01"
TRAILER = b"TGCKEND\x00"
FORMAT = "tritongrad-checkpoint"
VERSION = 1
ALIGN = 64

_DTYPES = {
    "float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
    "bfloat16": torch.bfloat16, "int64": torch.int64, "int32": torch.int32,
    "int16": torch.int16, "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool,
}
_DTYPE_NAMES = {v: k for k, v in _DTYPES.items()}
# The integer view used to move a dtype's bytes through numpy (which lacks bf16).
_BITS_VIEW = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


class CheckpointError(TritongradError, RuntimeError):
    """A checkpoint file that cannot be read: not ours, truncated, corrupt or too new."""


# --- encoding ----------------------------------------------------------------------------------


class _Encoder:
    def __init__(self) -> None:
        self.tensors: list[dict] = []
        self.arrays: list[np.ndarray] = []
        self.offset = 0

    def tensor(self, value: Any, kind: str, path: str) -> dict:
        data = value._data if kind == "tg" else value
        if kind == "numpy":
            data = torch.from_numpy(np.ascontiguousarray(value))
        if data.dtype not in _DTYPE_NAMES:
            raise TypeError(f"tg.save: {path} has dtype {data.dtype}, which checkpoints do not "
                            f"support (supported: {', '.join(_DTYPES)})")
        host = data.detach().to("cpu")  # a device -> host transfer (no-op on the CPU device)
        # Reinterpret as a same-width integer (metadata only) so numpy can hold any dtype,
        # bf16 included, then lay the bytes out in C order on the host.
        bits = host.view(_BITS_VIEW[host.element_size()])
        array = np.ascontiguousarray(bits.numpy())
        if sys.byteorder == "big":
            array = array.byteswap()
        array = array.reshape(-1).view(np.uint8)  # the raw bytes, 1-D
        nbytes = array.nbytes
        self.tensors.append({
            "name": path, "kind": kind, "dtype": _DTYPE_NAMES[data.dtype],
            "shape": list(data.shape), "offset": self.offset, "nbytes": nbytes,
            "crc32": zlib.crc32(array),
        })
        self.arrays.append(array)
        self.offset += -(-nbytes // ALIGN) * ALIGN
        return {"$tensor": len(self.tensors) - 1}

    def node(self, value: Any, path: str) -> Any:
        from .tensor import Tensor

        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            if math.isfinite(value):
                return value
            return {"$float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
        if isinstance(value, Tensor):
            return self.tensor(value, "tg", path)
        if isinstance(value, torch.Tensor):
            return self.tensor(value, "torch", path)
        if isinstance(value, np.ndarray):
            return self.tensor(value, "numpy", path)
        if isinstance(value, np.generic):
            return self.node(value.item(), path)
        if isinstance(value, torch.dtype):
            return {"$dtype": str(value).replace("torch.", "")}
        if isinstance(value, list):
            return [self.node(v, f"{path}/{i}") for i, v in enumerate(value)]
        if isinstance(value, tuple):
            return {"$tuple": [self.node(v, f"{path}/{i}") for i, v in enumerate(value)]}
        if isinstance(value, dict):
            items = []
            for key, v in value.items():
                if not (key is None or isinstance(key, (str, int, float, bool, tuple))):
                    raise TypeError(f"tg.save: {path} has a key of type {type(key).__name__}; "
                                    "keys must be str, int, float, bool, None or tuples")
                items.append([self.node(key, f"{path}[key]"), self.node(v, f"{path}/{key}")])
            return {"$odict" if isinstance(value, OrderedDict) else "$dict": items}
        raise TypeError(
            f"tg.save: cannot save {type(value).__name__} at {path or 'the top level'}: "
            "checkpoints hold dicts, lists, tuples, numbers, strings, None and tensors "
            "(save a state_dict(), not the object)"
        )


def _encode(obj: Any) -> tuple[bytes, list[np.ndarray], list[dict]]:
    encoder = _Encoder()
    tree = encoder.node(obj, "")
    header = {"format": FORMAT, "version": VERSION, "data_bytes": encoder.offset,
              "tensors": encoder.tensors, "tree": tree}
    return json.dumps(header, allow_nan=False).encode("utf-8"), encoder.arrays, encoder.tensors


def _write_tensor(out: BinaryIO, array: np.ndarray) -> None:
    out.write(array.data)


def _write(out: BinaryIO, header: bytes, arrays: list[np.ndarray], entries: list[dict]) -> None:
    out.write(MAGIC)
    out.write(struct.pack("<Q", len(header)))
    out.write(header)
    start = 16 + len(header)
    out.write(b"\x00" * (-start % ALIGN))
    written = 0
    for array, entry in zip(arrays, entries):
        out.write(b"\x00" * (entry["offset"] - written))
        _write_tensor(out, array)
        written = entry["offset"] + array.nbytes
    total = entries[-1]["offset"] + -(-entries[-1]["nbytes"] // ALIGN) * ALIGN if entries else 0
    out.write(b"\x00" * (total - written))
    out.write(TRAILER)


def _file_mode(path: str) -> int:
    """The existing file's permissions, else what a plain open() would give."""
    try:
        return os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def save(obj: Any, f: str | os.PathLike | BinaryIO) -> None:
    """Write ``obj`` (state dicts, nested dicts and lists, tensors, numbers) to ``f``.

    With a path the write is atomic: a temporary file in the same directory is written,
    fsync'ed and renamed over ``f``, so an interrupted save (an exception, Ctrl-C, a
    crash) leaves any previous checkpoint at ``f`` intact. A binary file object is
    written directly. See the module docstring for the format."""
    header, arrays, entries = _encode(obj)  # refuses unsupported values before any write
    if not isinstance(f, (str, os.PathLike)):
        _write(f, header, arrays, entries)
        return
    path = os.fspath(f)
    directory = os.path.dirname(os.path.abspath(path))
    mode = _file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            _write(out, header, arrays, entries)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # The rename is durable only once the directory entry is on disk (POSIX).
    with contextlib.suppress(OSError, AttributeError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# --- decoding ----------------------------------------------------------------------------------


def _read_all(f: str | os.PathLike | BinaryIO) -> tuple[bytearray, str]:
    if isinstance(f, (str, os.PathLike)):
        name = os.fspath(f)
        with open(name, "rb") as handle:
            return bytearray(handle.read()), repr(name)
    if isinstance(f, (bytes, bytearray)):
        return bytearray(f), "<bytes>"
    return bytearray(f.read()), repr(getattr(f, "name", "<file object>"))


def _tensor(entry: dict, data: bytearray, data_start: int, where: str) -> Any:
    from ._device import DEVICE
    from .tensor import Tensor

    name = entry.get("name") or "<top level>"
    try:
        dtype = _DTYPES[entry["dtype"]]
        shape = tuple(int(s) for s in entry["shape"])
        offset, nbytes, kind = int(entry["offset"]), int(entry["nbytes"]), entry["kind"]
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"checkpoint {where} is corrupt: bad entry for tensor {name} "
                              f"({error!r})") from None
    itemsize = torch.empty((), dtype=dtype).element_size()
    numel = math.prod(shape)
    if numel * itemsize != nbytes:
        raise CheckpointError(f"checkpoint {where} is corrupt: tensor {name} of shape "
                              f"{list(shape)} and dtype {entry['dtype']} records {nbytes} bytes")
    start = data_start + offset
    chunk = memoryview(data)[start:start + nbytes]
    if len(chunk) != nbytes:
        raise CheckpointError(f"checkpoint {where} is truncated: tensor {name} needs bytes "
                              f"{start}..{start + nbytes}, the file has {len(data)}")
    if zlib.crc32(chunk) != entry.get("crc32"):
        raise CheckpointError(f"checkpoint {where} is corrupt: the data of tensor {name} fails "
                              "its CRC-32 check")
    array = np.frombuffer(chunk, dtype=np.dtype(f"<i{itemsize}" if itemsize > 1 else "u1"))
    array = array.astype(array.dtype.newbyteorder("="), copy=True)  # own, native-order copy
    bits = torch.from_numpy(array).view(_BITS_VIEW[itemsize])
    host = bits.view(dtype).reshape(shape)
    if kind == "tg":
        return Tensor(host.to(DEVICE))  # a host -> device transfer (no-op on the CPU device)
    if kind == "torch":
        return host
    if kind == "numpy":
        if dtype == torch.bfloat16:
            raise CheckpointError(f"checkpoint {where}: numpy array {name} cannot be bfloat16")
        return host.numpy()
    raise CheckpointError(f"checkpoint {where} is corrupt: tensor {name} has unknown kind "
                          f"{kind!r}")


def _decode(node: Any, tensors: list, where: str) -> Any:
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, list):
        return [_decode(v, tensors, where) for v in node]
    if isinstance(node, dict) and len(node) == 1:
        (tag, value), = node.items()
        if tag in ("$dict", "$odict"):
            items = [(_hashable(_decode(k, tensors, where)), _decode(v, tensors, where))
                     for k, v in value]
            return OrderedDict(items) if tag == "$odict" else dict(items)
        if tag == "$tuple":
            return tuple(_decode(v, tensors, where) for v in value)
        if tag == "$tensor":
            if not isinstance(value, int) or not 0 <= value < len(tensors):
                raise CheckpointError(f"checkpoint {where} is corrupt: tensor reference "
                                      f"{value!r} out of range")
            return tensors[value]
        if tag == "$float":
            return float(value)
        if tag == "$dtype" and value in _DTYPES:
            return _DTYPES[value]
    raise CheckpointError(f"checkpoint {where} is corrupt: unknown tree node {str(node)[:80]}")


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, (list, tuple)) else key


def load(f: str | os.PathLike | BinaryIO, map_location: Any = None) -> Any:
    """Read a checkpoint written by :func:`save`. Tensors saved from tg Tensors come back
    as tg Tensors on tritongrad's device (``map_location`` is accepted for torch
    compatibility and ignored), torch tensors as CPU torch tensors, numpy arrays as
    arrays. Raises ``CheckpointError`` for a file that is not a checkpoint, is
    truncated or corrupt, or was written by a newer format version."""
    data, where = _read_all(f)
    if len(data) < 16:
        raise CheckpointError(f"checkpoint {where} is truncated: {len(data)} bytes, shorter "
                              "than the 16-byte preamble")
    if bytes(data[:8]) != MAGIC:
        if bytes(data[:6]) == MAGIC[:6]:
            raise CheckpointError(f"checkpoint {where} has format version {data[7]}; this "
                                  f"tritongrad reads version {VERSION}")
        raise CheckpointError(f"{where} is not a tritongrad checkpoint (it starts with "
                              f"{bytes(data[:8])!r}, expected {MAGIC!r})")
    (header_len,) = struct.unpack("<Q", bytes(data[8:16]))
    if 16 + header_len > len(data):
        raise CheckpointError(f"checkpoint {where} is truncated: the header needs "
                              f"{16 + header_len} bytes, the file has {len(data)}")
    try:
        header = json.loads(bytes(data[16:16 + header_len]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"checkpoint {where} is corrupt: unreadable header ({error})") \
            from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {where} is corrupt: the header is not a "
                              f"{FORMAT} header")
    if header.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {where} has format version {header.get('version')}; "
                              f"this tritongrad reads version {VERSION}")
    data_start = 16 + header_len + (-(16 + header_len) % ALIGN)
    expected = data_start + int(header.get("data_bytes", -1)) + len(TRAILER)
    if len(data) < expected:
        raise CheckpointError(f"checkpoint {where} is truncated: expected {expected} bytes, "
                              f"found {len(data)} (an interrupted copy or download?)")
    if len(data) > expected or bytes(data[expected - len(TRAILER):expected]) != TRAILER:
        raise CheckpointError(f"checkpoint {where} is corrupt: expected {expected} bytes ending "
                              f"in {TRAILER!r}, found {len(data)} bytes")
    tensors = [_tensor(entry, data, data_start, where) for entry in header.get("tensors", [])]
    return _decode(header.get("tree"), tensors, where)


def dumps(obj: Any) -> bytes:
    """The checkpoint bytes of ``obj`` (what :func:`save` writes)."""
    buffer = io.BytesIO()
    save(obj, buffer)
    return buffer.getvalue()
