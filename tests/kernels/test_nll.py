"""nll_fwd / nll_bwd launchers against torch.nn.functional.nll_loss."""

import warnings

import pytest
import torch
import torch.nn.functional as F

import tritongrad.kernels.nll as nll
from tests.kernels.test_cross_entropy import labels
from tests.launches import recorded_launches
from tritongrad.kernels._checks import DTypeError, OutOfRangeError, ShapeError
from tritongrad.kernels.nll import nll_bwd, nll_fwd
from tritongrad.testing.compare import assert_close

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
REDUCTIONS = ["mean", "sum", "none"]


@pytest.fixture(autouse=True)
def _quiet_numpy():
    # g / 0 and 0 * inf in the interpreter's numpy are the intended inf/NaN paths.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def reference(input, target, reduction, grad_output, ignore_index=-100, weight=None):
    """torch in fp32 (fp64 for fp64) on the (already rounded) input; results cast back to
    input's dtype."""
    compute = torch.promote_types(input.dtype, torch.float32)
    x = input.detach().to(compute).requires_grad_()
    loss = F.nll_loss(x, target, ignore_index=ignore_index, reduction=reduction,
                      weight=None if weight is None else weight.to(compute))
    loss.backward(grad_output.to(compute))
    return loss.detach().to(input.dtype), x.grad.to(input.dtype)


def check(input, target, reduction, ignore_index=-100, weight=None, grad_output=None):
    dtype = input.dtype
    if grad_output is None:
        grad_output = torch.randn(target.shape if reduction == "none" else ()).to(dtype)
    loss, divisor = nll_fwd(input, target, weight, ignore_index, reduction)
    grad = nll_bwd(grad_output, target, weight, divisor, input.shape[1], ignore_index,
                   reduction, out_dtype=dtype)
    ref_loss, ref_grad = reference(input, target, reduction, grad_output, ignore_index, weight)
    assert loss.dtype == dtype and grad.dtype == dtype and grad.is_contiguous()
    assert_close(loss, ref_loss, dtype=dtype, name="loss")
    assert_close(grad, ref_grad, dtype=dtype, name="grad_input")
    return loss, grad


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("n_rows,n_cols", [(1, 1), (9, 2), (5, 1000)])
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_torch(dtype, reduction, n_rows, n_cols, weighted):
    input = (3 * torch.randn(n_rows, n_cols)).to(dtype)
    target = labels(n_rows, n_cols, ignored=(2,) if n_rows > 2 else ())
    weight = (torch.rand(n_cols) * 2 + 0.05).to(dtype) if weighted else None
    check(input, target, reduction, weight=weight)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_several_programs_each_way(monkeypatch, dtype):
    # rows across forward programs, and (rows x columns) tiles across backward programs
    monkeypatch.setattr(nll, "FWD_BLOCK_N", 4)
    monkeypatch.setattr(nll, "BWD_MAX_BLOCK_C", 8)
    monkeypatch.setattr(nll, "BWD_TILE", 32)  # 4 rows x 8 columns a tile
    input = torch.randn(11, 21).to(dtype)
    target = labels(11, 21, ignored=(0, 9))
    for reduction in REDUCTIONS:
        check(input, target, reduction)
        check(input, target, reduction, weight=torch.rand(21).to(dtype) + 0.1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_inputs_targets_and_weights(dtype):
    wide = torch.randn(6, 40).to(dtype)
    check(wide[:, 3:20], labels(6, 17), "mean")  # column slice: row stride 40
    check(wide[::2, :33], labels(3, 33), "sum")  # every other row
    check(torch.randn(9, 4).to(dtype).T, labels(4, 9, ignored=(1,)), "none")  # column stride 4
    check(wide[:, :17], labels(12, 17)[::2], "mean",  # strided targets and weights
          weight=torch.rand(17, 2).to(dtype)[:, 1] + 0.1)


def test_negative_weights():
    input, target = torch.randn(4, 6), torch.tensor([0, 2, 5, 1])
    weight = torch.tensor([-1.0, 1.0, -2.0, 0.5, 3.0, -0.25])
    for reduction in REDUCTIONS:
        check(input, target, reduction, weight=weight)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight,target", [
    ([0.0, 1.0, 1.0, 1.0], [0, 0, -100, 0]),  # every valid target weighs 0: 0 / 0
    ([1.0, -1.0, 1.0, 0.0], [0, 1, -100, 3]),  # weights summing to 0: -inf, +inf, NaN
    ([1.0, -1.0, 1.0, 0.5], [-100, -100, -100, -100]),  # every row ignored
])
def test_zero_weighted_mean_divisor_as_torch(dtype, weight, target):
    # torch divides by the summed target weights even when they are 0: the gradient at
    # a valid row's target is w_t * -(g / 0) (+-inf, NaN for w_t == 0), 0 elsewhere.
    input = torch.randn(4, 4).to(dtype)
    loss, grad = check(input, torch.tensor(target), "mean", weight=torch.tensor(weight).to(dtype),
                       grad_output=torch.tensor(1.5).to(dtype))
    assert not torch.isfinite(loss)


def test_all_ignored_and_empty():
    input = torch.randn(3, 5)
    target = torch.full((3,), -100)
    for reduction in REDUCTIONS:
        _, grad = check(input, target, reduction)
        assert (grad == 0).all()
    assert nll_fwd(input, target)[0].isnan()  # mean over no rows, as torch
    empty, no_labels = torch.empty(0, 5), torch.empty(0, dtype=torch.int64)
    loss, divisor = nll_fwd(empty, no_labels)
    assert loss.isnan() and int(divisor) == 0
    assert nll_fwd(empty, no_labels, reduction="sum")[0].item() == 0.0
    assert nll_fwd(empty, no_labels, reduction="none")[0].shape == (0,)
    assert nll_bwd(torch.tensor(1.0), no_labels, None, divisor, 5).shape == (0, 5)


def test_ignore_index_values():
    input = torch.randn(6, 5)
    target = torch.tensor([0, -1, 4, -1, 2, 3])
    check(input, target, "mean", ignore_index=-1)  # negative
    check(input, target.clamp_min(0), "sum", ignore_index=3)  # in range: that class skipped
    check(input, target.clamp_min(0), "mean", ignore_index=0, weight=torch.rand(5) + 0.1)
    check(input, target.clamp_min(0), "none", ignore_index=4)


def test_infinities_and_nan_as_torch():
    input = torch.randn(4, 3)
    input[0, 1] = -float("inf")
    input[1, 0] = float("nan")  # off the target: never read
    input[2, 2] = float("nan")
    target = torch.tensor([1, 2, 2, 0])
    loss, _ = check(input, target, "none")
    assert loss[0] == float("inf") and not loss[1].isnan() and loss[2].isnan()


def test_bad_labels_raise_after_the_device_check(monkeypatch):
    input = torch.randn(4, 7)
    with pytest.raises(OutOfRangeError, match=r"^nll_loss: Target 7 is out of bounds\.$"):
        nll_fwd(input, torch.tensor([1, 7, 2, -100]))
    with pytest.raises(OutOfRangeError, match=r"Target -3 is out of bounds\."):
        nll_fwd(input, torch.tensor([1, -3, 9, 3]))
    with pytest.raises(OutOfRangeError, match=r"Target -100 is out of bounds\."):
        nll_fwd(input, torch.tensor([1, -100, 2, 3]), ignore_index=-1)
    # the first bad label in row order, whichever program set the flag
    monkeypatch.setattr(nll, "FWD_BLOCK_N", 2)
    with pytest.raises(OutOfRangeError, match=r"Target 12 is out of bounds\."):
        nll_fwd(input, torch.tensor([-100, 12, 10, 8]))
    # check_labels=False: no sync and no error; the bad row's loss is NaN, no stray reads
    loss, _ = nll_fwd(input, torch.tensor([1, 10, 2, 3]), reduction="none", check_labels=False)
    assert loss[1].isnan() and not loss[[0, 2, 3]].isnan().any()


def test_metadata_errors_before_any_launch():
    input = torch.randn(2, 5)
    with recorded_launches() as launches:
        with pytest.raises(DTypeError, match="^nll_loss: expected target dtype to be Long"):
            nll_fwd(input, torch.tensor([1, 2], dtype=torch.int32))
        with pytest.raises(ShapeError, match=r"Expected input batch_size \(2\) to match target "
                                             r"batch_size \(3\)\."):
            nll_fwd(input, torch.tensor([1, 2, 3]))
        with pytest.raises(ShapeError, match="2-D"):
            nll_fwd(torch.randn(2, 3, 4), torch.tensor([1, 2]))
        with pytest.raises(DTypeError, match="int64"):  # fp64 is taken (computed in fp64)
            nll_fwd(input.long(), torch.tensor([1, 2]))
        with pytest.raises(ValueError, match="reduction"):
            nll_fwd(input, torch.tensor([1, 2]), reduction="avg")
        with pytest.raises(ShapeError, match=r"weight tensor should be defined either for all 5 "
                                             r"classes"):
            nll_fwd(input, torch.tensor([1, 2]), weight=torch.ones(4))
        with pytest.raises(ShapeError, match="grad_output"):
            nll_bwd(torch.randn(3), torch.tensor([1, 2]), None, None, 5, reduction="none")
        with pytest.raises(ValueError, match="divisor"):
            nll_bwd(torch.tensor(1.0), torch.tensor([1, 2]), None, None, 5)
    assert not launches


def test_forward_reads_one_element_per_row():
    with recorded_launches() as launches:
        nll_fwd(torch.randn(8, 1000), labels(8, 1000), reduction="none")
    (fwd,) = launches
    assert fwd.bytes_moved < 8 * 100  # not the 8 * 1000 * 4 bytes of whole rows


def test_weight_of_another_dtype_is_refused_as_torch():
    # torch: "expected scalar type Float but found Half"; no silent mixed-precision pair
    with recorded_launches() as launches:
        for in_dtype, w_dtype in ((torch.float32, torch.float16), (torch.float32, torch.float64),
                                  (torch.bfloat16, torch.float32)):
            with pytest.raises(DTypeError, match="weight dtype"):
                nll_fwd(torch.randn(2, 5).to(in_dtype), torch.tensor([1, 2]),
                        weight=torch.ones(5, dtype=w_dtype))
    assert not launches


def test_fp64_is_computed_in_fp64():
    # Picked values 1e8, 1.5, -1e8, 1/3 (row order), and as the weighted 'mean' divisor
    # target weights 1e8 + 1.5 - 1e8 + 1/3: fp64 keeps the 1.83 both add up to, which fp32
    # (spacing 8 at 1e8) loses, in the loss and in every weighted gradient.
    fp64 = torch.float64
    target = torch.tensor([0, 2, 1, -100, 5])
    input = torch.randn(5, 6, dtype=fp64)
    input[0, 0], input[1, 2], input[2, 1], input[4, 5] = 1e8, 1.5, -1e8, 1.0 / 3.0
    weight = torch.tensor([1e8, -1e8, 1.5, 0.25, 3.0, 1.0 / 3.0], dtype=fp64)
    for reduction in REDUCTIONS:
        check(input, target, reduction)
        loss, grad = check(torch.randn(5, 6, dtype=fp64), target, reduction, weight=weight)
        assert loss.dtype == grad.dtype == fp64
    loss, divisor = nll_fwd(input, target, weight, reduction="mean")
    assert divisor.dtype == fp64 and abs(float(divisor) - (1.5 + 1.0 / 3.0)) < 1e-7
    assert float(nll_fwd(input, target, reduction="sum")[0]) == pytest.approx(
        -(1.5 + 1.0 / 3.0), rel=1e-12)
    # fp32 arithmetic on the same values loses the 1.83 (the comparison can fail)
    assert float(nll_fwd(input.float(), target, reduction="sum")[0]) != pytest.approx(
        -(1.5 + 1.0 / 3.0), rel=1e-3)
