"""``gradcheck``: central finite differences in float64, with no torch at all.

For f: inputs -> outputs, the analytical Jacobian comes from tritongrad's own
backward (one ``autograd.grad`` per output element, with a one-hot incoming
gradient: row k of J is e_k^T J), and the numerical one from central
differences of the forward,

    J[:, e] ~= (f(x + eps e) - f(x - eps e)) / (2 eps),

whose truncation error is O(eps^2 f''') and round-off about u |f| / eps
(u = 1.1e-16 in float64): at eps = 1e-6 both are ~1e-10 relative. In float32
(u = 6e-8) the round-off alone would be ~0.06, which is why the check runs only
in float64, and needs float64 kernels for every op the function uses.

The perturbations and differences are numpy arithmetic on host copies; every
forward and backward value is computed by tritongrad's kernels.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from ..kernels._checks import DTypeError

FP64 = torch.float64


class GradcheckError(AssertionError):
    """Analytical and numerical Jacobians differ; the message locates the entry."""


class NoFloat64Error(DTypeError):
    """An op used by the checked function has no float64 kernels."""


def _op_in_traceback(tb) -> tuple | None:
    """(op name, phase) of the innermost Function running when ``tb`` was raised:
    ``Function.apply`` frames hold ``cls``, the engine's ``_run_node`` holds ``node``."""
    from ..autograd.function import Function

    found = None
    while tb is not None:
        frame = tb.tb_frame
        code_name = frame.f_code.co_name
        local = frame.f_locals
        if code_name == "apply" and isinstance(local.get("cls"), type) and \
                issubclass(local["cls"], Function):
            found = (local["cls"].__name__, "forward")
        elif code_name == "_run_node" and local.get("node") is not None:
            node = local["node"]
            name = getattr(node, "function_cls", None)
            found = (name.__name__ if name is not None else node.name(), "backward")
        tb = tb.tb_next
    return found


def _no_fp64(error: DTypeError) -> NoFloat64Error:
    where = _op_in_traceback(error.__traceback__)
    what = f"op {where[0]} ({where[1]})" if where else "an op"
    return NoFloat64Error(
        f"gradcheck needs float64 kernels, but {what} has no float64 path: {error}. "
        "Check that op in float32 against torch with tg.testing.assert_parity instead, or "
        "give its kernels a float64 path.")


def _host(value) -> np.ndarray:
    data = value._data if hasattr(value, "_data") else value
    if isinstance(data, torch.Tensor):
        return data.detach().to("cpu").numpy().copy()  # a device -> host copy
    return np.array(data, copy=True)


def _prepare(inputs) -> tuple[list, list]:
    """(values, differentiable): floating inputs become float64 host arrays;
    a tg Tensor takes part when it requires grad, arrays and torch tensors always."""
    from ..tensor import Tensor

    from .parity import Constant

    values, differentiable = [], []
    for value in inputs:
        constant = isinstance(value, Constant)  # assert_parity's marker: not differentiated
        if constant:
            value = value.value
        is_tensor = isinstance(value, (Tensor, torch.Tensor, np.ndarray))
        if not is_tensor:
            values.append(value)
            differentiable.append(False)
            continue
        if isinstance(value, Tensor) and value.dtype == torch.bfloat16:
            value = value.detach().to(torch.float32)  # numpy has no bfloat16
        array = _host(value)
        floating = array.dtype.kind == "f"
        if floating:
            array = array.astype(np.float64)
        wants = floating and not constant and (
            value.requires_grad if isinstance(value, Tensor) else True)
        values.append(array)
        differentiable.append(wants)
    return values, differentiable


def _build(values: list, differentiable: list, requires_grad: bool) -> list:
    import tritongrad as tg

    args = []
    for value, diff in zip(values, differentiable):
        if isinstance(value, np.ndarray):
            dtype = FP64 if value.dtype.kind == "f" else None
            args.append(tg.tensor(value, dtype=dtype, requires_grad=diff and requires_grad))
        else:
            args.append(value)
    return args


def _outputs(result) -> list:
    from ..tensor import Tensor

    items = result if isinstance(result, (tuple, list)) else (result,)
    return [o for o in items if isinstance(o, Tensor) and o.is_floating_point()]


def _forward(fn: Callable, values: list, differentiable: list) -> list:
    import tritongrad as tg

    with tg.no_grad():
        return [_host(o).astype(np.float64) for o in _outputs(fn(*_build(values, differentiable,
                                                                          False)))]


def gradcheck(fn: Callable, inputs: Any, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, *, raise_exception: bool = True,
              fast_mode: bool = False, seed: int = 0) -> bool:
    """Compare tritongrad's gradients of ``fn`` with central finite differences in float64.

    fn: takes the inputs (as tg Tensors) and returns a Tensor or a tuple of them.
    inputs: a tuple of tg Tensors, torch tensors, numpy arrays or plain values;
    floating ones are copied to float64 (a tg Tensor takes part when it requires
    grad; arrays and torch tensors always). Passes when every Jacobian entry has
    ``|analytical - numerical| <= atol + rtol * |numerical|``.

    fast_mode: compare v^T J for one seeded random v per output (one backward)
    instead of the full Jacobian (one backward per output element).

    Raises GradcheckError naming the output, the input and the worst element;
    NoFloat64Error naming the op when one has no float64 kernels. With
    ``raise_exception=False`` a mismatch returns False instead."""
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    values, differentiable = _prepare(inputs)
    if not any(differentiable):
        raise ValueError("gradcheck: no floating input requires grad; nothing to check")
    try:
        analytical, out_shapes, projections = _analytical(fn, values, differentiable, fast_mode,
                                                          seed)
        numerical = _numerical(fn, values, differentiable, eps, out_shapes)
    except NoFloat64Error:
        raise
    except DTypeError as error:
        raise _no_fp64(error) from error
    for j, shape in enumerate(out_shapes):
        for i, diff in enumerate(differentiable):
            if not diff:
                continue
            num = numerical[(j, i)]  # (out numel, in numel)
            if fast_mode:
                num = projections[j] @ num  # v^T J: (in numel,)
            ana = analytical[(j, i)]
            excess = np.abs(ana - num) - (atol + rtol * np.abs(num))
            if not np.isfinite(ana).all() or not np.isfinite(num).all():
                excess = np.where(np.isfinite(ana) & np.isfinite(num), excess, np.inf)
            if (excess <= 0).all():
                continue
            if not raise_exception:
                return False
            raise GradcheckError(_mismatch(j, i, shape, values[i].shape, num, ana, excess,
                                           atol, rtol, fast_mode))
    return True


def _analytical(fn, values, differentiable, fast_mode, seed) -> tuple[dict, list, list]:
    """({(output j, input i): J block}, output shapes, the v of each output in fast mode).
    A block has one row per output element, or is v^T J in fast mode."""
    import tritongrad as tg

    args = _build(values, differentiable, True)
    leaves = [a for a, d in zip(args, differentiable) if d]
    outputs = _outputs(fn(*args))
    shapes = [tuple(o.shape) for o in outputs]
    for o in outputs:
        if o.dtype != FP64:
            raise GradcheckError(f"gradcheck: fn returned a {o.dtype} output; it must compute in "
                                 "float64 (finite differences are meaningless in lower precision)")
    live = [k for k, o in enumerate(outputs) if o.requires_grad]
    blocks: dict = {}
    leaf_indices = [i for i, d in enumerate(differentiable) if d]
    # A stream of its own: default_rng(seed) alone would replay the very numbers a
    # user drew the inputs from (v = x makes a transposed gradient look right).
    rng = np.random.default_rng([seed, 0x67726164])
    projections = []

    def backward(grads_by_output: dict) -> list:
        """Input gradients for the given incoming gradients (zeros where unused)."""
        used = [k for k in live if k in grads_by_output]
        result = [None] * len(leaves)
        if used:
            result = list(tg.autograd.grad(
                [outputs[k] for k in used], leaves,
                [tg.tensor(grads_by_output[k], dtype=FP64) for k in used],
                retain_graph=True, allow_unused=True))
        return [np.zeros(values[i].shape) if g is None else _host(g)
                for g, i in zip(result, leaf_indices)]

    for j, shape in enumerate(shapes):
        n_out = int(np.prod(shape))
        if fast_mode:
            v = rng.standard_normal(n_out)
            projections.append(v)
            grads = backward({j: v.reshape(shape)})
            for g, i in zip(grads, leaf_indices):
                blocks[(j, i)] = g.reshape(-1)
            continue
        rows = {i: np.zeros((n_out, values[i].size)) for i in leaf_indices}
        for k in range(n_out):
            one_hot = np.zeros(n_out)
            one_hot[k] = 1.0
            for g, i in zip(backward({j: one_hot.reshape(shape)}), leaf_indices):
                rows[i][k] = g.reshape(-1)
        for i in leaf_indices:
            blocks[(j, i)] = rows[i]
    return blocks, shapes, projections


def _numerical(fn, values, differentiable, eps, out_shapes) -> dict:
    """{(output j, input i): (out numel, in numel)} central differences, column by column."""
    columns: dict = {}
    for i, diff in enumerate(differentiable):
        if not diff:
            continue
        base = values[i]
        blocks = [np.zeros((int(np.prod(s)), base.size)) for s in out_shapes]
        for e in range(base.size):
            shifted = list(values)
            plus, minus = base.copy(), base.copy()
            plus.flat[e] += eps
            minus.flat[e] -= eps
            shifted[i] = plus
            f_plus = _forward(fn, shifted, differentiable)
            shifted[i] = minus
            f_minus = _forward(fn, shifted, differentiable)
            for j, (a, b) in enumerate(zip(f_plus, f_minus)):
                blocks[j][:, e] = ((a - b) / (2.0 * eps)).reshape(-1)
        for j in range(len(out_shapes)):
            columns[(j, i)] = blocks[j]
    return columns


def _mismatch(j, i, out_shape, in_shape, num, ana, excess, atol, rtol, fast_mode) -> str:
    flat = int(np.argmax(excess))
    n_bad = int((excess > 0).sum())
    if fast_mode:
        in_index = tuple(int(v) for v in np.unravel_index(flat, in_shape)) if in_shape else ()
        where = f"input element {in_index} (of v^T J, fast mode)"
    else:
        out_flat, in_flat = np.unravel_index(flat, num.shape)
        out_index = tuple(int(v) for v in np.unravel_index(out_flat, out_shape)) \
            if out_shape else ()
        in_index = tuple(int(v) for v in np.unravel_index(in_flat, in_shape)) if in_shape else ()
        where = f"d output{out_index} / d input{in_index}"
    n, a = float(num.flat[flat]), float(ana.flat[flat])
    return (f"gradcheck: Jacobian mismatch for output {j} with respect to input {i}: worst at "
            f"{where}: numerical {n!r}, analytical {a!r} (abs err {abs(a - n):.3g}; allowed "
            f"atol {atol:g} + rtol {rtol:g} * |numerical|). {n_bad} of {num.size} entries "
            f"differ. Run the model under tg.testing.shadow() to find the node.")
