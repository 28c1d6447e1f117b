"""Torch references of the matmul family, ReLU and softmax (oracle code: torch math allowed)."""

import torch
import torch.nn.functional as F

from ..ops import activation, matmul
from .references import register_reference

register_reference(matmul.MatMul, torch.matmul)
register_reference(matmul.Linear, lambda x, weight, bias=None: F.linear(x, weight, bias))
register_reference(matmul.LinearReLU,
                   lambda x, weight, bias=None: torch.relu(F.linear(x, weight, bias)))
register_reference(activation.ReLU, torch.relu)
register_reference(activation.Softmax, lambda x, dim, log: (torch.log_softmax if log
                                                             else torch.softmax)(x, dim))
