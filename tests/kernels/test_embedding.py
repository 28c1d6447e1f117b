"""embedding_fwd / embedding_bwd launchers against torch: every weight dtype with int64 and
int32 indices, index shapes from 0-d to 3-D, repeats within and across tiles, the owner
split of the backward, strided weights, indices and gradients, padding_idx,
scale_grad_by_freq, the device-side index check and the argument errors."""

import pytest
import torch
import torch.nn.functional as F

from tests.launches import recorded_launches
from tritongrad.determinism import use_deterministic_algorithms
from tritongrad.kernels import embedding as emb
from tritongrad.kernels._checks import DeviceError, DTypeError, OutOfRangeError, ShapeError
from tritongrad.testing.compare import assert_close

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]


def randn(*shape, dtype=torch.float32):
    return torch.randn(shape, dtype=torch.float64).to(dtype)


def torch_grad(weight, indices, dy, padding_idx=None, scale=False):
    """torch's weight gradient in fp64 on the same (rounded) values, rounded once to the
    weight's dtype: what fp32 accumulation should reach within the table tolerance."""
    leaf = weight.detach().double().requires_grad_(True)
    F.embedding(indices.long(), leaf, padding_idx=padding_idx,
                scale_grad_by_freq=scale).backward(dy.double())
    return leaf.grad.to(weight.dtype)


def check(weight, indices, padding_idx=None, scale=False, dy=None):
    out = emb.embedding_fwd(weight, indices)
    ref = F.embedding(indices, weight)
    assert out.dtype == weight.dtype and out.shape == ref.shape and out.is_contiguous()
    assert torch.equal(out, ref), "a gather is exact"
    dy = randn(*ref.shape, dtype=weight.dtype) if dy is None else dy
    dw = emb.embedding_bwd(dy, indices, weight.shape[0], padding_idx, scale)
    assert dw.dtype == weight.dtype and dw.shape == weight.shape
    assert_close(dw, torch_grad(weight, indices, dy, padding_idx, scale), dtype=weight.dtype,
                 name="dw")
    return dw


@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32], ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_fwd_bwd_match_torch(dtype, index_dtype):
    weight = randn(13, 37, dtype=dtype)
    indices = torch.randint(0, 13, (6, 9)).to(index_dtype)
    indices[0, :4] = 3  # repeats
    indices[2, 5] = 12  # the last row
    check(weight, indices)
    dw = check(weight, indices, padding_idx=3)
    assert not dw[3].any()


@pytest.mark.parametrize("shape", [(), (1,), (5,), (2, 3, 4), (0,), (3, 0)], ids=str)
def test_index_shapes(shape):
    weight = randn(7, 5)
    check(weight, torch.randint(0, 7, shape))


def test_widths_and_single_row():
    check(randn(1, 1), torch.zeros(4, dtype=torch.int64))  # one embedding, width 1
    check(randn(9, 3), torch.randint(0, 9, (11,)))
    check(randn(5, 130), torch.randint(0, 5, (3, 2)))  # non-power-of-two width
    out = emb.embedding_fwd(randn(4, 0), torch.tensor([1, 2]))  # width 0: empty rows
    assert out.shape == (2, 0)


def test_strided_weight_indices_and_grad():
    base = randn(40, 26)
    for weight in (base[:, ::2], randn(12, 30).T, base[3:20]):  # sliced, transposed, offset
        indices = torch.randint(0, weight.shape[0], (4, 6))
        check(weight, indices)
        check(weight, indices.T)  # a transposed index tensor: one copy kernel
        check(weight, indices.view(-1)[::3])  # a stride-3 view, read in place
        dy_t = randn(weight.shape[1], 3, 6).permute(1, 2, 0)  # (3, 6, D), D strided
        check(weight, indices[:3], dy=dy_t)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_repeats_across_tiles_and_owner_programs(monkeypatch, dtype):
    """Many tiles (16 indices each) and four owner programs per column block, as on a GPU:
    rows summed across tiles by one program each, never two programs on one row."""
    monkeypatch.setattr(emb, "BWD_BLOCK_N", 16)
    monkeypatch.setattr(emb, "BWD_PROGRAMS", 4)
    assert emb._bwd_blocks(100, 20)[2] == 4
    weight = randn(11, 20, dtype=dtype)
    check(weight, torch.full((100,), 4))  # every index the same row: 7 tiles
    indices = torch.randint(0, 11, (4, 25))
    check(weight, indices, padding_idx=7)
    check(weight, indices, scale=True)


def test_many_tiles_default_blocks():
    weight = randn(50, 24)
    indices = torch.randint(0, 6, (700,))  # 6 rows, each hit about 117 times, 6 tiles
    check(weight, indices)
    check(weight, indices, padding_idx=0, scale=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_scale_grad_by_freq(dtype):
    weight = randn(8, 12, dtype=dtype)
    indices = torch.tensor([[1, 1, 1, 5], [5, 2, 7, 1]])
    dw = check(weight, indices, scale=True)
    check(weight, indices, padding_idx=1, scale=True)
    assert not dw[0].any() and not dw[3].any()  # rows never named stay 0


def test_index_out_of_range_is_checked_on_the_device():
    weight = randn(6, 4)
    for bad in ([0, 6, 2], [-1, 2], [5, 2**40]):
        with pytest.raises(OutOfRangeError, match="index out of range in self"):
            emb.embedding_fwd(weight, torch.tensor(bad))
    with pytest.raises(IndexError, match="index out of range in self"):  # torch's class too
        emb.embedding_fwd(weight, torch.tensor([[7]], dtype=torch.int32))
    with pytest.raises(OutOfRangeError):
        emb.embedding_fwd(randn(0, 4), torch.tensor([0]))  # no rows: every index is out
    # without the read (benchmarks, graph capture): NaN rows, no read out of bounds
    out = emb.embedding_fwd(weight, torch.tensor([1, 6, -3]), check_indices=False)
    assert torch.equal(out[0], weight[1]) and out[1:].isnan().all()
    # and backward skips them
    dw = emb.embedding_bwd(torch.ones(3, 4), torch.tensor([1, 6, -3]), 6)
    assert torch.equal(dw, torch.zeros(6, 4).index_fill_(0, torch.tensor([1]), 1.0))


def test_argument_errors():
    weight = randn(6, 4)
    with pytest.raises(DTypeError, match="'indices' to have one of the following scalar types: "
                                         "Long, Int; but got float32"):
        emb.embedding_fwd(weight, torch.tensor([1.0]))
    with pytest.raises(DTypeError, match="Long, Int; but got uint8"):
        emb.embedding_fwd(weight, torch.tensor([1], dtype=torch.uint8))
    with pytest.raises(DTypeError, match="weight has dtype int64"):
        emb.embedding_fwd(torch.ones(6, 4, dtype=torch.int64), torch.tensor([1]))
    with pytest.raises(ShapeError, match="'weight' must be 2-D"):
        emb.embedding_fwd(randn(6), torch.tensor([1]))
    with pytest.raises(DeviceError, match="Expected all tensors to be on the same device"):
        emb.embedding_fwd(weight, torch.tensor([1], device="meta"))
    with pytest.raises(ShapeError, match="does not match indices of shape"):
        emb.embedding_bwd(randn(3, 4), torch.tensor([1, 2]), 6)
    with pytest.raises(OutOfRangeError, match="Padding_idx must be within num_embeddings"):
        emb.normalize_padding_idx(6, 6)
    with pytest.raises(OutOfRangeError, match="Padding_idx must be within num_embeddings"):
        emb.normalize_padding_idx(-7, 6)
    assert emb.normalize_padding_idx(-1, 6) == 5 and emb.normalize_padding_idx(0, 6) == 0


def test_launches_and_no_sync_without_check():
    weight, indices = randn(9, 8), torch.randint(0, 9, (4, 5))
    with recorded_launches() as launches:
        emb.embedding_fwd(weight, indices)
        emb.embedding_bwd(randn(4, 5, 8), indices, 9)
    assert [info.kernel_name for info in launches] == ["embedding_fwd_kernel",
                                                       "embedding_bwd_kernel"]
    with recorded_launches() as launches:  # fp16: fp32 sums, rounded by a second kernel
        emb.embedding_bwd(randn(4, 5, 8, dtype=torch.float16), indices, 9)
    assert [info.kernel_name for info in launches] == ["embedding_bwd_kernel",
                                                       "embedding_bwd_finish_kernel"]


@pytest.mark.parametrize("deterministic", [False, True])
def test_backward_is_bitwise_repeatable(deterministic, monkeypatch):
    """No atomics in either mode (the sm_90 PTX check in tests/test_determinism.py covers
    these kernels): two runs give the same bits, with the GPU's owner split too."""
    monkeypatch.setattr(emb, "BWD_BLOCK_N", 16)
    monkeypatch.setattr(emb, "BWD_PROGRAMS", 4)
    weight = randn(10, 16)
    indices = torch.randint(0, 10, (80,))
    dy = randn(80, 16)
    use_deterministic_algorithms(deterministic)
    try:
        first = emb.embedding_bwd(dy, indices, 10)
        second = emb.embedding_bwd(dy, indices, 10)
    finally:
        use_deterministic_algorithms(False)
    assert torch.equal(first.view(torch.int32), second.view(torch.int32))
    assert_close(first, torch_grad(weight, indices, dy), dtype=torch.float32)
