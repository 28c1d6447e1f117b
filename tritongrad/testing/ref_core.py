"""Torch references of the core Functions: copies, views, elementwise, reductions."""

import torch

from ..ops import copy as copy_ops
from ..ops import elementwise as ew
from ..ops import reduction as red
from ..ops import views
from .references import register_reference


def _scalar_op(a, op, scalar, reverse):
    if op == "add":
        return a + scalar
    if op == "sub":
        return scalar - a if reverse else a - scalar
    if op == "mul":
        return a * scalar
    if op == "div":
        return scalar / a if reverse else a / scalar
    return scalar ** a if reverse else a ** scalar


def _sum(x, dims, keepdim):
    return x.sum() if dims is None and not keepdim else x.sum(dim=dims if dims is not None else tuple(range(x.dim())), keepdim=keepdim)


def _mean(x, dims, keepdim):
    return x.mean() if dims is None and not keepdim else x.mean(dim=dims if dims is not None else tuple(range(x.dim())), keepdim=keepdim)


for cls, fn in {
    copy_ops.Clone: lambda x: x.clone(),
    copy_ops.Cast: lambda x, dtype: x.to(dtype),
    views.Reshape: lambda x, shape: x.reshape(shape),
    views.View: lambda x, shape: x.view(shape),
    views.Permute: lambda x, dims: x.permute(dims),
    views.Transpose: lambda x, d0, d1: x.transpose(d0, d1),
    views.Expand: lambda x, shape: x.expand(shape),
    views.GetItem: lambda x, index: x[index],
    ew.Add: lambda a, b: a + b,
    ew.Sub: lambda a, b: a - b,
    ew.Mul: lambda a, b: a * b,
    ew.Div: lambda a, b: a / b,
    ew.ScalarOp: _scalar_op,
    ew.Neg: lambda a: -a,
    ew.Exp: torch.exp,
    ew.Log: torch.log,
    ew.Sqrt: torch.sqrt,
    ew.Abs: torch.abs,
    ew.Maximum: torch.maximum,
    ew.Minimum: torch.minimum,
    red.Sum: _sum,
    red.Mean: _mean,
}.items():
    register_reference(cls, fn)
