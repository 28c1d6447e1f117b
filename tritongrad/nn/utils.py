"""``tg.nn.utils``: ``clip_grad_norm_`` (one fused multi-tensor launch pair),
``clip_grad_value_``, ``parameters_to_vector`` and ``vector_to_parameters``."""

from ..nn_utils_clip import clip_grad_norm_, clip_grad_value_
from .convert_parameters import parameters_to_vector, vector_to_parameters

__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector", "vector_to_parameters"]
