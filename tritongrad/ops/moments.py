"""Variance and standard deviation over all elements or given dims, as torch.var and
torch.std: ``correction`` (or torch's ``unbiased``), keepdim, and torch's gradients.
``kernels/moments.py`` derives the backward: gx = (2 / (N - correction)) g' (x - mean),
g' = g for var and g / (2 std) for std."""

from __future__ import annotations

import numbers
import operator

from ..autograd.function import Function
from ..kernels import moments as moment_kernels
from ..tensor import Tensor


def _forward(ctx, x: Tensor, dims, correction: float, keepdim: bool, take_sqrt: bool):
    out, mean = moment_kernels.var_fwd(x._data, dims, correction, keepdim, take_sqrt)
    out = Tensor._wrap(out)
    ctx.dims, ctx.correction, ctx.keepdim = dims, correction, keepdim
    ctx.save_for_backward(x, out if take_sqrt else None)  # std's gradient reads its result
    ctx.save_private(Tensor._wrap(mean))  # ours: nobody else writes it
    return out


def _backward(ctx, grad: Tensor, take_sqrt: bool) -> tuple:
    x, result = ctx.saved_tensors
    (mean,) = ctx.private_tensors
    if not ctx.needs_input_grad[0]:
        return None, None, None, None
    grad_x = moment_kernels.var_bwd(grad._data, x._data, mean._data,
                                    None if result is None else result._data, ctx.dims,
                                    ctx.correction, ctx.keepdim, take_sqrt)
    return Tensor._wrap(grad_x), None, None, None


class Var(Function):
    """y = sum((x - mean)^2) / (N - correction) over ``dims`` (None: torch's "no dim", every
    element); the forward saves x and each result's mean (fp32; fp64 for fp64)."""

    @staticmethod
    def forward(ctx, x: Tensor, dims, correction: float, keepdim: bool) -> Tensor:
        return _forward(ctx, x, dims, correction, keepdim, False)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return _backward(ctx, grad, False)


class Std(Function):
    """y = sqrt(var(x, dims, correction)); the forward also saves y (its gradient is
    var's divided by 2 y, and 0 where y == 0, as torch)."""

    @staticmethod
    def forward(ctx, x: Tensor, dims, correction: float, keepdim: bool) -> Tensor:
        return _forward(ctx, x, dims, correction, keepdim, True)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return _backward(ctx, grad, True)


def _arguments(op: str, dim, unbiased, keepdim, correction) -> tuple:
    """(dims, correction) from torch's accepted forms: var(x, unbiased) (a bool in dim's
    place), var(x, dim, unbiased, keepdim), var(x, dim, *, correction, keepdim)."""
    if isinstance(dim, bool):  # torch's var(input, unbiased) overload
        if unbiased is not None or keepdim or correction is not None:
            raise TypeError(f"{op}(): {op}(input, unbiased) takes no other argument; pass "
                            f"dim=, unbiased= or correction= and keepdim= by name")
        dim, unbiased = None, dim
    if unbiased is not None:
        if not isinstance(unbiased, bool):
            raise TypeError(f"{op}(): argument 'unbiased' must be bool, not "
                            f"{type(unbiased).__name__}")
        if correction is not None:
            raise TypeError(f"{op}(): pass either unbiased or correction, not both")
        correction = 1 if unbiased else 0
    elif correction is None:
        correction = 1
    elif isinstance(correction, bool) or not isinstance(correction, numbers.Real):
        raise TypeError(f"{op}(): argument 'correction' must be a number, not "
                        f"{type(correction).__name__}")
    if dim is None:
        dims = None
    else:
        try:
            dims = (operator.index(dim),) if not isinstance(dim, (tuple, list)) \
                else tuple(operator.index(d) for d in dim)
        except TypeError:
            raise TypeError(f"{op}(): argument 'dim' must be an int or a tuple of ints, not "
                            f"{dim!r}") from None
    return dims, float(correction)


def var(x: Tensor, dim=None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: float | None = None) -> Tensor:
    """The variance over ``dim`` (an int, a tuple, or None: every element), divided by
    N - correction (default 1; ``unbiased=False`` means 0), as torch.var. Over no degrees
    of freedom: inf, or NaN where every element is equal, as torch."""
    dims, correction = _arguments("var", dim, unbiased, keepdim, correction)
    return Var.apply(x, dims, correction, bool(keepdim))


def std(x: Tensor, dim=None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: float | None = None) -> Tensor:
    """sqrt(var(x, ...)), as torch.std, with the same arguments."""
    dims, correction = _arguments("std", dim, unbiased, keepdim, correction)
    return Std.apply(x, dims, correction, bool(keepdim))
