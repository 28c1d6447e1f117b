"""Pooling launchers (kernels/pool.py) against torch: forward values, max indices (exactly)
and input gradients at the table tolerance, in fp32 / fp16 / bf16 / fp64; odd sizes,
overlapping and ceil-mode windows, dilation, strided views, NaN / -inf / ties; errors."""

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import DEVICE
from tests.launches import recorded_launches
from tritongrad.kernels import pool
from tritongrad.kernels._checks import DeviceError, DTypeError, ShapeError
from tritongrad.testing.compare import assert_close

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]


def randn(*shape, dtype=torch.float32):
    return torch.randn(shape, dtype=torch.float64).to(dtype).to(DEVICE)


def wide(t):
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def torch_grad(fn, x, dy):
    """(y, dx) of torch's ``fn`` in fp32 (fp64 for fp64) on the already rounded x, each
    rounded once to x's dtype (see ref_pool: torch's half backward rounds at every add)."""
    leaf = wide(x).detach().clone().requires_grad_(True)
    out = fn(leaf)
    y = out[0] if isinstance(out, tuple) else out
    y.backward(wide(dy))
    return out, leaf.grad.to(x.dtype)


# (kernel_size, stride, padding, dilation, ceil_mode) on 7x9 planes
MAX_CONFIGS = {
    "k2": (2, None, 0, 1, False),
    "k3-s1-overlap": (3, 1, 0, 1, False),
    "k3-s2-p1": (3, 2, 1, 1, False),
    "k2-ceil": (2, 2, 0, 1, True),
    "k3x2-s2x1-p1x0-ceil": ((3, 2), (2, 1), (1, 0), 1, True),
    "k3-s2-p1-dil2": (3, 2, 1, 2, False),
    "k2-s1-dil(1,3)-overlap": (2, 1, 0, (1, 3), False),
}


def check_max(x, config, dy=None):
    kernel, stride, padding, dilation, ceil_mode = config
    y, indices = pool.max_pool2d_fwd(x, kernel, stride, padding, dilation, ceil_mode)
    dy = randn(*y.shape, dtype=x.dtype) if dy is None else dy
    (y_ref, idx_ref), dx_ref = torch_grad(
        lambda t: F.max_pool2d(t, kernel, stride, padding, dilation, ceil_mode,
                               return_indices=True), x, dy)
    assert y.dtype == x.dtype and indices.dtype == torch.int64
    assert y.shape == y_ref.shape and y.is_contiguous()
    assert torch.equal(indices, idx_ref), (indices, idx_ref)
    assert_close(y, y_ref.to(x.dtype), dtype=x.dtype, name="y")
    dx = pool.max_pool2d_bwd(dy, indices, tuple(x.shape), kernel, stride, padding, dilation,
                             ceil_mode)
    assert dx.dtype == x.dtype and dx.shape == x.shape
    assert_close(dx, dx_ref, dtype=x.dtype, name="dx")
    return y, indices, dx


def runs(configs, every_dtype):
    """(name, dtype) pairs: every config in fp32, the ``every_dtype`` ones in all four
    dtypes (the interpreter's time goes to launches: fewer rows, same coverage)."""
    pairs = [(name, torch.float32) for name in sorted(configs)]
    return pairs + [(name, dtype) for name in every_dtype for dtype in DTYPES[1:]]


@pytest.mark.parametrize("name,dtype", runs(MAX_CONFIGS, ["k3-s1-overlap",
                                                          "k3x2-s2x1-p1x0-ceil",
                                                          "k3-s2-p1-dil2"]))
def test_max_pool2d_matches_torch(name, dtype):
    torch.manual_seed(0)
    check_max(randn(2, 3, 7, 9, dtype=dtype), MAX_CONFIGS[name])


# (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG_CONFIGS = {
    "k2": (2, None, 0, False, True, None),
    "k3-s1-p1-overlap": (3, 1, 1, False, True, None),
    "k3-s1-p1-exclude-pad": (3, 1, 1, False, False, None),
    # 7 rows, windows 2 apart: the last starts at row 6 and runs past H + p = 7, so its
    # count_include_pad divisor is clipped to 1 row
    "k2-ceil-past-padded-input": (2, 2, 0, True, True, None),
    "k3-s2-p1-ceil-exclude-pad": (3, 2, 1, True, False, None),
    "k3x2-s2x1-p1x0-ceil": ((3, 2), (2, 1), (1, 0), True, True, None),
    "k3-s2-p1-divisor5": (3, 2, 1, False, True, 5),
    "k2-s1-divisor-3-ceil": (2, 1, 1, True, False, -3),
}


@pytest.mark.parametrize("name,dtype", runs(AVG_CONFIGS, ["k3-s1-p1-overlap",
                                                          "k2-ceil-past-padded-input",
                                                          "k3-s2-p1-ceil-exclude-pad"]))
def test_avg_pool2d_matches_torch(name, dtype):
    torch.manual_seed(1)
    x = randn(2, 3, 7, 9, dtype=dtype)
    args = AVG_CONFIGS[name]
    y = pool.avg_pool2d_fwd(x, *args)
    dy = randn(*y.shape, dtype=dtype)
    y_ref, dx_ref = torch_grad(lambda t: F.avg_pool2d(t, *args), x, dy)
    assert y.dtype == dtype and y.shape == y_ref.shape
    assert_close(y, y_ref.to(dtype), dtype=dtype, name="y")
    dx = pool.avg_pool2d_bwd(dy, tuple(x.shape), *args)
    assert dx.dtype == dtype and dx.shape == x.shape
    assert_close(dx, dx_ref, dtype=dtype, name="dx")


ADAPTIVE_SIZES = {"3x4": (3, 4), "global": 1, "None-x2": (None, 2), "upsample-10x11": (10, 11),
                  "identity": (7, 9), "5x2": [5, 2]}


@pytest.mark.parametrize("name,dtype", runs(ADAPTIVE_SIZES, ["3x4", "upsample-10x11"]))
def test_adaptive_avg_pool2d_matches_torch(name, dtype):
    torch.manual_seed(2)
    x = randn(2, 3, 7, 9, dtype=dtype)
    size = ADAPTIVE_SIZES[name]
    y = pool.adaptive_avg_pool2d_fwd(x, size)
    dy = randn(*y.shape, dtype=dtype)
    y_ref, dx_ref = torch_grad(lambda t: F.adaptive_avg_pool2d(t, size), x, dy)
    assert y.dtype == dtype and y.shape == y_ref.shape
    assert_close(y, y_ref.to(dtype), dtype=dtype, name="y")
    dx = pool.adaptive_avg_pool2d_bwd(dy, tuple(x.shape))
    assert_close(dx, dx_ref, dtype=dtype, name="dx")


def views(dtype):
    """Non-contiguous (N, C, H, W) views of 7x9 planes, read in place by the kernels."""
    return {"channels-last": randn(2, 7, 9, 3, dtype=dtype).permute(0, 3, 1, 2),
            "hw-transposed": randn(2, 3, 9, 7, dtype=dtype).transpose(2, 3),
            "sliced": randn(3, 4, 14, 10, dtype=dtype)[1:, ::2, ::2, 1:],
            "expanded": randn(1, 1, 7, 9, dtype=dtype).expand(2, 3, 7, 9)}


@pytest.mark.parametrize("dtype,layouts", [(torch.float32, None),
                                            (torch.bfloat16, ["channels-last"])], ids=str)
def test_strided_inputs_and_gradients(dtype, layouts):
    torch.manual_seed(3)
    for name, x in views(dtype).items():
        if layouts is not None and name not in layouts:
            continue
        assert not x.is_contiguous(), name
        x_copy = x.contiguous()
        y, idx, dx = check_max(x, MAX_CONFIGS["k3-s2-p1"])
        assert torch.equal(pool.max_pool2d_fwd(x_copy, 3, 2, 1)[1], idx)
        args = AVG_CONFIGS["k3-s1-p1-exclude-pad"]
        y = pool.avg_pool2d_fwd(x, *args)
        assert torch.equal(y, pool.avg_pool2d_fwd(x_copy, *args)), name
        # a non-contiguous upstream gradient (an expanded one: every dy = 1.5, and a
        # transposed one)
        for dy in (torch.full((1,), 1.5, dtype=dtype).expand(y.shape),
                   randn(*reversed(y.shape), dtype=dtype).permute(3, 2, 1, 0)):
            _, dx_ref = torch_grad(lambda t: F.avg_pool2d(t, *args), x, dy)
            assert_close(pool.avg_pool2d_bwd(dy, tuple(x.shape), *args), dx_ref, dtype=dtype,
                         name=f"{name} dx")
        y = pool.adaptive_avg_pool2d_fwd(x, (3, 4))
        assert_close(y, F.adaptive_avg_pool2d(wide(x), (3, 4)).to(dtype), dtype=dtype, name=name)


def test_unbatched_batch_one_and_empty_batch():
    torch.manual_seed(4)
    x = randn(3, 7, 9)
    y, idx, dx = check_max(x, MAX_CONFIGS["k3-s2-p1"])
    assert y.shape == (3, 4, 5) and dx.shape == (3, 7, 9)
    check_max(randn(1, 1, 7, 9), MAX_CONFIGS["k2-ceil"])
    y = pool.avg_pool2d_fwd(x, 2)
    assert_close(y, F.avg_pool2d(x, 2), dtype=torch.float32)
    assert pool.avg_pool2d_bwd(randn(3, 3, 4), (3, 7, 9), 2).shape == (3, 7, 9)
    assert pool.adaptive_avg_pool2d_fwd(x, 1).shape == (3, 1, 1)
    with recorded_launches() as launches:  # N = 0: torch's empty results, no launch
        y, idx = pool.max_pool2d_fwd(randn(0, 3, 7, 9), 2)
        assert y.shape == idx.shape == (0, 3, 3, 4)
        assert pool.avg_pool2d_fwd(randn(0, 3, 7, 9), 2).shape == (0, 3, 3, 4)
        assert pool.max_pool2d_bwd(y, idx, (0, 3, 7, 9), 2).shape == (0, 3, 7, 9)
        assert pool.adaptive_avg_pool2d_fwd(randn(2, 3, 7, 9), (0, 2)).shape == (2, 3, 0, 2)
        dx = pool.adaptive_avg_pool2d_bwd(randn(2, 3, 0, 2), (2, 3, 7, 9))
        assert torch.equal(dx, torch.zeros(2, 3, 7, 9))
    assert launches == []


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
def test_nan_and_infinities_as_torch(dtype):
    """A NaN wins its window and a later NaN replaces an earlier one (torch's index); an
    all -inf window picks its first real element; +inf wins; the gradient follows."""
    torch.manual_seed(5)
    x = randn(1, 2, 7, 9, dtype=dtype)
    x[0, 0, 1, 1] = x[0, 0, 1, 2] = float("nan")  # two NaN in one window
    x[0, 0, 5, 5] = float("inf")  # a row and column that the dilated taps reach
    x[0, 1, :3, :] = float("-inf")  # all -inf windows, also next to padding
    x[0, 1, 5, 7] = float("nan")
    for name in ("k3-s1-overlap", "k3-s2-p1", "k2-ceil", "k3-s2-p1-dil2"):
        y, _, _ = check_max(x, MAX_CONFIGS[name])
        assert y.isnan().any() and y.isinf().any()
        assert name.endswith("dil2") or (y == float("-inf")).any()  # dilated taps reach row 3
    # averages: NaN and inf propagate to their windows only; the gradient ignores x
    args = AVG_CONFIGS["k3-s1-p1-overlap"]
    y = pool.avg_pool2d_fwd(x, *args)
    assert_close(y, F.avg_pool2d(wide(x), *args).to(dtype), dtype=dtype)
    assert_close(pool.adaptive_avg_pool2d_fwd(x, (2, 3)),
                 F.adaptive_avg_pool2d(wide(x), (2, 3)).to(dtype), dtype=dtype)


def test_tied_maxima_pick_the_first_in_scan_order():
    """Values from {0, 1, 2}: most windows hold ties. Overlapping windows (stride 1) that
    pick one element accumulate their gradients there."""
    torch.manual_seed(6)
    x = torch.randint(0, 3, (2, 3, 7, 9)).float()
    for name in ("k3-s1-overlap", "k3-s2-p1", "k2-s1-dil(1,3)-overlap"):
        _, _, dx = check_max(x, MAX_CONFIGS[name])
    assert (dx > 0).sum() < dx.numel()
    constant = torch.zeros(1, 1, 7, 9)
    y, idx, _ = check_max(constant, MAX_CONFIGS["k3-s1-overlap"], dy=torch.ones(1, 1, 5, 7))
    assert idx[0, 0, 0, 0] == 0 and idx[0, 0, 4, 6] == 4 * 9 + 6


def test_several_programs(monkeypatch):
    """Blocks of 64 elements: the flat output and input split over programs."""
    monkeypatch.setattr(pool, "MAX_BLOCK", 64)
    torch.manual_seed(7)
    x = randn(2, 3, 7, 9)
    with recorded_launches() as launches:
        check_max(x, MAX_CONFIGS["k3-s2-p1"])
        dy = randn(2, 3, 3, 4)
        dx = pool.adaptive_avg_pool2d_bwd(dy, tuple(x.shape))
    _, dx_ref = torch_grad(lambda t: F.adaptive_avg_pool2d(t, (3, 4)), x, dy)
    assert_close(dx, dx_ref, dtype=torch.float32)
    grids = {i.kernel_name: i.grid for i in launches}
    assert grids == {"max_pool2d_fwd_kernel": (2,), "max_pool2d_bwd_kernel": (6,),
                     "avg_pool2d_bwd_kernel": (6,)}


def test_backward_is_deterministic():
    torch.manual_seed(8)
    x = randn(2, 3, 7, 9)
    _, idx = pool.max_pool2d_fwd(x, 3, 1, 1)
    dy = randn(*idx.shape)
    first = pool.max_pool2d_bwd(dy, idx, tuple(x.shape), 3, 1, 1)
    assert torch.equal(first, pool.max_pool2d_bwd(dy, idx, tuple(x.shape), 3, 1, 1))
    first = pool.avg_pool2d_bwd(dy, tuple(x.shape), 3, 1, 1)
    assert torch.equal(first, pool.avg_pool2d_bwd(dy, tuple(x.shape), 3, 1, 1))


def test_output_sizes_match_torch():
    """The shape rules alone (no launch), over sizes, kernels, strides, paddings,
    dilations and ceil mode, against torch on the meta device."""
    for size in (1, 2, 5, 7, 8):
        for kernel in (1, 2, 3):
            for stride in (1, 2, 3):
                for pad in range(kernel // 2 + 1):
                    for dilation in (1, 2):
                        for ceil_mode in (False, True):
                            try:
                                expected = F.max_pool2d(torch.empty(1, 1, size, size,
                                                                    device="meta"),
                                                        kernel, stride, pad, dilation,
                                                        ceil_mode).shape[-2:]
                            except RuntimeError:
                                expected = None
                            try:
                                out = pool.pool2d_geometry("max_pool2d", (1, 1, size, size),
                                                           kernel, stride, pad, dilation,
                                                           ceil_mode)[-1]
                            except ShapeError:
                                out = None
                            assert out == (None if expected is None else tuple(expected)), \
                                (size, kernel, stride, pad, dilation, ceil_mode)


def raises(error, match, fn, *args, **kwargs):
    with pytest.raises(error, match=match):
        fn(*args, **kwargs)


def test_errors_before_any_launch():
    x = randn(1, 2, 5, 5)
    with recorded_launches() as launches:
        raises(ShapeError, r"3D or 4D .* but got: \[5, 5\]", pool.max_pool2d_fwd, randn(5, 5), 2)
        raises(ShapeError, r"3D or 4D .* but got: \[1, 1, 1, 5, 5\]", pool.avg_pool2d_fwd,
               randn(1, 1, 1, 5, 5), 2)
        raises(ShapeError, r"but got: \[1, 0, 5, 5\]", pool.max_pool2d_fwd, randn(1, 0, 5, 5), 2)
        raises(DTypeError, r"max_pool2d: input has dtype int64", pool.max_pool2d_fwd,
               torch.zeros(1, 2, 5, 5, dtype=torch.int64), 2)
        raises(DTypeError, r"avg_pool2d: input has dtype int32", pool.avg_pool2d_fwd,
               torch.zeros(1, 2, 5, 5, dtype=torch.int32), 2)
        raises(DeviceError, r"max_pool2d: .*input is on meta", pool.max_pool2d_fwd,
               torch.empty(1, 2, 5, 5, device="meta"), 2)
        raises(ShapeError, r"pad should be at most half of effective kernel size, but got "
               r"pad=2, kernel_size=3 and dilation=1", pool.max_pool2d_fwd, x, 3, 1, 2)
        raises(ShapeError, r"pad should be at most half of effective kernel size",
               pool.avg_pool2d_fwd, x, 2, 1, 2)
        raises(ShapeError, r"pad should be smaller than or equal to half of kernel size, but "
               r"got padW = 2, padH = 2, kW = 3, kH = 3", pool.max_pool2d_fwd, x, 3, 1, 2, 2)
        raises(ShapeError, r"pad must be non-negative, but got pad: -1", pool.avg_pool2d_fwd,
               x, 2, 1, -1)
        raises(ShapeError, r"Given input size: \(2x5x5\). Calculated output size: "
               r"\(2x-1x-1\). Output size is too small", pool.max_pool2d_fwd, x, 7, 1)
        raises(ShapeError, r"Given input size: \(3x1x1\). Calculated output size: "
               r"\(3x0x0\). Output size is too small", pool.avg_pool2d_fwd, randn(3, 1, 1), 2)
        raises(ShapeError, r"stride should not be zero", pool.max_pool2d_fwd, x, 2, 0)
        raises(ShapeError, r"stride should not be zero", pool.max_pool2d_fwd, x, 0)
        raises(ShapeError, r"kernel size should be greater than zero, but got kH: 0 kW: 2",
               pool.avg_pool2d_fwd, x, (0, 2), 1)
        raises(ShapeError, r"stride should be greater than zero, but got dH: -1 dW: -1",
               pool.max_pool2d_fwd, x, 2, -1)
        raises(ShapeError, r"dilation should be greater than zero, but got dilationH: 0 "
               r"dilationW: 0", pool.max_pool2d_fwd, x, 2, 1, 0, 0)
        raises(ShapeError, r"max_pool2d: kernel_size must either be a single int, or a tuple "
               r"of two ints", pool.max_pool2d_fwd, x, (2, 2, 2))
        raises(ShapeError, r"avg_pool2d: stride must either be omitted, a single int, or a "
               r"tuple of two ints", pool.avg_pool2d_fwd, x, 2, (1, 1, 1))
        raises(DTypeError, r"argument 'kernel_size' must be tuple of ints, not float",
               pool.max_pool2d_fwd, x, 2.0)
        raises(ShapeError, r"avg_pool2d: divisor must be not zero", pool.avg_pool2d_fwd, x, 2,
               divisor_override=0)
        raises(DTypeError, r"'divisor_override' must be int, not float", pool.avg_pool2d_fwd,
               x, 2, divisor_override=2.5)
        raises(ShapeError, r"adaptive_avg_pool2d\(\): Expected 3D or 4D tensor, but got "
               r"\[5, 5\]", pool.adaptive_avg_pool2d_fwd, randn(5, 5), 2)
        raises(ShapeError, r"non-zero size for non-batch dimensions, but input has sizes "
               r"\[2, 3, 0, 3\] with dimension 2 being empty", pool.adaptive_avg_pool2d_fwd,
               randn(2, 3, 0, 3), 2)
        raises(ShapeError, r"output_size must be greater than or equal to 0 but received "
               r"\{-1, 2\}", pool.adaptive_avg_pool2d_fwd, x, (-1, 2))
        raises(ShapeError, r"output_size must be 2", pool.adaptive_avg_pool2d_fwd, x, (1, 2, 3))
        raises(DTypeError, r"adaptive_avg_pool2d: input has dtype int64",
               pool.adaptive_avg_pool2d_fwd, torch.zeros(1, 2, 5, 5, dtype=torch.int64), 2)
        # backward launchers check what they are handed
        y, idx = pool.max_pool2d_fwd(x, 2)
    assert [i.kernel_name for i in launches] == ["max_pool2d_fwd_kernel"]
    with recorded_launches() as launches:
        raises(ShapeError, r"grad_output has shape \(1, 2, 3, 3\); the forward's output has "
               r"shape \(1, 2, 2, 2\)", pool.max_pool2d_bwd, randn(1, 2, 3, 3), idx,
               (1, 2, 5, 5), 2)
        raises(DTypeError, r"indices has dtype int32", pool.max_pool2d_bwd, y, idx.int(),
               (1, 2, 5, 5), 2)
        raises(ShapeError, r"avg_pool2d backward: grad_output has shape", pool.avg_pool2d_bwd,
               y, (1, 2, 7, 7), 2)
        raises(ShapeError, r"does not pool an input of shape \(1, 3, 5, 5\)",
               pool.adaptive_avg_pool2d_bwd, y, (1, 3, 5, 5))
    assert launches == []
