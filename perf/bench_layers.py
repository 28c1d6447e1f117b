"""The layers of small CNNs and embedding models, forward + backward against torch on the
same inputs: conv2d (im2col + our matmul against cuDNN, TF32 off on both sides), max_pool2d,
batch_norm (training mode) and embedding. Time per forward + backward and launches. No
target yet: these run after every benchmark that has one."""

from __future__ import annotations

import torch
import torch.nn.functional as torch_F

import tritongrad as tg
from tritongrad.nn import functional as F

from .common import Harness


def _pair(h: Harness, make):
    """(ours, theirs): tg and torch leaves (requires_grad) holding the same values."""
    value = make()
    return tg.from_torch(value.clone()).requires_grad_(), value.clone().requires_grad_()


def _case(h: Harness, name: str, ours_fn, theirs_fn, ours_leaves, theirs_leaves,
          grad: torch.Tensor) -> None:
    ours_grad = tg.from_torch(grad)

    def ours():
        for leaf in ours_leaves:
            leaf.grad = None
        ours_fn().backward(ours_grad)

    def theirs():
        for leaf in theirs_leaves:
            leaf.grad = None
        theirs_fn().backward(grad)

    ms_ours, ms_torch = h.time_ms(ours), h.time_ms(theirs)
    h.add("layers", f"fwd+bwd {name}", "ms", ms_ours, ms_torch, higher_is_better=False,
          launches_tritongrad=h.tg_launches(ours), launches_torch=h.torch_launches(theirs))


def conv_case(h: Harness, batch: int, channels: int, out_channels: int, size: int,
              dtype: torch.dtype) -> None:
    dev = h.device
    x, tx = _pair(h, lambda: torch.randn(batch, channels, size, size, device=dev).to(dtype))
    w, tw = _pair(h, lambda: (torch.randn(out_channels, channels, 3, 3, device=dev) * 0.1)
                  .to(dtype))
    b, tb = _pair(h, lambda: torch.randn(out_channels, device=dev).to(dtype))
    grad = torch.randn(batch, out_channels, size, size, device=dev).to(dtype)
    _case(h, f"conv2d 3x3 pad 1 {batch}x{channels}x{size}x{size}->{out_channels} "
             f"{str(dtype)[6:]}",
          lambda: F.conv2d(x, w, b, padding=1), lambda: torch_F.conv2d(tx, tw, tb, padding=1),
          (x, w, b), (tx, tw, tb), grad)


def pool_norm_case(h: Harness, batch: int, channels: int, size: int,
                   dtype: torch.dtype) -> None:
    dev = h.device
    x, tx = _pair(h, lambda: torch.randn(batch, channels, size, size, device=dev).to(dtype))
    half = size // 2
    _case(h, f"max_pool2d 2x2 {batch}x{channels}x{size}x{size} {str(dtype)[6:]}",
          lambda: F.max_pool2d(x, 2), lambda: torch_F.max_pool2d(tx, 2), (x,), (tx,),
          torch.randn(batch, channels, half, half, device=dev).to(dtype))
    w, tw = _pair(h, lambda: torch.rand(channels, device=dev).to(dtype))
    b, tb = _pair(h, lambda: torch.randn(channels, device=dev).to(dtype))
    mean, var = torch.zeros(channels, device=dev), torch.ones(channels, device=dev)
    ours_mean, ours_var = tg.from_torch(mean.clone()), tg.from_torch(var.clone())
    _case(h, f"batch_norm train {batch}x{channels}x{size}x{size} {str(dtype)[6:]}",
          lambda: F.batch_norm(x, ours_mean, ours_var, w, b, training=True),
          lambda: torch_F.batch_norm(tx, mean, var, tw, tb, training=True),
          (x, w, b), (tx, tw, tb), torch.randn(batch, channels, size, size, device=dev).to(dtype))


def embedding_case(h: Harness, n_tokens: int, vocab: int, dim: int, dtype: torch.dtype) -> None:
    dev = h.device
    w, tw = _pair(h, lambda: torch.randn(vocab, dim, device=dev).to(dtype))
    index = torch.randint(0, vocab, (n_tokens,), device=dev)
    ours_index = tg.from_torch(index)
    _case(h, f"embedding {n_tokens} of {vocab}x{dim} {str(dtype)[6:]}",
          lambda: F.embedding(ours_index, w), lambda: torch_F.embedding(index, tw), (w,), (tw,),
          torch.randn(n_tokens, dim, device=dev).to(dtype))


def run(h: Harness) -> None:
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False  # our fp32 convs are IEEE fp32
    try:
        if h.smoke:
            cases = [lambda: conv_case(h, 2, 3, 4, 8, torch.float32),
                     lambda: pool_norm_case(h, 2, 3, 8, torch.float32),
                     lambda: embedding_case(h, 16, 10, 8, torch.float32)]
        else:
            cases = [lambda: conv_case(h, 128, 32, 64, 28, torch.float32),
                     lambda: conv_case(h, 128, 32, 64, 28, torch.bfloat16),
                     lambda: pool_norm_case(h, 128, 64, 28, torch.float32),
                     lambda: embedding_case(h, 8192, 32000, 512, torch.float32)]
        for index, case in enumerate(cases):
            if h.out_of_time():
                h.skip(f"layers case {index}")
                continue
            case()
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
