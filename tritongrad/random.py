"""The global Philox generator: its state lives on the device.

The state is an int64 tensor ``[seed, offset]`` that random kernels read, and a
one-program kernel advances the offset after each draw. Keeping it in device
memory (rather than as kernel arguments) lets a captured CUDA graph draw fresh
numbers on every replay.
"""

from __future__ import annotations

import torch

from ._device import DEVICE

_state: torch.Tensor | None = None
DEFAULT_SEED = 0


def rng_state_tensor() -> torch.Tensor:
    """The live device-side state (random kernels read and advance it)."""
    global _state
    if _state is None:
        _state = torch.zeros(2, dtype=torch.int64, device=DEVICE)
        _state.copy_(torch.tensor([DEFAULT_SEED, 0], dtype=torch.int64))  # host -> device
    return _state


def manual_seed(seed: int) -> None:
    """Seed the generator and reset its offset: the same seed replays the same numbers."""
    rng_state_tensor().copy_(torch.tensor([int(seed), 0], dtype=torch.int64))


def get_rng_state() -> torch.Tensor:
    """A host copy of ``[seed, offset]``."""
    return rng_state_tensor().to("cpu", copy=True)


def set_rng_state(state) -> None:
    values = state.torch() if hasattr(state, "torch") else state
    values = torch.as_tensor(values, dtype=torch.int64).to("cpu")
    if values.shape != (2,):
        raise ValueError(f"set_rng_state expects a [seed, offset] int64 tensor, got shape "
                         f"{list(values.shape)}")
    rng_state_tensor().copy_(values)


def initial_seed() -> int:
    return int(get_rng_state()[0])
