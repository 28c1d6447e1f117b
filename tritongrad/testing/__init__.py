"""Gradient parity against PyTorch: assert_parity, the tolerance table, references."""

from .compare import Comparison, assert_close, compare  # noqa: F401
from .parity import ParityError, assert_parity, run_parity  # noqa: F401
from .references import reference_for, register_reference  # noqa: F401
from .tolerances import TOLERANCES, tolerance_for  # noqa: F401
