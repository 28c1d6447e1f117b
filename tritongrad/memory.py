"""``tg.memory_stats()``: how many tritongrad tensors are alive, and the bytes they hold.

The count costs nothing while nobody asks: there is no registry updated at tensor
creation. A call walks the objects Python's garbage collector tracks (every
``tg.Tensor`` and every graph node is one) and sums the distinct storages behind
them, so views of one buffer are counted once. A call takes tens of milliseconds;
use it between training steps, not inside an op.

Objects in a reference cycle stay alive until the collector runs, and they are
counted until then, which is what makes a leak through a cycle visible;
``collect=True`` runs the collector first.
"""

from __future__ import annotations

import gc

import torch

from ._device import DEVICE
from .autograd.function import FunctionCtx
from .tensor import Tensor


def _storage_key(t: torch.Tensor) -> tuple:
    storage = t.untyped_storage()
    return (str(t.device), storage.data_ptr(), storage.nbytes())


def memory_stats(collect: bool = False) -> dict:
    """Live tritongrad memory, as a dict:

    - ``tensors``: live ``tg.Tensor`` objects (parameters, activations, ``.grad``s, views);
    - ``storages`` / ``bytes``: the distinct storages those tensors view, and their bytes;
    - ``graph_nodes``: live autograd nodes (``grad_fn``s) of recorded graphs;
    - ``saved_tensors`` / ``saved_bytes``: tensors those nodes keep for backward, and the
      bytes of the storages among them that no live ``tg.Tensor`` views;
    - ``total_bytes``: ``bytes + saved_bytes``;
    - ``device_allocated``: ``torch.cuda.memory_allocated()`` on a GPU (every tensor the
      process holds, tritongrad's or not), else ``None``.
    """
    if collect:
        gc.collect()
    tensor_storages: dict = {}
    saved_storages: dict = {}
    n_tensors = n_nodes = n_saved = 0
    for obj in gc.get_objects():
        kind = type(obj)  # type(), not isinstance(): no attribute lookups on foreign objects
        if issubclass(kind, Tensor):
            data = getattr(obj, "_data", None)
            if data is None:
                continue
            n_tensors += 1
            key = _storage_key(data)
            tensor_storages[key] = key[2]
        elif issubclass(kind, FunctionCtx):
            n_nodes += 1
            for saved in obj._saved or ():
                if saved is not None:
                    n_saved += 1
                    key = _storage_key(saved.data)
                    saved_storages[key] = key[2]
            for data in getattr(obj, "_private", None) or ():  # node-owned buffers
                if data is not None:
                    n_saved += 1
                    key = _storage_key(data)
                    saved_storages[key] = key[2]
    tensor_bytes = sum(tensor_storages.values())
    saved_only = sum(n for key, n in saved_storages.items() if key not in tensor_storages)
    device_allocated = None
    if DEVICE.type == "cuda":
        device_allocated = torch.cuda.memory_allocated(DEVICE)
    return {
        "tensors": n_tensors,
        "storages": len(tensor_storages),
        "bytes": tensor_bytes,
        "graph_nodes": n_nodes,
        "saved_tensors": n_saved,
        "saved_bytes": saved_only,
        "total_bytes": tensor_bytes + saved_only,
        "device_allocated": device_allocated,
    }
