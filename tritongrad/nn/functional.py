"""``tg.nn.functional``: the functional ops, under torch's names (``import ... as F``).

Every function here is a tritongrad op (``tritongrad/ops``): a Function whose forward
and backward are Triton kernels."""

from ..ops.activation import (elu, gelu, hardtanh, leaky_relu, log_softmax, mish, relu,
                              relu6, sigmoid, silu, softmax, softplus, tanh)
from ..ops.batch_norm import batch_norm
from ..ops.bce import binary_cross_entropy_with_logits
from ..ops.conv import conv2d, fold, unfold
from ..ops.dropout import dropout
from ..ops.embedding import embedding
from ..ops.layer_norm import layer_norm
from ..ops.loss import cross_entropy, l1_loss, linear_cross_entropy, mse_loss
from ..ops.matmul import linear, linear_relu
from ..ops.nll import nll_loss
from ..ops.norm import clip_norm
from ..ops.pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d

__all__ = ["relu", "softmax", "log_softmax", "linear", "linear_relu", "mse_loss", "l1_loss",
           "cross_entropy", "linear_cross_entropy", "clip_norm", "dropout",
           "tanh", "sigmoid", "gelu", "silu", "leaky_relu", "elu", "softplus", "hardtanh",
           "relu6", "mish", "layer_norm", "batch_norm",
           "binary_cross_entropy_with_logits", "nll_loss", "embedding",
           "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
           "conv2d", "unfold", "fold"]
