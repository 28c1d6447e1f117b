"""Device-side int64 tables for one-launch multi-tensor kernels (grad norm, optimizers).

A table lists data pointers, sizes and a chunk list; a kernel loads a pointer with
``tl.load(table + i).to(tl.pointer_type(...))``. Building it costs one
host -> device copy, so tables are cached on their contents: an unchanged list
of tensors costs nothing. ``multi_tensor_table`` keys its cache on the per-tensor
columns alone (a few hundred ints for a model's parameters), so a hit does not even
rebuild the chunk list: the host time of a clip or optimizer step over 200 tensors is
a few tens of microseconds, not the hundreds that rebuilding and hashing the full
table costs.

On a GPU the host side is pinned memory and the copy is asynchronous. That keeps
it legal inside a CUDA graph capture, where the copy becomes a graph node that
every replay repeats; such host buffers are kept alive for the process, because
the graph reads them on every replay.
"""

from __future__ import annotations

from collections import OrderedDict

import torch

_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 64
_KEPT_FOR_GRAPHS: list = []


def chunk_list(numels: list[int], chunk: int) -> tuple[list[int], list[int]]:
    """(tensor index, start element) of every ``chunk``-sized piece of every tensor."""
    chunk_tensor, chunk_start = [], []
    for i, numel in enumerate(numels):
        for start in range(0, numel, chunk):
            chunk_tensor.append(i)
            chunk_start.append(start)
    return chunk_tensor, chunk_start


_MULTI_CACHE: OrderedDict = OrderedDict()


def multi_tensor_table(columns: list[list[int]], numels: list[int], chunk: int,
                       device: torch.device, tail: list[int] | None = None,
                       ) -> tuple[torch.Tensor, int, int]:
    """(table, n_tensors, n_chunks) of
    ``[*columns | numels | tail | chunk tensor | chunk start]``: per-tensor columns
    (pointers...), each tensor's element count, an optional per-tensor column after it
    (dtype codes), and the (tensor index, start element) of every ``chunk``-sized piece.
    Cached on the per-tensor columns."""
    tail = tail or []
    key = (str(device), chunk, tuple(numels), tuple(tail), *(tuple(c) for c in columns))
    hit = _MULTI_CACHE.get(key)
    if hit is not None:
        _MULTI_CACHE.move_to_end(key)
        return hit
    chunk_tensor, chunk_start = chunk_list(numels, chunk)
    host = ([v for column in columns for v in column] + list(numels) + list(tail)
            + chunk_tensor + chunk_start)
    entry = (device_table(host, device), len(numels), len(chunk_tensor))
    _MULTI_CACHE[key] = entry
    if len(_MULTI_CACHE) > _CACHE_SIZE:
        _MULTI_CACHE.popitem(last=False)
    return entry


def device_table(values: list[int], device: torch.device) -> torch.Tensor:
    """``values`` as an int64 tensor on ``device``, cached on the values themselves."""
    key = (str(device), tuple(values))
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return hit[0]
    host = torch.tensor(values, dtype=torch.int64, device="cpu")
    if device.type == "cuda":
        host = host.pin_memory()
        table = host.to(device, non_blocking=True)
        if torch.cuda.is_current_stream_capturing():
            _KEPT_FOR_GRAPHS.append((host, table))
    else:
        table = host.to(device)
    _CACHE[key] = (table, host)
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return table
