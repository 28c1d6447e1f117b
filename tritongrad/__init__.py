"""tritongrad: a small deep learning framework whose every op is a Triton kernel.

``_device`` is imported first: it switches Triton's interpreter on (no GPU)
before any kernel module is imported.
"""

from ._device import device, is_interpreter  # noqa: F401  (must come first)
