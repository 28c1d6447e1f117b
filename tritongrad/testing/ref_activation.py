"""Torch references of tanh, sigmoid, GELU, SiLU, Mish, leaky ReLU, ELU, softplus and hardtanh
(oracle code: torch math allowed), and the parity cases of the last five. ReLU and softmax
register theirs in ref_matmul.py.

hardtanh at NaN: torch's CPU backward passes the gradient in its scalar loop and gives 0 in
its vectorized one (CUDA passes it); ours passes it. The cases draw no NaN."""

import torch
import torch.nn.functional as F

from ..ops import activation
from .references import register_reference

register_reference(activation.Tanh, torch.tanh)
register_reference(activation.Sigmoid, torch.sigmoid)
register_reference(activation.GELU, lambda x, approximate: F.gelu(x, approximate=approximate))
register_reference(activation.SiLU, F.silu)
register_reference(activation.Mish, F.mish)
register_reference(activation.LeakyReLU, F.leaky_relu)
register_reference(activation.ELU, F.elu)
register_reference(activation.Softplus, F.softplus)
register_reference(activation.Hardtanh, F.hardtanh)


def parametrized_activation_cases() -> list:
    """Mish, leaky ReLU, ELU, softplus and hardtanh on 3 * randn, the parameters as the
    Functions take them: torch's defaults, then others (a negative slope, alpha 0.5, a
    threshold that 3 * randn crosses, ReLU6's bounds). The kinks are at 0, at beta x ==
    threshold and at the bounds: random draws miss them."""
    from .cases import ParityCase, _transposed, randn, spec

    def args(s, d, g):
        x = _transposed(g, s.shapes[0]) if s.option("layout") == "T" else randn(g, s.shapes[0])
        return (x * 3.0,) + s.option("params")

    def specs(default: tuple, other: tuple) -> tuple:
        return (spec((7, 13), params=default), spec((13, 7), params=other, layout="T"))

    return [
        ParityCase("mish", activation.Mish, args, specs((), ()),
                   gradcheck_spec=spec((3, 4), params=())),
        ParityCase("leaky_relu", activation.LeakyReLU, args, specs((0.01,), (-0.2,)),
                   gradcheck_spec=spec((3, 4), params=(0.1,))),
        ParityCase("elu", activation.ELU, args, specs((1.0,), (0.5,)),
                   gradcheck_spec=spec((3, 4), params=(0.7,))),
        ParityCase("softplus", activation.Softplus, args, specs((1.0, 20.0), (2.0, 3.0)),
                   gradcheck_spec=spec((3, 4), params=(1.5, 20.0))),
        ParityCase("hardtanh", activation.Hardtanh, args, specs((-1.0, 1.0), (0.0, 6.0)),
                   gradcheck_spec=spec((3, 4), params=(-2.0, 2.0))),
    ]
