"""cross_entropy_fwd / cross_entropy_bwd launchers against torch.nn.functional.cross_entropy."""

import warnings

import pytest
import torch
import torch.nn.functional as F

import tritongrad.kernels.cross_entropy as ce
from tests.launches import recorded_launches
from tests.test_review_kernels import gpu_float_typing  # noqa: F401 (fixture: GPU typing)
from tritongrad.kernels._checks import DTypeError, OutOfRangeError, ShapeError
from tritongrad.kernels.cross_entropy import cross_entropy_bwd, cross_entropy_fwd
from tritongrad.testing.compare import assert_close

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
REDUCTIONS = ["mean", "sum", "none"]
INF = float("inf")


@pytest.fixture(autouse=True)
def _quiet_numpy():
    # -inf - -inf and log(0) in the interpreter's numpy are the intended NaN/inf paths.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def reference(logits, target, reduction, grad_output, ignore_index=-100, label_smoothing=0.0,
              weight=None):
    """torch in fp32 (fp64 for fp64) on the (already rounded) logits; results cast back to
    logits' dtype."""
    compute = torch.promote_types(logits.dtype, torch.float32)
    x = logits.detach().to(compute).requires_grad_()
    loss = F.cross_entropy(x, target, ignore_index=ignore_index, reduction=reduction,
                           label_smoothing=label_smoothing,
                           weight=None if weight is None else weight.to(compute))
    loss.backward(grad_output.to(compute))
    return loss.detach().to(logits.dtype), x.grad.to(logits.dtype)


def check(logits, target, reduction, ignore_index=-100, label_smoothing=0.0, grad_output=None,
          weight=None, prescale=False):
    dtype = logits.dtype
    if grad_output is None:
        shape = target.shape if reduction == "none" else ()
        grad_output = torch.randn(shape).to(dtype)
    loss, grad_logits, n_valid = cross_entropy_fwd(logits, target, ignore_index, reduction,
                                                   label_smoothing, prescale=prescale,
                                                   weight=weight)
    prescaled = prescale and reduction == "mean"
    grad = cross_entropy_bwd(grad_output, grad_logits, n_valid, "sum" if prescaled else reduction)
    ref_loss, ref_grad = reference(logits, target, reduction, grad_output, ignore_index,
                                   label_smoothing, weight)
    assert loss.dtype == dtype and grad.dtype == dtype
    assert_close(loss, ref_loss, dtype=dtype, name="loss")
    assert_close(grad, ref_grad, dtype=dtype, name="grad_logits")
    if reduction != "none" and weight is None:
        assert n_valid.dtype == torch.int64
        assert int(n_valid) == int((target != ignore_index).sum())
    elif reduction != "none":  # torch's 'mean' divisor: the valid rows' target weights
        valid = target != ignore_index
        assert n_valid.dtype == torch.promote_types(dtype, torch.float32)
        assert_close(n_valid, weight.to(n_valid.dtype)[target[valid]].sum(), dtype=n_valid.dtype)
    return loss, grad


def assert_exact_fp64(ours, ref, name):
    """Tighter than the table's fp64 row (1e-7), on purpose: a host scalar rounded to fp32
    (label smoothing 0.1 is 1.5e-9 off there) moves the results by about 1e-9 relative,
    inside the table's tolerance; fp64 arithmetic agrees with torch's to about 1e-15."""
    assert_close(ours, ref, rtol=1e-12, atol=1e-15, name=name)


def near_1e4(n_rows, n_cols):
    """fp64 logits 1e4 + O(1e-3): fp32's spacing at 1e4 is 1e-3, so an fp32 computation
    loses the differences the softmax sees and misses torch's fp64 loss and gradient by
    about 1e-4 relative, far past the fp64 tolerance."""
    return 1e4 + 1e-3 * torch.randn(n_rows, n_cols, dtype=torch.float64)


def labels(n_rows, n_cols, ignored=(), ignore_index=-100):
    target = torch.randint(0, n_cols, (n_rows,))
    for row in ignored:
        target[row] = ignore_index
    return target


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_cols", [2, 5, 1000])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_matches_torch(dtype, n_cols, reduction, label_smoothing):
    logits = (3 * torch.randn(7, n_cols)).to(dtype)
    check(logits, labels(7, n_cols, ignored=(2,)), reduction, label_smoothing=label_smoothing)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_online_softmax_over_column_blocks(monkeypatch, dtype, label_smoothing):
    monkeypatch.setattr(ce, "MAX_BLOCK_C", 256)  # C = 1000 takes 4 blocks
    logits = (4 * torch.randn(5, 1000)).to(dtype)
    logits[1, :300] = -INF  # whole first block -inf: the running max starts at -inf
    logits[3, 700] = 30.0  # the max arrives late: earlier sums are rescaled
    target = labels(5, 1000, ignored=(4,))
    target[1] = 500
    for reduction in REDUCTIONS:
        check(logits, target, reduction, label_smoothing=label_smoothing)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_online_softmax_all_inf_first_block_then_very_negative_logits(monkeypatch,
                                                                       label_smoothing):
    # The rescale factor exp(old_shift - shift) must not be exp(0 - shift) while the running
    # max is still -inf: for logits below -88 that overflows to inf, and 0 * inf gave NaN.
    monkeypatch.setattr(ce, "MAX_BLOCK_C", 16)  # C = 40 takes 3 blocks
    logits = torch.full((3, 40), -INF)
    logits[:, 16:] = torch.randn(3, 24) - 100.0
    logits[2, 32:] = torch.randn(8) - 300.0  # only the last block is finite
    logits[2, 16:32] = -INF
    target = torch.tensor([20, 39, 35])
    for reduction in REDUCTIONS:
        check(logits, target, reduction, label_smoothing=label_smoothing)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_vocabulary_32768(dtype):
    logits = (2 * torch.randn(2, 32768)).to(dtype)
    check(logits, torch.tensor([0, 32767]), "mean")


@pytest.mark.parametrize("dtype,label_smoothing", [(torch.float32, 0.0), (torch.bfloat16, 0.1)])
def test_vocabulary_262144_with_default_blocks(dtype, label_smoothing):
    # The largest C the issue names, with the shipped column block (several blocks a row
    # on every backend), so the online softmax runs as users get it.
    n_cols = 262144
    assert n_cols > ce.MAX_BLOCK_C
    logits = (2 * torch.randn(2, n_cols)).to(dtype)
    logits[1, -5] = 12.0  # the row's max arrives in its last block
    check(logits, torch.tensor([3, n_cols - 5]), "mean", label_smoothing=label_smoothing)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
@pytest.mark.parametrize("blocks", ["one", "several"])
def test_class_weights_match_torch(monkeypatch, dtype, reduction, label_smoothing, blocks):
    # torch's weighted loss: w_t (lse - x_t), the smoothing term sum_c w_c (lse - x_c) / C,
    # and 'mean' divides by the valid rows' target weights (not their count).
    if blocks == "several":
        monkeypatch.setattr(ce, "MAX_BLOCK_C", 256)  # C = 1000 takes 4 blocks
    n_cols = 1000 if blocks == "several" else 7
    logits = (3 * torch.randn(6, n_cols)).to(dtype)
    target = labels(6, n_cols, ignored=(2,))
    weight = (torch.rand(n_cols) * 2 + 0.05).to(dtype)
    for prescale in (False, True):
        check(logits, target, reduction, label_smoothing=label_smoothing, weight=weight,
              prescale=prescale)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_negative_and_strided_class_weights(dtype):
    # torch allows negative weights: a negative summed weight still divides the gradient
    # (it was dropped to 0 by a "> 0" guard); a strided weight is read as torch reads it
    logits, target = (2 * torch.randn(4, 6)).to(dtype), torch.tensor([0, 2, 5, 1])
    weight = torch.tensor([-1.0, 1.0, -2.0, 0.5, 3.0, -0.25]).to(dtype)
    for prescale in (False, True):
        check(logits, target, "mean", weight=weight, prescale=prescale)
    strided = torch.randn(6, 2).to(dtype)[:, 0].abs() + 0.1
    check(logits, target, "mean", label_smoothing=0.1, weight=strided)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight,target", [
    ([0.0, 1.0, 1.0, 1.0], [0, 0, -100, 0]),  # every valid target weighs 0: 0 / 0
    ([1.0, -1.0, 1.0, 0.0], [0, 1, -100, 3]),  # weights summing to 0: +-inf, NaN at targets
    ([1.0, -1.0, 1.0, 0.5], [-100, -100, -100, -100]),  # every row ignored
])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("blocks", ["one", "several"])
def test_zero_weighted_mean_divisor_as_torch(monkeypatch, dtype, weight, target,
                                             label_smoothing, blocks):
    # torch divides 'mean' by the summed target weights even when they sum to 0: its
    # gradient is then inf off the target, NaN at it (inf - inf), NaN on the whole row with
    # smoothing, and 0 on ignored rows. It was 0 everywhere here (a silent difference).
    if blocks == "several":
        monkeypatch.setattr(ce, "MAX_BLOCK_C", 2)  # C = 4 takes 2 blocks
    logits = (2 * torch.randn(4, 4)).to(dtype)
    logits[0, 2] = -200.0  # p underflows to 0 there: 0 * inf is NaN in torch too
    weight, target = torch.tensor(weight).to(dtype), torch.tensor(target)
    grad_output = torch.tensor(1.5).to(dtype)
    for prescale in (False, True):
        loss, grad_logits, n_valid = cross_entropy_fwd(
            logits, target, reduction="mean", label_smoothing=label_smoothing,
            prescale=prescale, weight=weight)
        grad = cross_entropy_bwd(grad_output, grad_logits, n_valid,
                                 "sum" if prescale else "mean")
        ref_loss, ref_grad = reference(logits, target, "mean", grad_output,
                                       label_smoothing=label_smoothing, weight=weight)
        assert_close(grad, ref_grad, dtype=dtype, name="grad_logits")
        if label_smoothing == 0.0 or bool((target == -100).all()):
            assert_close(loss, ref_loss, dtype=dtype, name="loss")
        else:  # torch divides its two terms separately: NaN where they differ in sign
            assert not torch.isfinite(loss) and not torch.isfinite(ref_loss)


def test_class_weight_errors():
    logits, target = torch.randn(3, 5), torch.tensor([0, 1, 2])
    with pytest.raises(ShapeError, match=r"weight tensor should be defined either for all 5 "
                                         r"classes or no classes but got weight tensor of "
                                         r"shape: \[4\]"):
        cross_entropy_fwd(logits, target, weight=torch.ones(4))
    with pytest.raises(DTypeError, match="weight"):
        cross_entropy_fwd(logits, target, weight=torch.ones(5, dtype=torch.int64))


def test_ignore_index_values():
    logits = torch.randn(6, 5)
    target = torch.tensor([0, -1, 4, -1, 2, 3])
    check(logits, target, "mean", ignore_index=-1)
    check(logits, target.clamp_min(0), "sum", ignore_index=3)  # an in-range ignore_index
    check(logits, target.clamp_min(0), "none", ignore_index=0, label_smoothing=0.3)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_infinities_and_nan_as_torch(label_smoothing):
    logits = torch.randn(5, 4)
    logits[0, 1] = -INF  # -inf on a non-target class: finite loss (inf with smoothing)
    logits[1, 2] = -INF  # -inf on the target: inf loss
    logits[2] = -INF  # all -inf: NaN
    logits[3, 0] = float("nan")  # NaN: NaN
    target = torch.tensor([0, 2, 1, 3, 1])
    loss, grad = check(logits, target, "none", label_smoothing=label_smoothing)
    assert loss[1] == INF and loss[2].isnan() and loss[3].isnan()
    loss, _ = check(logits[:2], target[:2], "mean", label_smoothing=label_smoothing)
    assert loss == INF


def test_all_ignored_and_empty():
    logits = torch.randn(3, 5)
    target = torch.full((3,), -100)
    for reduction in REDUCTIONS:
        loss, grad = check(logits, target, reduction, label_smoothing=0.1)
        assert (grad == 0).all()
    assert cross_entropy_fwd(logits, target)[0].isnan()  # mean over no rows, as torch

    empty, no_labels = torch.empty(0, 5), torch.empty(0, dtype=torch.int64)
    loss, grad_logits, n_valid = cross_entropy_fwd(empty, no_labels, reduction="mean")
    assert loss.isnan() and grad_logits.shape == (0, 5) and int(n_valid) == 0
    assert cross_entropy_fwd(empty, no_labels, reduction="sum")[0].item() == 0.0
    assert cross_entropy_fwd(empty, no_labels, reduction="none")[0].shape == (0,)
    assert cross_entropy_bwd(torch.tensor(1.0), grad_logits, n_valid, "mean").shape == (0, 5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_logits_and_targets(dtype):
    wide = torch.randn(6, 40).to(dtype)
    check(wide[:, 3:20], labels(6, 17), "mean")  # column slice: row stride 40
    check(wide[::2, :33], labels(3, 33), "sum")  # every other row
    check(torch.randn(9, 4).to(dtype).T, labels(4, 9), "none")  # transposed: column stride 4
    target = labels(12, 17)[::2]  # strided targets
    check(wide[:, :17], target, "mean", label_smoothing=0.1)


def test_bad_labels_raise_after_the_device_check():
    logits = torch.randn(4, 10)
    with pytest.raises(OutOfRangeError, match=r"Target 10 is out of bounds\."):
        cross_entropy_fwd(logits, torch.tensor([1, 10, 2, -100]))
    with pytest.raises(OutOfRangeError, match=r"Target -3 is out of bounds\."):
        cross_entropy_fwd(logits, torch.tensor([1, -3, 2, 3]))
    with pytest.raises(OutOfRangeError, match=r"Target -100 is out of bounds\."):
        cross_entropy_fwd(logits, torch.tensor([1, -100, 2, 3]), ignore_index=-1)
    # check_labels=False: no sync and no error; the bad row's loss is NaN, no stray reads.
    loss, _, _ = cross_entropy_fwd(logits, torch.tensor([1, 10, 2, 3]), reduction="none",
                                   check_labels=False)
    assert loss[1].isnan() and not loss[[0, 2, 3]].isnan().any()


def test_metadata_errors():
    logits = torch.randn(2, 5)
    with pytest.raises(DTypeError, match="expected target dtype to be Long"):
        cross_entropy_fwd(logits, torch.tensor([1, 2], dtype=torch.int32))
    with pytest.raises(ShapeError, match=r"Expected input batch_size \(2\) to match target "
                                         r"batch_size \(3\)\."):
        cross_entropy_fwd(logits, torch.tensor([1, 2, 3]))
    with pytest.raises(ShapeError, match="2-D"):
        cross_entropy_fwd(torch.randn(2, 3, 4), torch.tensor([1, 2]))
    with pytest.raises(DTypeError, match="int64"):  # fp64 is taken (computed in fp64)
        cross_entropy_fwd(logits.long(), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="label_smoothing"):
        cross_entropy_fwd(logits, torch.tensor([1, 2]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="reduction"):
        cross_entropy_fwd(logits, torch.tensor([1, 2]), reduction="avg")
    with pytest.raises(ShapeError, match="grad_output"):
        cross_entropy_bwd(torch.randn(3), torch.randn(2, 5), None, "none")


def test_no_grad_buffer_and_saved_gradient_stays_intact():
    logits, target = torch.randn(4, 7), labels(4, 7, ignored=(1,))
    loss, grad_logits, n_valid = cross_entropy_fwd(logits, target)
    loss_only, none_grad, _ = cross_entropy_fwd(logits, target, compute_grad=False)
    assert none_grad is None and torch.equal(loss, loss_only)
    saved = grad_logits.clone()
    first = cross_entropy_bwd(torch.tensor(1.0), grad_logits, n_valid, "mean")
    second = cross_entropy_bwd(torch.tensor(1.0), grad_logits, n_valid, "mean")
    assert torch.equal(grad_logits, saved) and torch.equal(first, second)
    assert first.data_ptr() != grad_logits.data_ptr()


def test_none_backward_reads_strided_grad_output():
    logits, target = torch.randn(5, 6), labels(5, 6, ignored=(0,))
    check(logits, target, "none", grad_output=torch.randn(10)[::2])


def test_analytic_bytes_read_logits_once():
    with recorded_launches() as launches:
        cross_entropy_fwd(torch.randn(8, 100), labels(8, 100), reduction="none")
    (row_launch,) = launches
    assert row_launch.kernel_name == "cross_entropy_fwd_kernel"
    # logits read once + gradient written once (fp32) + targets + row losses
    assert row_launch.bytes_moved == 8 * 100 * 4 * 2 + 8 * (8 + 4)


def test_class_weight_of_another_dtype_is_refused_as_torch():
    # torch: "expected scalar type Float but found Half"; the weight was silently accepted
    logits, target = torch.randn(3, 5), torch.tensor([0, 1, 2])
    for weight_dtype in (torch.float16, torch.float64):
        with pytest.raises(DTypeError, match="expected weight dtype float32"):
            cross_entropy_fwd(logits, target, weight=torch.ones(5, dtype=weight_dtype))
    with pytest.raises(DTypeError, match="expected weight dtype bfloat16"):
        cross_entropy_fwd(logits.bfloat16(), target, weight=torch.ones(5))


@pytest.mark.parametrize("blocks", ["one", "several"])
def test_fp64_is_computed_in_fp64(monkeypatch, blocks):
    # gradcheck users: fp64 logits, fp64 loss and gradient, every step in fp64 (with
    # several column blocks the online softmax's running max and sum too)
    if blocks == "several":
        monkeypatch.setattr(ce, "MAX_BLOCK_C", 16)  # C = 40 takes 3 blocks
    n_cols = 40 if blocks == "several" else 7
    logits, target = near_1e4(5, n_cols), labels(5, n_cols, ignored=(2,))
    for reduction, label_smoothing, prescale in (("mean", 0.1, True), ("mean", 0.0, False),
                                                 ("sum", 0.0, False), ("none", 0.1, False)):
        loss, grad = check(logits, target, reduction, label_smoothing=label_smoothing,
                           prescale=prescale)
        assert loss.dtype == grad.dtype == torch.float64
    # the comparison can fail: the same logits computed in fp32 miss torch's fp64 gradient
    _, grad32, n_valid = cross_entropy_fwd(logits.float(), target, prescale=True)
    _, ref_grad = reference(logits, target, "mean", torch.tensor(1.0, dtype=torch.float64))
    with pytest.raises(AssertionError, match="out of tolerance"):
        assert_close(grad32.double(), ref_grad, dtype=torch.float64)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("blocks", ["one", "several"])
def test_fp64_class_weights_and_divisor(monkeypatch, label_smoothing, blocks):
    # The 'mean' divisor W sums target weights 1e8 + 1.5 - 1e8 + 1/3 in row order: fp64
    # keeps the 1.83 that fp32 (spacing 8 at 1e8) loses, and both the loss and every
    # gradient divide by it. n_valid is that fp64 sum.
    if blocks == "several":
        monkeypatch.setattr(ce, "MAX_BLOCK_C", 4)  # C = 7 takes 2 blocks
    weight = torch.tensor([1e8, -1e8, 1.5, 0.25, 3.0, 1.0 / 3.0, 2.0], dtype=torch.float64)
    target = torch.tensor([0, 2, 1, -100, 5])
    logits = 3 * torch.randn(5, 7, dtype=torch.float64)
    for prescale in (False, True):
        check(logits, target, "mean", label_smoothing=label_smoothing, weight=weight,
              prescale=prescale)
    check(logits, target, "sum", label_smoothing=label_smoothing, weight=weight)


@pytest.mark.usefixtures("gpu_float_typing")


def test_fp64_label_smoothing_and_grad_output_are_exact():
    # label smoothing (a host number, typed as a GPU launch types it) and a grad_output of
    # 1/3 reach the fp64 kernels unrounded: agreement with torch far inside the table's fp64
    # tolerance
    logits, target = torch.randn(4, 9, dtype=torch.float64), labels(4, 9, ignored=(1,))
    for reduction, grad_output in (("mean", torch.tensor(1.0 / 3.0, dtype=torch.float64)),
                                   ("none", torch.rand(4, dtype=torch.float64) + 0.1)):
        loss, grad_logits, n_valid = cross_entropy_fwd(logits, target, reduction=reduction,
                                                       label_smoothing=0.1)
        grad = cross_entropy_bwd(grad_output, grad_logits, n_valid, reduction)
        ref_loss, ref_grad = reference(logits, target, reduction, grad_output,
                                       label_smoothing=0.1)
        assert_exact_fp64(loss, ref_loss, "loss")
        assert_exact_fp64(grad, ref_grad, "grad_logits")
