"""Torch references and parity cases of gather and index_select / integer-tensor indexing
(oracle code: torch computes here only to judge)."""

from __future__ import annotations

import torch

from ..ops import gather as gather_ops
from .references import register_reference


def _widened(x: torch.Tensor) -> torch.Tensor:
    """fp16 / bf16 widened to fp32 (a differentiable cast): where indices repeat, the
    kernels sum the gradient in fp32 and round once; torch's half backward rounds per add."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def gather_reference(x: torch.Tensor, dim: int, index: torch.Tensor) -> torch.Tensor:
    return torch.gather(_widened(x), dim, index).to(x.dtype)


def index_select_reference(x: torch.Tensor, dim: int, index: torch.Tensor, op: str,
                           wrap_negative: bool) -> torch.Tensor:
    if wrap_negative:  # indexing: x[:, ..., index] with negative indices allowed
        picked = _widened(x)[(slice(None),) * dim + (index.long(),)]
    else:
        picked = torch.index_select(_widened(x), dim, index)
    return picked.to(x.dtype)


register_reference(gather_ops.Gather, gather_reference)
register_reference(gather_ops.IndexSelect, index_select_reference)


def gather_cases() -> list:
    """gather along each dim with repeated indices and a transposed input; index_select
    with repeats and int32 indices; indexing with negative indices."""
    from .cases import ParityCase, _transposed, randn, spec

    def x_of(s, g):
        return _transposed(g, s.shapes[0]) if s.option("layout") == "T" else randn(g, s.shapes[0])

    def gather_args(s, d, g):
        x, dim = x_of(s, g), s.option("dim")
        index = torch.randint(0, x.shape[dim], s.shapes[1], generator=g, device="cpu")
        return x, dim, index

    def select_args(s, d, g):
        x, dim = x_of(s, g), s.option("dim")
        size = x.shape[dim]
        low = -size if s.option("wrap") else 0
        index = torch.randint(low, size, s.shapes[1], generator=g, device="cpu")
        if index.numel() > 2:
            index[1] = index[0]  # a repeat: its slice's gradient is summed
        index = index.to(s.option("index_dtype", torch.int64))
        return x, dim, index, "index" if s.option("wrap") else "index_select", \
            bool(s.option("wrap"))

    return [
        ParityCase("gather", gather_ops.Gather, gather_args,
                   (spec((7, 13), (7, 3), dim=1), spec((13, 7), (5, 7), dim=0, layout="T"),
                    spec((3, 4, 5), (2, 4, 9), dim=2)),
                   gradcheck_spec=spec((3, 4), (3, 2), dim=1)),
        ParityCase("index_select", gather_ops.IndexSelect, select_args,
                   (spec((7, 13), (5,), dim=0), spec((13, 7), (9,), dim=1, layout="T",
                                                   index_dtype=torch.int32),
                    spec((3, 4, 5), (6,), dim=2, wrap=True), spec((9, 6), (), dim=0)),
                   gradcheck_spec=spec((4, 3), (5,), dim=0)),
    ]
