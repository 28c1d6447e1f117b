"""Gradient parity against PyTorch: assert_parity, the parity report, shadow mode,
gradcheck, the tolerance table and the torch references."""

from .compare import Comparison, assert_close, compare  # noqa: F401
from .gradcheck import GradcheckError, NoFloat64Error, gradcheck  # noqa: F401
from .parity import ParityError, assert_parity, constant, run_parity  # noqa: F401
from .references import reference_for, register_reference  # noqa: F401
from .shadow import ShadowMismatch, shadow  # noqa: F401
from .tolerances import TOLERANCES, tolerance_for  # noqa: F401
