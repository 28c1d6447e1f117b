"""``tg.nn``: modules, layers, losses, initialisers and the functional API, with torch's
names, so a PyTorch training loop ports by changing its imports."""

from . import functional, init, utils  # noqa: F401
from .batchnorm import BatchNorm1d, BatchNorm2d  # noqa: F401
from .conv import Conv2d  # noqa: F401
from .containers import ModuleDict, ModuleList, ParameterDict, ParameterList  # noqa: F401
from .layers import (  # noqa: F401
    Dropout,
    ELU,
    Embedding,
    Flatten,
    GELU,
    Hardtanh,
    Identity,
    LayerNorm,
    LeakyReLU,
    Linear,
    LogSoftmax,
    Mish,
    ReLU,
    ReLU6,
    Sequential,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss  # noqa: F401
from .module import Module, Parameter, StateDictError  # noqa: F401
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d  # noqa: F401

__all__ = ["Module", "Parameter", "StateDictError", "Linear", "ReLU", "Softmax", "LogSoftmax",
           "Flatten", "Dropout", "Identity", "Sequential", "MSELoss", "CrossEntropyLoss", "functional", "init", "utils",
           "Tanh", "Sigmoid", "GELU", "SiLU", "LayerNorm", "L1Loss", "BatchNorm1d", "BatchNorm2d",
           "BCEWithLogitsLoss", "NLLLoss", "Embedding",
           "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Conv2d",
           "ModuleList", "ModuleDict", "ParameterList", "ParameterDict",
           "LeakyReLU", "ELU", "Softplus", "Hardtanh", "ReLU6", "Mish"]
