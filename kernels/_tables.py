"""Device-side int64 tables for one-launch multi-tensor kernels (grad norm, optimizers).

A table lists data pointers, sizes and a chunk list; a kernel loads a pointer with
``tl.load(table + i).to(tl.pointer_type(...))``. Building it costs one
host -> device copy, so tables are cached on their contents: an unchanged list
of tensors costs nothing.

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


def device_table(values: list[int], device: torch.device) -> torch.Tensor:
    """``values`` as an int64 tensor on ``device``, cached on the values themselves."""
    key = (str(device), tuple(values))
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return hit[0]
    host = torch.tensor(values, dtype=torch.int64)
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
