"""Torch references of tanh, sigmoid, GELU and SiLU (oracle code: torch math allowed).
ReLU and softmax register theirs in ref_matmul.py."""

import torch
import torch.nn.functional as F

from ..ops import activation
from .references import register_reference

register_reference(activation.Tanh, torch.tanh)
register_reference(activation.Sigmoid, torch.sigmoid)
register_reference(activation.GELU, lambda x, approximate: F.gelu(x, approximate=approximate))
register_reference(activation.SiLU, F.silu)
