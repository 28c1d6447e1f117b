"""max / min / amax / amin / argmin launchers and their backward launchers, against torch.

References are computed on CPU copies: torch's CPU kernels define which index a tie or a
NaN gives (the first), and that is what ours return on every device."""

import pytest
import torch

from tests.conftest import DEVICE
from tests.launches import recorded_launches
from tritongrad.kernels import reduction
from tritongrad.kernels._checks import DTypeError, OutOfRangeError, ShapeError
from tritongrad.testing.compare import assert_close

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy on x / 0

FLOATS = [torch.float32, torch.float16, torch.bfloat16]
NAN, INF = float("nan"), float("inf")


def distinct(*shape, dtype=torch.float32):
    """Pairwise different values, exact in every dtype (k / 8, |k| <= 128): no ties."""
    n = torch.Size(shape).numel()
    assert n <= 256
    return ((torch.randperm(n, device="cpu").float() - n // 2) / 8).reshape(shape).to(dtype)


def layouts(dtype, ties=False):
    """(name, x) for a 3x4x5 CPU tensor laid out four ways; ties: values in {-2..2}."""
    def make(*shape):
        if ties:
            return torch.randint(-2, 3, shape, device="cpu").to(dtype)
        return distinct(*shape, dtype=dtype)

    return [("contiguous", make(3, 4, 5)), ("permuted", make(5, 4, 3).permute(2, 1, 0)),
            ("sliced", make(3, 4, 10)[:, :, ::2]), ("transposed", make(3, 5, 4).transpose(1, 2))]


def on_device(x):
    return x.to(DEVICE)


def check_max_dim(x, dim, keepdim, is_min):
    """values and indices equal torch's CPU result exactly (NaN matching NaN)."""
    values, indices = reduction.max_dim(on_device(x), dim, keepdim, is_min)
    expected = (torch.min if is_min else torch.max)(x, dim, keepdim)
    assert values.dtype == x.dtype and indices.dtype == torch.int64
    assert torch.equal(indices.cpu(), expected.indices), (dim, keepdim, indices, expected)
    assert torch.equal(values.cpu().isnan(), expected.values.isnan())
    assert torch.equal(values.cpu().nan_to_num(), expected.values.nan_to_num())


# (dim, keepdim, is_min): every dim of a 3-D tensor, negative dims, both keepdims, both ops
DIM_CASES = [(0, False, False), (1, True, True), (-1, False, True), (-3, True, False)]


@pytest.mark.parametrize("dtype", FLOATS + [torch.int64, torch.bool], ids=str)
def test_max_dim_values_and_indices_with_ties(dtype):
    views = layouts(dtype, ties=True)  # ties everywhere: the first index wins
    for name, x in views if dtype == torch.float32 else views[1::2]:
        for dim, keepdim, is_min in DIM_CASES:
            check_max_dim(x, dim, keepdim, is_min)


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_nan_wins_and_infinities(dtype):
    x = torch.tensor([[1.0, NAN, 3.0, NAN], [-INF, -INF, -INF, -INF], [INF, 2.0, INF, -INF],
                      [NAN, NAN, NAN, NAN], [0.0, -0.0, 5.0, -5.0]], device="cpu").to(dtype)
    for dim, is_min in ((0, False), (1, True)):
        check_max_dim(x, dim, False, is_min)
        check_max_dim(x, 1 - dim, False, is_min)
        ours = reduction.amax(on_device(x), dim, is_min=is_min)
        assert_close(ours, (x.amin if is_min else x.amax)(dim), dtype=dtype)
    assert torch.equal(reduction.argmin(on_device(x), 1).cpu(), x.argmin(1))
    assert reduction.argmin(on_device(x)).item() == x.argmin().item() == 1
    assert reduction.amax(on_device(x), is_min=True).isnan().item()


def test_integers_and_bools_are_exact():
    big = torch.tensor([[2**40 + 1, 2**40, -5], [-(2**62), 7, 2**62]], device="cpu")
    flags = torch.tensor([[True, False, True], [False, False, False]], device="cpu")
    for x in (big, big.to(torch.int32).clamp(-100, 100), big.abs().to(torch.uint8), flags):
        for is_min in (False, True):
            check_max_dim(x, 1, False, is_min)
            got = reduction.amax(on_device(x), (0, 1), is_min=is_min)
            assert got.dtype == x.dtype
            assert torch.equal(got.cpu(), (x.amin if is_min else x.amax)((0, 1)))
            assert torch.equal(reduction.amax(on_device(x), 0, keepdim=True, is_min=is_min).cpu(),
                               (x.amin if is_min else x.amax)(0, keepdim=True))


@pytest.mark.parametrize("dims", [None, (), 0, (1,), (0, 2), (-1, 0), (0, 1, 2)])
def test_amax_amin_over_dims(dims):
    views = [(torch.float32, layouts(torch.float32)[0]), (torch.float16, layouts(torch.float16)[1]),
             (torch.bfloat16, layouts(torch.bfloat16)[2])]
    for (dtype, (name, x)), (is_min, keepdim) in zip(views, ((False, False), (True, True),
                                                            (False, True))):
        ours = reduction.amax(on_device(x), dims, keepdim, is_min)
        torch_dims = () if dims is None else dims
        expected = (torch.amin if is_min else torch.amax)(x, torch_dims, keepdim)
        assert ours.shape == expected.shape, (name, dims)
        assert torch.equal(ours.cpu(), expected), (name, dims, is_min)


def test_argmin_matches_torch():
    x = torch.randint(-3, 4, (7, 13), device="cpu").float()  # ties: the first wins
    for dim, keepdim in ((None, False), (None, True), (0, False), (1, True), (-1, False)):
        for view in (x, x.T.contiguous().T):
            got = reduction.argmin(on_device(view), dim, keepdim)
            assert torch.equal(got.cpu(), view.argmin(dim, keepdim=keepdim)), (dim, keepdim)
    scalar = torch.tensor(3.0, device="cpu")
    assert torch.equal(reduction.argmin(on_device(scalar), 0, True).cpu(), scalar.argmin(0, True))


def test_across_column_tiles():
    x = torch.zeros(3, 2500, device="cpu")  # three tiles of ARGMAX_TILE = 1024 per row
    x[0, 1500] = x[0, 2400] = -5.0  # a tie in a later tile
    x[1, 100], x[1, 2000] = -9.0, NAN  # a later NaN beats an earlier minimum
    x[2, :] = 1.0
    x[2, 2499] = 0.5
    values, indices = reduction.max_dim(on_device(x), 1, is_min=True)
    assert indices.tolist() == x.min(1).indices.tolist() == [1500, 2000, 2499]
    assert values.cpu()[1].isnan() and values.tolist()[::2] == [-5.0, 0.5]
    assert reduction.max_dim(on_device(x), 1)[1].tolist() == x.max(1).indices.tolist()
    assert reduction.argmin(on_device(x)).item() == x.argmin().item()


def split_case(n_cols, dtype, is_min):
    """One row of n_cols (enough columns that the reduction splits) with the extreme tied at
    the first column of a later split and again further on, so the first must win."""
    x = (torch.arange(n_cols, device="cpu") % 7 - 3).to(dtype)
    extreme = -5 if is_min else 5
    x[5000], x[n_cols - 3] = extreme, extreme
    return x


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int64], ids=str)
def test_few_rows_many_columns_split_over_programs(dtype):
    """x.max() over 12,000 elements runs as per-split extremes and a pick among them: the
    first occurrence still wins, NaN still wins, values are exact."""
    n_cols = 12_000
    for is_min in (False, True):
        x = split_case(n_cols, dtype, is_min)
        with recorded_launches() as launches:
            values, indices = reduction.max_dim(on_device(x), 0, is_min=is_min)
        assert [info.kernel_name for info in launches] == ["minmax_kernel"] * 2
        assert indices.item() == 5000 and values.item() == (-5 if is_min else 5)
        op = torch.amin if is_min else torch.amax
        assert reduction.amax(on_device(x), is_min=is_min).item() == op(x).item()
        assert reduction.argmin(on_device(x)).item() == x.argmin().item()
        assert reduction.argmax(on_device(x)).item() == x.argmax().item()
        two_rows = torch.stack([x, x.flip(0)])  # rows along memory and across it
        for view in (two_rows, two_rows.t().contiguous().t()):
            values, indices = reduction.max_dim(on_device(view), 1, is_min=is_min)
            expected = (torch.min if is_min else torch.max)(view, 1)
            assert torch.equal(indices.cpu(), expected.indices)
            assert torch.equal(values.cpu(), expected.values)
    if dtype.is_floating_point:
        x = split_case(n_cols, dtype, False)
        x[9000], x[11000] = NAN, NAN  # the first NaN, in a later split than the maximum
        values, indices = reduction.max_dim(on_device(x), 0, is_min=True)
        assert indices.item() == 9000 and values.isnan().item()


def test_launch_counts():
    x = on_device(distinct(3, 4, 5))
    whole = reduction.amax(x)
    for fn, expected in [
        (lambda: reduction.max_dim(x, 2), ["minmax_kernel"]),
        (lambda: reduction.amax(x), ["minmax_kernel"]),
        (lambda: reduction.amax(x, (0, 2)), ["copy_kernel", "minmax_kernel"]),  # interleaved
        (lambda: reduction.argmin(x.transpose(0, 2), 1), ["copy_kernel", "minmax_kernel"]),
        (lambda: reduction.max_dim_bwd(torch.ones(3, 4), torch.zeros(3, 4, dtype=torch.int64),
                                       (3, 4, 5), -1, False), ["minmax_bwd_kernel"]),
        (lambda: reduction.amax_bwd(torch.ones(()), x, whole, None, False),
         ["minmax_bwd_kernel"]),
    ]:
        with recorded_launches() as launches:
            fn()
        assert [info.kernel_name for info in launches] == expected


# --- backward --------------------------------------------------------------------------------


def torch_grad(fn, x, grad):
    """d(fn(x)) / dx applied to grad, by torch.autograd on the CPU, in x's dtype."""
    leaf = x.detach().clone().requires_grad_(True)
    out = fn(leaf)
    out = out[0] if isinstance(out, tuple) else out
    out.backward(grad)
    return leaf.grad


def test_max_dim_bwd_sends_the_gradient_to_the_index():
    for dtype, index in ((torch.float32, 0), (torch.float32, 3), (torch.float16, 1),
                         (torch.bfloat16, 2)):
        name, x = layouts(dtype, ties=True)[index]  # with ties: only the returned index
        for dim, keepdim, is_min in DIM_CASES[:3]:
            values, indices = reduction.max_dim(on_device(x), dim, keepdim, is_min)
            grad = torch.randn(values.shape, device="cpu").to(dtype)
            ours = reduction.max_dim_bwd(on_device(grad), indices, x.shape, dim, keepdim)
            expected = torch_grad(lambda t: (torch.min if is_min else torch.max)(t, dim, keepdim),
                                  x, grad)
            assert ours.shape == x.shape and ours.dtype == dtype
            assert_close(ours, expected, dtype=dtype, name=f"{name} dim={dim}")


@pytest.mark.parametrize("dims", [None, 1, (0, 2), (-1,)])
def test_amax_bwd_splits_among_ties(dims):
    for dtype, ties, index, keepdim, is_min in ((torch.float32, True, 0, False, False),
                                                (torch.float16, False, 1, True, True),
                                                (torch.bfloat16, True, 3, False, True)):
        name, x = layouts(dtype, ties=ties)[index]
        result = reduction.amax(on_device(x), dims, keepdim, is_min)
        grad = torch.randn(result.shape, device="cpu").to(dtype)
        ours = reduction.amax_bwd(on_device(grad), on_device(x), result, dims, keepdim)
        torch_dims = () if dims is None else dims
        expected = torch_grad(
            lambda t: (torch.amin if is_min else torch.amax)(t, torch_dims, keepdim), x, grad)
        assert_close(ours, expected, dtype=dtype, name=f"{name} ties={ties}")


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_backward_nan_rules(dtype):
    """max()/min() share the gradient among the NaNs; amax/amin make a NaN slice's
    gradient NaN; a NaN incoming gradient reaches only the ties in max() (torch's
    masked_fill) but every element of amax's slice (its multiplication by the mask)."""
    x = torch.tensor([[1.0, NAN, 3.0, NAN], [2.0, 5.0, 5.0, 1.0]], device="cpu").to(dtype)
    whole = reduction.amax(on_device(x))
    ours = reduction.amax_bwd(on_device(torch.tensor(2.0, device="cpu").to(dtype)), on_device(x),
                              whole, None, False, nan_ties=True)
    assert_close(ours, torch_grad(torch.max, x, torch.tensor(2.0, device="cpu").to(dtype)),
                 dtype=dtype)
    rows = reduction.amax(on_device(x), 1)
    grad = torch.tensor([1.0, 3.0], device="cpu").to(dtype)
    ours = reduction.amax_bwd(on_device(grad), on_device(x), rows, 1, False)
    expected = torch_grad(lambda t: t.amax(1), x, grad)
    assert ours.cpu()[0].isnan().all() and expected[0].isnan().all()
    assert_close(ours, expected, dtype=dtype)
    finite = torch.tensor([1.0, INF, 2.0], device="cpu").to(dtype)
    nan_grad = torch.tensor(NAN, device="cpu").to(dtype)
    for nan_ties, fn in ((True, torch.max), (False, torch.amax)):
        ours = reduction.amax_bwd(on_device(nan_grad), on_device(finite),
                                  reduction.amax(on_device(finite)), None, False, nan_ties)
        assert_close(ours, torch_grad(fn, finite, nan_grad), dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_backward_split_over_programs(dtype):
    """Few rows, many columns: the backward splits the columns as the forward does (counts
    per split, then their sum), and still shares the gradient among ties in every split."""
    n_cols = 20_000  # two splits of MINMAX_BWD_TILE-wide tiles
    x = split_case(n_cols, dtype, False)  # the maximum 5 at columns 5000 and n_cols - 3
    grad = torch.tensor(3.0, device="cpu").to(dtype)
    for nan_ties, fn in ((True, torch.max), (False, torch.amax)):
        whole = reduction.amax(on_device(x))
        with recorded_launches() as launches:
            ours = reduction.amax_bwd(on_device(grad), on_device(x), whole, None, False, nan_ties)
        assert [info.kernel_name for info in launches] == ["minmax_bwd_kernel"] * 2
        assert_close(ours, torch_grad(fn, x, grad), dtype=dtype)
        assert ours.cpu()[5000].item() == 1.5
    two_rows = torch.stack([x, -x.flip(0)]).t().contiguous().t()  # rows across memory
    rows = reduction.amax(on_device(two_rows), 1)
    row_grad = torch.tensor([1.0, -2.0], device="cpu").to(dtype)
    ours = reduction.amax_bwd(on_device(row_grad), on_device(two_rows), rows, 1, False)
    assert_close(ours, torch_grad(lambda t: t.amax(1), two_rows, row_grad), dtype=dtype)
    values, indices = reduction.max_dim(on_device(two_rows), 1)
    ours = reduction.max_dim_bwd(on_device(row_grad), indices, two_rows.shape, 1, False)
    assert_close(ours, torch_grad(lambda t: t.max(1), two_rows, row_grad), dtype=dtype)
    with_nan = x.clone()
    with_nan[9000], with_nan[15000] = NAN, NAN  # NaN ties: the gradient shared between them
    ours = reduction.amax_bwd(on_device(grad), on_device(with_nan),
                              reduction.amax(on_device(with_nan)), None, False, True)
    assert_close(ours, torch_grad(torch.max, with_nan, grad), dtype=dtype)


def test_backward_layouts_of_grad_and_result():
    x = distinct(3, 4, 5)
    # an expanded (stride-0) incoming gradient, and dim 1 of a 3-D tensor, whose kept dims
    # (0, 2) do not merge: the gradient comes back as a permuted view, in one launch
    values, indices = reduction.max_dim(on_device(x), 1)
    grad = torch.randn(5, device="cpu").expand(3, 5)
    with recorded_launches() as launches:
        ours = reduction.max_dim_bwd(on_device(grad), indices, x.shape, 1, False)
    assert [info.kernel_name for info in launches] == ["copy_kernel", "minmax_bwd_kernel"]
    assert_close(ours, torch_grad(lambda t: t.max(1), x, grad))
    result = reduction.amax(on_device(x), (0, 2), keepdim=True)
    grad = torch.randn(1, 4, 1, device="cpu")
    ours = reduction.amax_bwd(on_device(grad), on_device(x.transpose(0, 2).contiguous()
                                                        .transpose(0, 2)), result, (0, 2), True)
    assert_close(ours, torch_grad(lambda t: t.amax((0, 2), keepdim=True), x, grad))


# --- errors ----------------------------------------------------------------------------------


def test_empty_reductions_raise_as_torch():
    empty = on_device(torch.empty(0, 3, device="cpu"))
    with pytest.raises(ShapeError, match=r"max\(\): Expected reduction dim 0 to have non-zero "
                                         r"size \(input shape \(0, 3\)\)"):
        reduction.max_dim(empty, 0)
    with pytest.raises(ShapeError, match=r"max\(\): Expected reduction dim to be specified "
                                         r"for input.numel\(\) == 0"):
        reduction.amax(empty, op="max")
    with pytest.raises(ShapeError, match=r"amin\(\): Expected reduction dim to be specified"):
        reduction.amax(empty, (), is_min=True)
    with pytest.raises(ShapeError, match=r"amax\(\): Expected reduction dim 0 to have"):
        reduction.amax(empty, (0, 1))
    with pytest.raises(ShapeError, match=r"argmin\(\): Expected reduction dim 0"):
        reduction.argmin(empty, 0)
    values, indices = reduction.max_dim(empty, 1)  # no slice is empty: empty results
    assert values.shape == indices.shape == (0,)
    assert reduction.amax(empty, 1, keepdim=True).shape == (0, 1)


def test_bad_arguments():
    x = on_device(distinct(2, 3))
    with pytest.raises(OutOfRangeError, match=r"max: Dimension out of range.*\[-2, 1\].*2"):
        reduction.max_dim(x, 2)
    with pytest.raises(IndexError, match="out of range"):
        reduction.amax(x, (0, -3))
    with pytest.raises(ShapeError, match="multiple times"):
        reduction.amax(x, (1, -1))
    with pytest.raises(TypeError, match=r"max\(\): dim must be an int, got \(0, 1\)"):
        reduction.max_dim(x, (0, 1))
    with pytest.raises(DTypeError, match="argmin: x has dtype bool"):
        reduction.argmin(on_device(torch.ones(3, dtype=torch.bool, device="cpu")))
    with pytest.raises(DTypeError, match="amax: x has dtype complex64"):
        reduction.amax(on_device(torch.ones(3, dtype=torch.complex64, device="cpu")))
    values, indices = reduction.max_dim(x, 1)
    with pytest.raises(ShapeError, match=r"grad has shape \(3,\), but the reduction's result "
                                         r"has shape \(2,\)"):
        reduction.max_dim_bwd(on_device(torch.ones(3, device="cpu")), indices, (2, 3), 1, False)
    with pytest.raises(DTypeError, match="indices has dtype float32"):
        reduction.max_dim_bwd(values, values, (2, 3), 1, False)
    with pytest.raises(DTypeError, match="x has dtype float16"):
        reduction.amax_bwd(values, x.half(), values, 1, False)
