"""Tensor creation, attributes, conversions, the device policy and the RNG."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import tritongrad as tg
from tritongrad.testing import assert_close


def test_tensor_from_list_numpy_and_torch():
    a = tg.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert a.shape == (2, 2) and a.dtype == tg.float32 and a.ndim == 2 and a.numel() == 4
    assert tg.tensor([1, 2]).dtype == tg.int64
    b = tg.tensor(np.arange(6, dtype=np.float64).reshape(2, 3))
    assert b.dtype == tg.float64 and b.tolist() == [[0, 1, 2], [3, 4, 5]]
    c = tg.tensor(torch.arange(4.0).reshape(2, 2).T, dtype=tg.bfloat16)
    assert c.dtype == tg.bfloat16 and c.float().tolist() == [[0.0, 2.0], [1.0, 3.0]]
    assert tg.tensor(3.5).item() == 3.5


def test_creation_functions():
    assert tg.zeros(2, 3).tolist() == [[0.0] * 3] * 2
    assert tg.ones((2,), dtype=tg.float16).tolist() == [1.0, 1.0]
    assert tg.full((2, 2), 7.0).tolist() == [[7.0, 7.0], [7.0, 7.0]]
    assert tg.empty(3, 4).shape == (3, 4)
    assert tg.arange(5).tolist() == [0, 1, 2, 3, 4]
    assert tg.arange(1.0, 2.0, 0.25).tolist() == [1.0, 1.25, 1.5, 1.75]


def test_from_torch_and_numpy_share_memory():
    t = torch.zeros(3, device=tg.device())
    x = tg.from_torch(t)
    t[0] = 5.0
    assert x.tolist()[0] == 5.0
    assert x.torch() is t or x.torch().data_ptr() == t.data_ptr()
    if tg.device().type == "cpu":
        a = np.zeros(3, dtype=np.float32)
        y = tg.from_numpy(a)
        a[1] = 2.0
        assert y.numpy()[1] == 2.0


def test_from_torch_on_another_device_is_an_error():
    meta = torch.empty(3, device="meta")
    with pytest.raises(tg.DeviceError, match="meta"):
        tg.from_torch(meta)
    with pytest.raises(tg.DeviceError):
        tg.tensor([1.0]) + meta


def test_to_device_and_dtype():
    x = tg.tensor([1.0, 2.0])
    assert x.to(tg.device()) is x
    assert x.to(tg.device().type, tg.float16).dtype == tg.float16
    other = "cpu" if tg.device().type == "cuda" else "cuda"
    with pytest.raises(tg.DeviceError, match=other):
        x.to(other)
    assert x.double().dtype == tg.float64 and x.half().float().dtype == tg.float32


def test_detach_clone_contiguous_requires_grad():
    x = tg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d.torch().data_ptr() == x.torch().data_ptr()
    c = x.clone()
    assert c.requires_grad and c.grad_fn is not None and c.torch().data_ptr() != x.torch().data_ptr()
    t = x.T
    assert not t.is_contiguous() and t.contiguous().is_contiguous()
    y = tg.tensor([1.0]).requires_grad_()
    assert y.requires_grad and y.is_leaf


def test_repr_shows_values_and_grad_fn():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    assert "requires_grad=True" in repr(x)
    assert "grad_fn=<ScalarOpBackward>" in repr(x * 2.0)
    assert "1." in repr(tg.tensor([1.5, 2.0], dtype=tg.bfloat16))


def test_inplace_ops_and_setitem():
    x = tg.zeros(2, 3)
    x[0] = 1.0
    x[1, ::2] = tg.tensor([5.0, 6.0])
    x.add_(1.0).mul_(2.0)
    assert x.tolist() == [[4.0, 4.0, 4.0], [12.0, 2.0, 14.0]]
    x.zero_()
    assert x.sum().item() == 0.0


def test_inplace_through_expanded_view_is_an_error():
    x = tg.zeros(1, 3).expand(4, 3)
    with pytest.raises(tg.LayoutError, match="same memory location"):
        x.add_(1.0)


def test_manual_seed_reproduces_and_calls_differ():
    tg.manual_seed(123)
    a = tg.randn(1000)
    b = tg.randn(1000)
    tg.manual_seed(123)
    a2 = tg.randn(1000)
    assert_close(a, a2.torch(), rtol=0, atol=0)
    assert not torch.equal(a.torch(), b.torch())
    values = a.torch().double()
    assert abs(values.mean().item()) < 0.15 and abs(values.std().item() - 1) < 0.15
    u = tg.rand(1000).torch()
    assert 0.0 <= u.min().item() and u.max().item() < 1.0


def test_rng_state_save_and_restore():
    tg.manual_seed(7)
    tg.rand(10)
    state = tg.get_rng_state()
    x = tg.rand(10)
    tg.set_rng_state(state)
    y = tg.rand(10)
    assert x.tolist() == y.tolist()


def test_device_override_to_cuda_without_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    env = dict(os.environ, TRITONGRAD_DEVICE="cuda")
    env.pop("TRITON_INTERPRET", None)
    proc = subprocess.run([sys.executable, "-c", "import tritongrad"], env=env,
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "TRITONGRAD_DEVICE=cuda" in proc.stderr and "no CUDA GPU" in proc.stderr


def test_device_is_reported():
    assert tg.device().type in ("cpu", "cuda")
    assert tg.is_interpreter() == (tg.device().type == "cpu")


# --- review: in-place semantics, creation precision, torch's argument forms --------------


def test_augmented_assignment_is_in_place_as_in_torch():
    p = tg.tensor([1.0, 2.0], requires_grad=True)
    (p * p).sum().backward()
    alias = p.detach()
    with tg.no_grad():
        for q in [p]:  # the manual SGD loop: must update the parameter itself
            q -= 0.5 * q.grad
    assert p.tolist() == [0.0, 0.0] and alias.tolist() == [0.0, 0.0] and p.is_leaf
    z = tg.ones(2)
    view = z[:]
    z *= 3.0
    z += tg.tensor([1.0, 2.0])
    z /= 2.0
    assert view.tolist() == [2.0, 2.5]
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        p += 1.0
    # where torch records the op in the graph, the values and gradients still match torch
    x, tx = tg.tensor([1.0, 2.0], requires_grad=True), torch.tensor([1.0, 2.0], requires_grad=True)
    y, ty = x * 2.0, tx * 2.0
    y += x
    ty += tx
    y *= x
    ty *= tx
    y.sum().backward()
    ty.sum().backward()
    assert_close(y, ty)
    assert_close(x.grad, tx.grad)
    h = tg.zeros(2, dtype=tg.float16)
    h += x  # torch keeps h's dtype
    assert h.dtype == torch.float16 and h.requires_grad


def test_inplace_write_from_a_tensor_requiring_grad_is_refused():
    # torch would propagate the gradient through these writes; tritongrad's in-place ops
    # record no graph, so silently dropping it is not an option
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    target = tg.zeros(2)
    for write in (lambda: target.copy_(x), lambda: target.__setitem__(0, x[1]),
                  lambda: target.add_(x), lambda: target.mul_(x)):
        with pytest.raises(RuntimeError, match="would lose its gradient"):
            write()
    assert target.tolist() == [0.0, 0.0]
    with tg.no_grad():
        target.copy_(x)
    target[1] = x[0].detach()
    assert target.tolist() == [1.0, 1.0]


def test_copy_with_partial_overlap_is_refused_as_in_torch():
    t = tg.arange(3000, dtype=tg.float32)
    with pytest.raises(ValueError, match="refer to a single memory location"):
        t[1:].copy_(t[:-1])  # racing blocks would read values already overwritten
    with pytest.raises(ValueError, match="refer to a single memory location"):
        t[1:] = t[:-1]
    square = tg.tensor(np.arange(9.0, dtype=np.float32).reshape(3, 3))
    with pytest.raises(ValueError, match="refer to a single memory location"):
        square.copy_(square.T)
    assert t.tolist() == list(range(3000))
    # disjoint halves, strided columns and a copy onto itself are fine, as in torch
    t[:1500] = t[1500:]
    square[:, 0] = square[:, 1]
    square.copy_(square)
    expected = torch.arange(3000.0)
    expected[:1500] = expected[1500:].clone()
    assert_close(t, expected)
    assert square.tolist() == [[1.0, 1.0, 2.0], [4.0, 4.0, 5.0], [7.0, 7.0, 8.0]]


def test_tensor_from_python_numbers_with_a_dtype_rounds_once_as_torch():
    values = [0.1, 1 / 3, 1e-8, 65519.9, 3.0000001, -2.5e-3]
    for dtype in (tg.float64, tg.float32, tg.float16, tg.bfloat16):
        ours, ref = tg.tensor(values, dtype=dtype).torch(), torch.tensor(values, dtype=dtype)
        assert torch.equal(ours, ref)
    assert tg.tensor([2**40 + 1], dtype=tg.float64).item() == 2**40 + 1
    assert tg.tensor([0.1, 0.2], dtype=tg.float64).sum().item() == torch.tensor(
        [0.1, 0.2], dtype=torch.float64).sum().item()


def test_to_accepts_torch_argument_forms():
    x = tg.tensor([1.0, 2.0])
    assert x.to(torch.float16, non_blocking=True).dtype == torch.float16
    assert x.to("cpu" if tg.device().type == "cpu" else "cuda", non_blocking=True) is x
    copied = x.to(torch.float32, copy=True)
    assert copied is not x and copied.torch().data_ptr() != x.torch().data_ptr()
    assert x.to(torch.tensor([1], dtype=torch.int64)).dtype == torch.int64
    with pytest.raises(RuntimeError, match="cannot move a tensor to meta"):
        x.to("meta")


def test_repr_iteration_and_truth_of_empty_and_0d_tensors():
    # as torch: the device is shown unless it is the CPU
    device = "" if tg.device().type == "cpu" else f", device='{tg.device()}'"
    assert repr(tg.zeros(0, 3)) == f"tensor([], size=(0, 3){device})"
    assert repr(tg.zeros(0)) == f"tensor([]{device})"
    assert repr(tg.tensor(3.5)) == f"tensor(3.5{device})"
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        list(tg.tensor(1.0))
    assert [t.item() for t in tg.tensor([1.0, 2.0])] == [1.0, 2.0]
    with pytest.raises(RuntimeError, match="no values is ambiguous"):
        bool(tg.zeros(0))


def test_full_and_arange_follow_torch():
    assert tg.full((2,), True).dtype == torch.bool and tg.full((2,), True).tolist() == [True, True]
    assert tg.full((2,), 3).dtype == torch.int64
    with pytest.raises(ValueError, match="inconsistent with step sign"):
        tg.arange(1, 0)
    assert tg.arange(5, 0, -2).tolist() == [5, 3, 1]


def test_add_and_sub_with_alpha():
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    b = tg.tensor([3.0, 4.0], requires_grad=True)
    ta = torch.tensor([1.0, 2.0], requires_grad=True)
    tb = torch.tensor([3.0, 4.0], requires_grad=True)
    ones = torch.tensor([1.0, 1.0])
    out = a.add(b, alpha=2.0) + a.sub(b, alpha=0.5) + a.add(ones, alpha=3.0)
    ref = ta.add(tb, alpha=2.0) + ta.sub(tb, alpha=0.5) + ta.add(ones, alpha=3.0)
    out.sum().backward()
    ref.sum().backward()
    assert_close(out, ref)
    assert_close(a.grad, ta.grad)
    assert_close(b.grad, tb.grad)


def test_fp64_to_16_bit_casts_round_through_fp32_as_torch():
    """torch rounds a double to float first, then to bf16/fp16 (two roundings); a single
    rounding differs by one ulp for values just past a tie, such as 1 + 2^-8 + 2^-40."""
    values = torch.tensor([1 + 2**-8 + 2**-40, 1 + 2**-11 + 2**-40, -3.0000000001],
                          dtype=torch.float64)
    x = tg.from_torch(values.to(tg.device()))
    for dtype in (torch.bfloat16, torch.float16):
        assert torch.equal(x.to(dtype).torch().cpu(), values.to(dtype))
