"""tritongrad: a small deep learning framework whose every op is a Triton kernel.

``_device`` is imported first: it switches Triton's interpreter on (no GPU)
before any kernel module is imported.
"""

from ._device import device, is_interpreter  # noqa: F401  (must come first)

from . import autograd  # noqa: E402,F401
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled  # noqa: E402,F401
from .creation import (  # noqa: E402,F401
    arange,
    bfloat16,
    bool_,
    empty,
    float16,
    float32,
    float64,
    from_numpy,
    from_torch,
    full,
    int32,
    int64,
    ones,
    ones_like,
    rand,
    randn,
    tensor,
    zeros,
    zeros_like,
)
from .kernels._checks import (  # noqa: E402,F401
    DeviceError,
    DTypeError,
    LayoutError,
    OutOfRangeError,
    ShapeError,
    TritongradError,
    UnsupportedError,
    ValueCheckError,
)
from .random import get_rng_state, initial_seed, manual_seed, set_rng_state  # noqa: E402,F401
from .tensor import Tensor  # noqa: E402,F401
from .ops.elementwise import abs, exp, log, maximum, minimum, sqrt  # noqa: E402,F401
from .ops.unary_math import (  # noqa: E402,F401
    ceil,
    cos,
    expm1,
    floor,
    log1p,
    log2,
    log10,
    reciprocal,
    round,
    rsqrt,
    sign,
    sin,
    square,
    trunc,
)
from .ops.moments import std, var  # noqa: E402,F401
from .ops.reduction import all, amax, amin, any, argmin, max, mean, min, sum  # noqa: E402,F401,A004
from .ops.matmul import matmul  # noqa: E402,F401
from .ops.comparison import argmax  # noqa: E402,F401
from .ops.activation import relu, sigmoid, tanh  # noqa: E402,F401
from .ops.norm import norm  # noqa: E402,F401
from .ops.join import cat, stack  # noqa: E402,F401
from .ops.select import clamp, clip, where  # noqa: E402,F401
from .ops.views import chunk, split  # noqa: E402,F401
from .ops.gather import gather, index_select  # noqa: E402,F401
from . import backends, nn, optim, profiler  # noqa: E402,F401
from .graphs import compile_step  # noqa: E402,F401
from .serialization import load, save  # noqa: E402,F401
from .memory import memory_stats  # noqa: E402,F401
from .determinism import (  # noqa: E402,F401
    are_deterministic_algorithms_enabled,
    use_deterministic_algorithms,
)

__version__ = "0.1.0"
from . import testing  # noqa: E402,F401
