"""Torch reference and parity cases of the unary math ops (log1p, expm1, rsqrt, reciprocal,
sin, cos, log2, log10, sign, floor, ceil, round, trunc). Oracle code: torch computes here
only to judge. square is pow's ScalarOp (its cases are the core family's)."""

from __future__ import annotations

import torch

from ..kernels.unary_math import FLOAT_MATH_OPS, STEP_OPS
from ..ops import unary_math as unary_math_ops
from .references import register_reference


def unary_math_reference(x: torch.Tensor, op: str) -> torch.Tensor:
    return getattr(torch, op)(x)


register_reference(unary_math_ops.UnaryMath, unary_math_reference)

# (lowest, width) of the uniform draws per op: inside the domain (x > -1 for log1p, x > 0
# for rsqrt and the logs), and for the step ops clear of the jumps (see _step_input)
_DOMAINS = {"log1p": (-0.9, 3.0), "rsqrt": (0.2, 3.0), "log2": (0.2, 3.0),
            "log10": (0.2, 3.0)}


def unary_math_cases() -> list:
    """One case per op: a 7 x 13 tensor and a transposed 13 x 7 view, in every dtype (fp64
    rows take part in gradcheck). The step ops draw values at least 0.1 from an integer and
    from a half (and sign from 0), so gradcheck's finite differences see the true zero
    derivative; their gradients are zeros on both sides."""
    from .cases import ParityCase, spec

    def uniform(g, shape, low, width, transposed):
        draw_shape = tuple(reversed(shape)) if transposed else shape
        x = torch.rand(draw_shape, generator=g, device="cpu") * width + low
        return x.T if transposed else x

    def make(s, d, g, _op):
        transposed = s.option("layout") == "T"
        if _op in FLOAT_MATH_OPS:
            low, width = _DOMAINS.get(_op, (-4.0, 8.0))
            return uniform(g, s.shapes[0], low, width, transposed), _op
        # integers k plus a fraction in [0.1, 0.4) or [0.6, 0.9): no jump within 0.1
        whole = uniform(g, s.shapes[0], -4.0, 8.0, transposed).floor()
        fraction = uniform(g, s.shapes[0], 0.1, 0.3, transposed)
        upper = uniform(g, s.shapes[0], 0.0, 1.0, transposed) > 0.5
        return whole + fraction + 0.5 * upper, _op

    specs = (spec((7, 13)), spec((13, 7), layout="T"))
    return [ParityCase(op, unary_math_ops.UnaryMath,
                       lambda s, d, g, _op=op: make(s, d, g, _op), specs,
                       gradcheck_spec=spec((2, 3)))
            for op in FLOAT_MATH_OPS + STEP_OPS]
