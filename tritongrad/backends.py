"""Switches for how kernels compute, named after torch.backends.

``tg.backends.matmul.allow_tf32`` (default False): fp32 matrix products take TF32 inputs
(10 of fp32's 23 mantissa bits) on a GPU's tensor cores, with fp32 accumulation. Off, they
compute in IEEE fp32, as torch's default. It covers ``matmul``/``@``, ``linear``,
``linear_relu`` and ``linear_cross_entropy``, forward and backward, and is read when each
product launches, as torch reads ``torch.backends.cuda.matmul.allow_tf32``. fp16 and bf16
products use tensor cores either way. Triton's interpreter computes every product in
fp32, so on a CPU the switch changes nothing.
"""

from __future__ import annotations


class MatmulSwitches:
    """The ``tg.backends.matmul`` switches (see the module docstring)."""

    def __init__(self) -> None:
        self.allow_tf32 = False

    def __repr__(self) -> str:
        return f"tg.backends.matmul(allow_tf32={self.allow_tf32})"


matmul = MatmulSwitches()
