"""The parity cases: for every built-in Function, the arguments to call it with
and the shapes to try. ``python -m tritongrad parity`` runs them all.

A case calls ``Function.apply(*args)`` on the tritongrad side and the
Function's registered torch reference (``references.reference_for``) on the
torch side, with the same values: the report checks the op *and* the reference
that shadow mode relies on. ``tests/test_references.py`` fails for any built-in
Function without a case here, so a new op cannot land without one.

``make_args(spec, dtype, generator)`` builds the positional arguments of
``apply``: torch tensors (float tensors are cast to the row's dtype and become
differentiable leaves; wrap one in ``parity.constant`` to keep it out of the
backward), plus plain values (dims, reductions, scalars) passed unchanged.
Values are drawn in fp32 on the CPU from the seeded generator, so every run on every
device sees the same numbers (``run_parity`` moves them to tritongrad's device).
Shapes are small and blocks large: the report must run in well under two minutes
through the CPU interpreter.

Extra case modules (a user's ops, the planted-bug tests) define ``CASES = [...]``
and are loaded with ``--cases MODULE`` or ``TRITONGRAD_PARITY_CASES=mod1,mod2``.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .parity import constant

FP32, FP16, BF16, FP64 = torch.float32, torch.float16, torch.bfloat16, torch.float64
ALL_DTYPES = (FP32, FP16, BF16, FP64)
REPORT_DTYPES = (FP32, FP16, BF16)  # the report's default rows; fp64 is for gradcheck


@dataclass(frozen=True)
class Spec:
    """One row's input shapes plus op options (dims, reduction, ...)."""

    shapes: tuple
    options: tuple = ()

    def option(self, name: str, default: Any = None) -> Any:
        return dict(self.options).get(name, default)

    @property
    def label(self) -> str:
        parts = [",".join("x".join(map(str, s)) if s else "scalar" for s in self.shapes)]
        parts += [f"{k}={_short(v)}" for k, v in self.options]
        return " ".join(parts)


def _short(value: Any) -> str:
    if isinstance(value, torch.dtype):
        return str(value).replace("torch.", "")
    if isinstance(value, tuple):
        return "(" + ",".join(_short(v) for v in value) + ")"
    return str(value)


def spec(*shapes: tuple, **options: Any) -> Spec:
    return Spec(tuple(tuple(s) for s in shapes), tuple(options.items()))


@dataclass(frozen=True)
class ParityCase:
    """How the report runs one Function.

    name: the report's op name (unique). function: the Function class under test;
    its torch side is ``reference_for(function)`` unless ``torch_fn`` is given.
    specs: the shapes (one row per spec per dtype). dtypes: the dtypes the op's
    kernels support (fp64 ones also take part in gradcheck). tolerances: per-dtype
    (rtol, atol) overrides of the table; each needs a comment with the measured
    error and the reason. tf32: compare fp32 at the TF32 row of the table."""

    name: str
    function: type
    make_args: Callable[[Spec, torch.dtype, torch.Generator], tuple]
    specs: tuple
    dtypes: tuple = ALL_DTYPES
    tolerances: dict = field(default_factory=dict)
    tf32: bool = False
    gradcheck_spec: Spec | None = None
    tg_fn: Callable | None = None
    torch_fn: Callable | None = None

    def tg_callable(self) -> Callable:
        return self.tg_fn or self.function.apply

    def torch_callable(self) -> Callable:
        if self.torch_fn is not None:
            return self.torch_fn
        from .references import reference_for

        reference = reference_for(self.function)
        if reference is None:
            raise LookupError(f"{self.function.__name__} has no torch reference: register one "
                              "in tritongrad/testing/ref_<family>.py or set torch_reference")
        return reference

    def args(self, spec_: Spec, dtype: torch.dtype, seed: int = 0) -> tuple:
        generator = torch.Generator().manual_seed(seed)
        return tuple(self.make_args(spec_, dtype, generator))

    def smallest_spec(self) -> Spec:
        """The spec gradcheck uses: ``gradcheck_spec``, else the one with the fewest
        input elements (finite differences cost two forwards per input element)."""
        if self.gradcheck_spec is not None:
            return self.gradcheck_spec
        return min(self.specs, key=lambda s: sum(torch.Size(x).numel() for x in s.shapes))

    def tolerance(self, dtype: torch.dtype) -> tuple:
        """(rtol, atol) or (None, None) for the table's entry."""
        return self.tolerances.get(dtype, (None, None))


# --- input helpers -----------------------------------------------------------------------------


def randn(g: torch.Generator, shape: tuple) -> torch.Tensor:
    return torch.randn(shape, generator=g, device="cpu")


def positive(g: torch.Generator, shape: tuple) -> torch.Tensor:
    """Uniform in [0.5, 1.5): away from log/sqrt/div singularities."""
    return torch.rand(shape, generator=g, device="cpu") + 0.5


def labels(g: torch.Generator, n_rows: int, n_classes: int, ignored: int | None = None):
    target = torch.randint(0, n_classes, (n_rows,), generator=g, device="cpu")
    if ignored is not None and n_rows > 1:
        target[1] = ignored
    return target


def _transposed(g, shape):
    """A transposed (non-contiguous) view with the given shape."""
    return randn(g, tuple(reversed(shape))).T


# --- the built-in cases ------------------------------------------------------------------------


def _core_cases() -> list:
    from ..ops import copy as copy_ops
    from ..ops import elementwise as ew
    from ..ops import reduction as red
    from ..ops import views

    def first(s):
        return s.shapes[0]

    def x_arg(s, g):
        return _transposed(g, first(s)) if s.option("layout") == "T" else randn(g, first(s))

    unary_specs = (spec((7, 13)), spec((13, 7), layout="T"), spec((1,)))
    binary_specs = (spec((7, 13), (7, 13)), spec((3, 1, 5), (4, 5)), spec((7, 13), (13,)))
    cases = [
        ParityCase("clone", copy_ops.Clone, lambda s, d, g: (x_arg(s, g),), unary_specs),
        ParityCase(
            "cast", copy_ops.Cast,
            # every dtype is cast to another float dtype (fp32 rows go to fp16)
            lambda s, d, g: (randn(g, first(s)), FP16 if d == FP32 else FP32),
            (spec((7, 13)),),
        ),
        ParityCase("reshape", views.Reshape,
                   lambda s, d, g: (x_arg(s, g), s.option("to")),
                   (spec((7, 12), to=(4, 21)), spec((12, 7), layout="T", to=(84,)))),
        ParityCase("view", views.View, lambda s, d, g: (randn(g, first(s)), s.option("to")),
                   (spec((6, 10), to=(3, 2, 10)),)),
        ParityCase("permute", views.Permute,
                   lambda s, d, g: (randn(g, first(s)), s.option("dims")),
                   (spec((3, 4, 5), dims=(2, 0, 1)),)),
        ParityCase("transpose", views.Transpose,
                   lambda s, d, g: (randn(g, first(s)), 0, 1), (spec((7, 13)),)),
        ParityCase("expand", views.Expand,
                   lambda s, d, g: (randn(g, first(s)), s.option("to")),
                   (spec((3, 1), to=(4, 3, 5)),)),
        ParityCase("getitem", views.GetItem,
                   lambda s, d, g: (randn(g, first(s)), (slice(1, None), slice(None, None, 2))),
                   (spec((7, 13)),)),
    ]
    for name, cls in (("add", ew.Add), ("sub", ew.Sub), ("mul", ew.Mul), ("div", ew.Div),
                      ("maximum", ew.Maximum), ("minimum", ew.Minimum)):
        def make(s, d, g, _div=cls is ew.Div):
            return randn(g, s.shapes[0]), (positive if _div else randn)(g, s.shapes[1])

        cases.append(ParityCase(name, cls, make, binary_specs,
                                gradcheck_spec=spec((2, 1, 3), (2, 3))))

    scalar_ops = [  # (name, op, scalar, reverse, input drawn > 0)
        ("scalar_add", "add", 2.5, False, False),
        ("scalar_rsub", "sub", 1.5, True, False),
        ("scalar_mul", "mul", -3.0, False, False),
        ("scalar_div", "div", 4.0, False, False),
        ("scalar_rdiv", "div", 2.0, True, True),
        ("scalar_pow", "pow", 2.0, False, False),
        ("scalar_pow_half", "pow", 0.5, False, True),
        ("scalar_rpow", "pow", 2.0, True, False),
    ]
    for name, op, scalar, reverse, pos in scalar_ops:
        def make(s, d, g, _op=op, _scalar=scalar, _reverse=reverse, _pos=pos):
            x = positive(g, first(s)) if _pos else x_arg(s, g)
            return x, _op, _scalar, _reverse

        cases.append(ParityCase(name, ew.ScalarOp, make, (spec((7, 13)), spec((13, 7), layout="T")),
                                gradcheck_spec=spec((2, 3))))

    for name, cls, pos in (("neg", ew.Neg, False), ("exp", ew.Exp, False),
                           ("log", ew.Log, True), ("sqrt", ew.Sqrt, True), ("abs", ew.Abs, False)):
        def make(s, d, g, _pos=pos):
            return ((positive(g, first(s)) if _pos else x_arg(s, g)),)

        cases.append(ParityCase(name, cls, make, unary_specs))

    reduce_specs = (spec((3, 7, 5), dims=None, keepdim=False),
                    spec((3, 7, 5), dims=(1,), keepdim=True),
                    spec((3, 7, 5), dims=(0, 2), keepdim=False),
                    spec((13, 7), layout="T", dims=(1,), keepdim=False))
    for name, cls in (("sum", red.Sum), ("mean", red.Mean)):
        cases.append(ParityCase(
            name, cls, lambda s, d, g: (x_arg(s, g), s.option("dims"), s.option("keepdim")),
            reduce_specs, gradcheck_spec=spec((2, 3, 2), dims=(0, 2), keepdim=False)))
    return cases


def _matmul_cases() -> list:
    from ..ops import matmul as mm

    def linear_args(s, d, g):
        x = randn(g, s.shapes[0])
        w = randn(g, s.shapes[1])
        b = randn(g, s.shapes[2]) if len(s.shapes) > 2 else None
        return x, w, b

    linear_specs = (spec((5, 24), (12, 24), (12,)), spec((2, 3, 24), (12, 24), (12,)),
                    spec((5, 24), (12, 24)))
    return [
        ParityCase("matmul", mm.MatMul,
                   lambda s, d, g: (randn(g, s.shapes[0]), randn(g, s.shapes[1])),
                   (spec((5, 24), (24, 12)), spec((2, 5, 24), (24, 12)),
                    spec((2, 5, 24), (2, 24, 12))),
                   gradcheck_spec=spec((2, 2, 3), (3, 2))),
        ParityCase("linear", mm.Linear, linear_args, linear_specs,
                   gradcheck_spec=spec((2, 3), (2, 3), (2,))),
        ParityCase("linear_relu", mm.LinearReLU, linear_args, linear_specs,
                   gradcheck_spec=spec((3, 3), (2, 3), (2,))),
    ]


def _bce_cases() -> list:
    from ..ops import bce

    def bce_args(s, d, g):
        shape = s.shapes[0]
        weighted = s.option("weighted", False)
        weight = constant(torch.rand(shape[-1:], generator=g) + 0.5) if weighted else None
        pos_weight = constant(torch.rand(shape[-1:], generator=g) * 3.0) if weighted else None
        # soft labels in [0, 1]; the target is differentiable too
        return (randn(g, shape) * 3.0, torch.rand(shape, generator=g), weight, pos_weight,
                s.option("reduction"), True)

    return [ParityCase("binary_cross_entropy_with_logits", bce.BCEWithLogits, bce_args,
                       (spec((7, 13), reduction="mean"), spec((7, 13), reduction="sum",
                                                            weighted=True),
                        spec((3, 4, 5), reduction="none", weighted=True)))]


def _loss_cases() -> list:
    from ..ops import loss

    ce_specs = (spec((6, 10), reduction="mean"), spec((6, 10), reduction="sum"),
                spec((6, 10), reduction="none", smoothing=0.1),
                spec((6, 10), reduction="mean", smoothing=0.1, weighted=True))
    lce_specs = (spec((6, 16), (10, 16), (10,), reduction="mean"),
                 spec((6, 16), (10, 16), reduction="sum", smoothing=0.1),
                 spec((6, 16), (10, 16), (10,), reduction="none"))

    def ce_args(s, d, g):
        n, c = s.shapes[0]
        # row 1 carries ignore_index, so the ignored-row path is covered too
        weight = constant(randn(g, (c,)).abs() + 0.1) if s.option("weighted", False) else None
        return (randn(g, (n, c)) * 2.0, labels(g, n, c, ignored=-100), -100,
                s.option("reduction"), s.option("smoothing", 0.0), True, weight)

    def lce_args(s, d, g):
        n, h = s.shapes[0]
        c = s.shapes[1][0]
        bias = randn(g, s.shapes[2]) if len(s.shapes) > 2 else None
        return (randn(g, (n, h)), randn(g, (c, h)) * 0.3, labels(g, n, c, ignored=-100), bias,
                -100, s.option("reduction"), s.option("smoothing", 0.0), True)

    return [
        ParityCase("mse_loss", loss.MSELoss,
                   lambda s, d, g: (randn(g, s.shapes[0]), randn(g, s.shapes[0]),
                                    s.option("reduction")),
                   (spec((7, 13), reduction="mean"), spec((7, 13), reduction="sum"),
                    spec((7, 13), reduction="none")),
                   gradcheck_spec=spec((2, 3), reduction="none")),
        ParityCase("mse_loss_const_target", loss.MSELoss,
                   lambda s, d, g: (randn(g, s.shapes[0]), constant(randn(g, s.shapes[0])),
                                    s.option("reduction")),
                   (spec((7, 13), reduction="mean"),),
                   gradcheck_spec=spec((2, 3), reduction="sum")),
        ParityCase("l1_loss", loss.L1Loss,
                   lambda s, d, g: (randn(g, s.shapes[0]), randn(g, s.shapes[0]),
                                    s.option("reduction")),
                   (spec((7, 13), reduction="mean"), spec((7, 13), reduction="sum"),
                    spec((7, 13), reduction="none")),
                   gradcheck_spec=spec((2, 3), reduction="none")),
        ParityCase("cross_entropy", loss.CrossEntropy, ce_args, ce_specs,
                   gradcheck_spec=spec((3, 4), reduction="mean", smoothing=0.1, weighted=True)),
        ParityCase("linear_cross_entropy", loss.LinearCrossEntropy, lce_args, lce_specs,
                   gradcheck_spec=spec((2, 3), (4, 3), (4,), reduction="mean")),
    ] + _bce_cases() + _nll_cases()


def _nll_cases() -> list:
    from ..ops import nll

    def nll_args(s, d, g):
        n, c = s.shapes[0]
        # row 1 carries ignore_index; the input is any (N, C) tensor, log-probabilities or not
        weight = constant(randn(g, (c,)).abs() + 0.1) if s.option("weighted", False) else None
        return (randn(g, (n, c)) * 2.0, labels(g, n, c, ignored=-100), weight, -100,
                s.option("reduction"))

    return [ParityCase("nll_loss", nll.NLLLoss, nll_args,
                       (spec((6, 10), reduction="mean"), spec((6, 10), reduction="sum"),
                        spec((6, 10), reduction="none", weighted=True),
                        spec((6, 10), reduction="mean", weighted=True)),
                       gradcheck_spec=spec((3, 4), reduction="mean", weighted=True))]


def _activation_cases() -> list:
    from ..ops import activation

    def softmax_args(s, d, g):
        x = _transposed(g, s.shapes[0]) if s.option("layout") == "T" else randn(g, s.shapes[0])
        return x * 3.0, s.option("dim"), s.option("log")

    softmax_specs = (spec((7, 13), dim=1, log=False), spec((13, 7), dim=0, log=True, layout="T"),
                     spec((3, 4, 5), dim=1, log=False), spec((2, 5000), dim=-1, log=True))
    return [ParityCase("relu", activation.ReLU,
                       lambda s, d, g: (_transposed(g, s.shapes[0]) if s.option("layout") == "T"
                                        else randn(g, s.shapes[0]),),
                       (spec((7, 13)), spec((13, 7), layout="T")),
                       gradcheck_spec=spec((3, 4))),
            ParityCase("softmax", activation.Softmax, softmax_args, softmax_specs,
                       gradcheck_spec=spec((3, 4), dim=1, log=True))] + _smooth_activation_cases()


def _smooth_activation_cases() -> list:
    """tanh, sigmoid, GELU (both forms) and SiLU on 3 * randn: saturated tails included."""
    from ..ops import activation

    def x_arg(s, g):
        x = _transposed(g, s.shapes[0]) if s.option("layout") == "T" else randn(g, s.shapes[0])
        return x * 3.0

    specs = (spec((7, 13)), spec((13, 7), layout="T"))
    cases = [ParityCase(name, function, lambda s, d, g: (x_arg(s, g),), specs,
                        gradcheck_spec=spec((3, 4)))
             for name, function in (("tanh", activation.Tanh), ("sigmoid", activation.Sigmoid),
                                    ("silu", activation.SiLU))]
    gelu_specs = (spec((7, 13), approximate="none"), spec((13, 7), approximate="tanh", layout="T"))
    cases.append(ParityCase("gelu", activation.GELU,
                            lambda s, d, g: (x_arg(s, g), s.option("approximate")), gelu_specs,
                            gradcheck_spec=spec((3, 4), approximate="tanh")))
    from .ref_activation import parametrized_activation_cases

    return cases + parametrized_activation_cases()


def _unary_math_cases() -> list:
    from .ref_unary_math import unary_math_cases

    return unary_math_cases()


def _norm_cases() -> list:
    from ..ops import norm

    def norm_args(s, d, g):
        return randn(g, s.shapes[0]), s.option("p"), s.option("dim"), s.option("keepdim", False)

    def clip_args(s, d, g):
        # ||x|| of a 7x13 randn is about 9.5 (per row of 13: about 3.6): max_norm 2 clips,
        # 100 passes through; neither sits on the kink n == max_norm
        return randn(g, s.shapes[0]), s.option("max_norm"), s.option("dim")

    inf = float("inf")
    return [
        ParityCase("norm", norm.Norm, norm_args,
                   (spec((7, 13), p=2.0, dim=None), spec((7, 13), p=2.0, dim=1, keepdim=True),
                    spec((7, 13), p=inf, dim=None), spec((7, 13), p=inf, dim=0)),
                   gradcheck_spec=spec((3, 4), p=2.0, dim=1)),
        ParityCase("clip_norm", norm.ClipNorm, clip_args,
                   (spec((7, 13), max_norm=2.0, dim=None), spec((7, 13), max_norm=100.0, dim=None),
                    spec((7, 13), max_norm=2.0, dim=1)),
                   gradcheck_spec=spec((3, 4), max_norm=0.5, dim=None)),
    ]


def distinct(g: torch.Generator, shape: tuple) -> torch.Tensor:
    """Pairwise different values, exact in every dtype: k / 8 for a permutation of the
    integers k in [-n/2, n/2), n <= 256 (bf16 holds integers up to 256 exactly). max/min
    inputs drawn so have no ties, so the index torch picks on any device is the only one."""
    n = torch.Size(shape).numel()
    return ((torch.randperm(n, generator=g, device="cpu").float() - n // 2) / 8).reshape(shape)


def _reduction_cases() -> list:
    from ..ops import reduction as red

    def x_arg(s, g):
        """distinct values; ties=True: few levels, many ties; nan=True: a NaN in row 1
        (two in max()/min(), which split the gradient between them)."""
        shape = s.shapes[0]
        if s.option("layout") == "T":
            x = distinct(g, tuple(reversed(shape))).T
        elif s.option("ties"):
            x = torch.randint(-2, 3, shape, generator=g, device="cpu").float()
        else:
            x = distinct(g, shape)
        nans = s.option("nan", 0)
        if nans:
            x = x.clone()
            x.view(-1)[shape[-1] + 2] = float("nan")
            if nans > 1:
                x.view(-1)[-1] = float("nan")
        return x

    dim_specs = (spec((7, 13), dim=1, keepdim=False), spec((3, 7, 5), dim=1, keepdim=True),
                 spec((13, 7), layout="T", dim=0, keepdim=False),
                 spec((3, 7, 5), dim=-1, keepdim=False, nan=1))
    amax_specs = (spec((3, 7, 5), dims=(0, 2), keepdim=False),
                  spec((7, 13), dims=1, keepdim=True),
                  spec((13, 7), layout="T", dims=(), keepdim=False),
                  spec((7, 13), dims=1, keepdim=False, ties=True),
                  spec((7, 13), dims=0, keepdim=False, nan=1))
    all_specs = (spec((7, 13)), spec((13, 7), layout="T"), spec((7, 13), ties=True),
                 spec((7, 13), nan=2))
    cases = []
    for suffix, is_min in (("max", False), ("min", True)):
        cases += [
            ParityCase(f"{suffix}_dim", red.MaxDim,
                       lambda s, d, g, _m=is_min: (x_arg(s, g), s.option("dim"),
                                                   s.option("keepdim"), _m),
                       dim_specs, gradcheck_spec=spec((3, 4), dim=1, keepdim=False)),
            ParityCase(f"a{suffix}", red.AMax,
                       lambda s, d, g, _m=is_min: (x_arg(s, g), s.option("dims"),
                                                   s.option("keepdim"), _m),
                       amax_specs, gradcheck_spec=spec((2, 3, 2), dims=(0, 2), keepdim=False)),
            ParityCase(suffix, red.MaxAll, lambda s, d, g, _m=is_min: (x_arg(s, g), _m),
                       all_specs, gradcheck_spec=spec((3, 4))),
        ]
    return cases


def _nn_cases() -> list:
    from .ref_nn import nn_cases

    return nn_cases()


def _layer_norm_cases() -> list:
    from .ref_layer_norm import layer_norm_cases

    return layer_norm_cases()


def _moments_cases() -> list:
    from .ref_moments import moments_cases

    return moments_cases()


def _conv_cases() -> list:
    from .ref_conv import conv_cases

    return conv_cases()


def _pool_cases() -> list:
    from .ref_pool import pool_cases

    return pool_cases()


def _embedding_cases() -> list:
    from .ref_embedding import embedding_cases

    return embedding_cases()


def _gather_cases() -> list:
    from .ref_gather import gather_cases

    return gather_cases()


def _join_select_cases() -> list:
    """cat, stack, where, masked_fill and clamp."""
    from ..ops import join, select

    def tensors(s, g):
        """One tensor per shape; layout="T": the first is a view with its dims reversed."""
        shape = s.shapes[0]
        if s.option("layout") == "T":
            first = randn(g, tuple(reversed(shape))).permute(*reversed(range(len(shape))))
        else:
            first = randn(g, shape)
        return (first,) + tuple(randn(g, shape) for shape in s.shapes[1:])

    def condition(g, shape):
        return torch.rand(shape, generator=g, device="cpu") < 0.5

    def where_args(s, d, g):
        # shapes: condition, input, other; other=<number>: other is that Python number
        a = _transposed(g, s.shapes[1]) if s.option("layout") == "T" else randn(g, s.shapes[1])
        other = s.option("other")
        return condition(g, s.shapes[0]), a, randn(g, s.shapes[2]) if other is None else other

    def masked_fill_args(s, d, g):
        # value: a Python number, or "tensor": a 0-d tensor that gets a gradient too
        value = s.option("value")
        x, mask = randn(g, s.shapes[0]), condition(g, s.shapes[1])
        return x, mask, randn(g, ()) if value == "tensor" else value

    def clamp_args(s, d, g):
        x = _transposed(g, s.shapes[0]) if s.option("layout") == "T" else randn(g, s.shapes[0])
        return x, s.option("min"), s.option("max")

    return [
        ParityCase("cat", join.Cat, lambda s, d, g: (s.option("dim"),) + tensors(s, g),
                   (spec((3, 5), (4, 5), (1, 5), dim=0), spec((7, 2), (7, 5), dim=-1, layout="T"),
                    spec((2, 3, 4), (2, 1, 4), dim=1)),
                   gradcheck_spec=spec((2, 3), (1, 3), dim=0)),
        ParityCase("stack", join.Stack, lambda s, d, g: (s.option("dim"),) + tensors(s, g),
                   (spec((3, 5), (3, 5), (3, 5), dim=1),
                    spec((2, 3, 4), (2, 3, 4), dim=-1, layout="T")),
                   gradcheck_spec=spec((2, 3), (2, 3), dim=0)),
        ParityCase("where", select.Where, where_args,
                   (spec((7, 13), (7, 13), (7, 13)), spec((7, 1), (13,), (7, 13)),
                    spec((13, 7), (13, 7), (), layout="T"), spec((7, 13), (7, 13), (), other=2.5)),
                   gradcheck_spec=spec((2, 3), (3,), (2, 1))),
        ParityCase("masked_fill", select.Where, masked_fill_args,
                   (spec((7, 13), (7, 13), value=-1.5), spec((7, 13), (13,), value="tensor")),
                   gradcheck_spec=spec((2, 3), (3,), value="tensor"),
                   tg_fn=select.masked_fill, torch_fn=lambda x, mask, v: x.masked_fill(mask, v)),
        ParityCase("clamp", select.Clamp, clamp_args,
                   (spec((7, 13), min=-0.5, max=0.5), spec((13, 7), layout="T", min=None, max=0.3),
                    spec((7, 13), min=0.2, max=None), spec((7, 13), min=0.5, max=-0.5))),
    ]


_BUILTIN_FAMILIES = (_core_cases, _matmul_cases, _activation_cases, _unary_math_cases,
                     _loss_cases, _norm_cases,
                     _reduction_cases, _nn_cases, _join_select_cases, _layer_norm_cases,
                     _moments_cases,
                     _embedding_cases, _pool_cases, _gather_cases,
                     _conv_cases)
ENV_VAR = "TRITONGRAD_PARITY_CASES"


def builtin_cases() -> list:
    cases = []
    for family in _BUILTIN_FAMILIES:
        cases.extend(family())
    return cases


def load_case_module(module_name: str) -> list:
    """The ``CASES`` list of an extra module (a user's ops, or a test's planted bug)."""
    module = importlib.import_module(module_name)
    cases = getattr(module, "CASES", None)
    if cases is None:
        raise LookupError(f"case module {module_name!r} defines no CASES list")
    return list(cases)


def all_cases(extra_modules: list | tuple = ()) -> list:
    """Built-in cases plus those of ``extra_modules`` and of $TRITONGRAD_PARITY_CASES."""
    modules = list(extra_modules)
    modules += [m.strip() for m in os.environ.get(ENV_VAR, "").split(",") if m.strip()]
    cases = builtin_cases()
    for name in modules:
        cases.extend(load_case_module(name))
    names = [c.name for c in cases]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"parity case names must be unique; repeated: {duplicates}")
    return cases


def select(cases: list, ops: list | None) -> list:
    """Cases whose name or Function class name matches one of ``ops`` (case-insensitive)."""
    if not ops:
        return list(cases)
    wanted = {o.strip().lower() for o in ops if o.strip()}
    chosen = [c for c in cases
              if c.name.lower() in wanted or c.function.__name__.lower() in wanted]
    unknown = wanted - {c.name.lower() for c in chosen} - {c.function.__name__.lower()
                                                          for c in chosen}
    if unknown:
        raise LookupError(f"no parity case for {sorted(unknown)}; known: "
                          f"{', '.join(sorted(c.name for c in cases))}")
    return chosen
