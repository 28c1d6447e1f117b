"""Torch reference and parity cases of Embedding (oracle code: torch computes here only to
judge)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..ops import embedding as embedding_ops
from .references import register_reference


def embedding_reference(indices: torch.Tensor, weight: torch.Tensor, padding_idx=None,
                        scale_grad_by_freq: bool = False) -> torch.Tensor:
    """F.embedding on fp16 / bf16 weights widened to fp32 (the cast is differentiable, so a
    row hit many times sums its gradient in fp32 and rounds once, as the kernels do; torch's
    own half backward adds in the weight's dtype, one rounding per repeat)."""
    wide = weight.float() if weight.dtype in (torch.float16, torch.bfloat16) else weight
    out = F.embedding(indices, wide, padding_idx=padding_idx,
                      scale_grad_by_freq=scale_grad_by_freq)
    return out.to(weight.dtype)


register_reference(embedding_ops.Embedding, embedding_reference)


def embedding_cases() -> list:
    """Parity cases of Embedding, for ``testing/cases.py``'s built-in families: 2-D
    indices with repeats, padding_idx, int32 indices, a 0-d index, a transposed weight and
    scale_grad_by_freq. gradcheck takes a spec with neither padding_idx nor the scale: both
    change the gradient from the true derivative on purpose (torch's definition)."""
    from .cases import ParityCase, _transposed, randn, spec

    def args(s, d, g):
        n_embeddings, dim = s.shapes[0]
        weight = _transposed(g, (n_embeddings, dim)) if s.option("layout") == "T" \
            else randn(g, (n_embeddings, dim))
        indices = torch.randint(0, n_embeddings, s.shapes[1], generator=g, device="cpu")
        if indices.dim() and indices.numel() > 2:
            indices.view(-1)[:3] = s.option("padding_idx") or 1  # repeats (and the padding row)
        indices = indices.to(s.option("index_dtype", torch.int64))
        return indices, weight, s.option("padding_idx"), s.option("scale", False)

    specs = (spec((10, 13), (4, 7)), spec((10, 13), (9,), padding_idx=2),
             spec((7, 33), (5, 3), index_dtype=torch.int32, layout="T"),
             spec((10, 5), ()), spec((6, 8), (4, 6), padding_idx=5, scale=True))
    return [ParityCase("embedding", embedding_ops.Embedding, args, specs,
                       gradcheck_spec=spec((4, 3), (2, 5)))]
