"""Embedding lookup (``kernels/embedding.py``): torch's ``F.embedding``, out = weight[input].

The gradient flows to ``weight`` only (the indices are integers): dW[v] = sum of the
upstream rows whose index is v, 0 at ``padding_idx``; summed by one program per element in
index order, so deterministic with or without ``tg.use_deterministic_algorithms`` (no
atomics anywhere).

Indices outside [0, num_embeddings) raise torch's "index out of range in self" after one
host sync; ``tritongrad.ops.loss.CHECK_LABELS = False`` turns that read off, for every
device-side value check at once (cross-entropy's and nll_loss's labels, these indices),
as ``compile_step`` does while capturing a CUDA graph. A bad index then gives a NaN row.
"""

from __future__ import annotations

from ..autograd.function import Function
from ..kernels import embedding as embedding_kernels
from ..kernels._checks import UnsupportedError
from ..kernels.embedding import normalize_padding_idx
from ..tensor import Tensor
from . import loss as _loss
from .loss import _tensor

OP = embedding_kernels.OP


class Embedding(Function):
    """out = weight[indices] (shape indices.shape + (D,)); d out / d weight scatters the
    upstream gradient back onto the rows it came from (derivation in kernels/embedding.py).
    ``padding_idx``: None or already normalised to [0, V); its row gets gradient 0.
    ``scale_grad_by_freq``: each row's gradient is divided by how often its index occurs.
    Saves the indices only."""

    @staticmethod
    def forward(ctx, indices: Tensor, weight: Tensor, padding_idx: int | None = None,
                scale_grad_by_freq: bool = False) -> Tensor:
        out = embedding_kernels.embedding_fwd(weight._data, indices._data,
                                              check_indices=_loss.CHECK_LABELS)
        ctx.num_embeddings = weight.shape[0]
        ctx.padding_idx = padding_idx
        ctx.scale_grad_by_freq = bool(scale_grad_by_freq)
        ctx.save_for_backward(indices)
        return Tensor._wrap(out)

    @staticmethod
    def backward(ctx, grad: Tensor):
        if not ctx.needs_input_grad[1]:
            return None, None, None, None
        (indices,) = ctx.saved_tensors
        grad_weight = embedding_kernels.embedding_bwd(grad._data, indices._data,
                                                      ctx.num_embeddings, ctx.padding_idx,
                                                      ctx.scale_grad_by_freq)
        return None, Tensor._wrap(grad_weight), None, None


def check_embedding_options(max_norm, sparse: bool) -> None:
    """The F.embedding / nn.Embedding options tritongrad refuses, with the reason."""
    if max_norm is not None:
        raise UnsupportedError(f"{OP}: max_norm={max_norm!r} is not supported (torch renormalises "
                               "the looked-up rows of weight in place); pass max_norm=None")
    if sparse:
        raise UnsupportedError(f"{OP}: sparse=True is not supported (tritongrad has no sparse "
                               "gradients); pass sparse=False for a dense weight gradient")


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """``torch.nn.functional.embedding``: the rows of ``weight`` (V, D) named by the int64 /
    int32 ``input`` (any shape, 0-d too), shape input.shape + (D,), with torch's arguments
    in torch's order. ``padding_idx`` (negative counts from the end): that row gets no
    gradient. ``max_norm`` and ``sparse=True`` are refused (UnsupportedError);
    ``norm_type`` only matters with max_norm."""
    input = _tensor(input, "input", OP)
    weight = _tensor(weight, "weight", OP)
    check_embedding_options(max_norm, sparse)
    embedding_kernels.check_embedding_args(weight._data, input._data)
    padding_idx = normalize_padding_idx(padding_idx, weight.shape[0])
    return Embedding.apply(input, weight, padding_idx, bool(scale_grad_by_freq))
