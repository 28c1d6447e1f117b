"""Arrival counters for one-launch reductions.

A grid-wide reduction normally takes two launches: programs write partials, then one
program adds them. The second launch costs a kernel boundary (a few microseconds on a
GPU, several percent of a bandwidth-bound reduction over 2^26 elements). Instead, each
program writes its partial and then takes a ticket from an int32 counter with an
acquire-release atomic; the program that draws the last ticket sees every partial, adds
them in a fixed order (so the result does not depend on which program came last), and
sets the counter back to 0 for the next launch.

The counter must be 0 when a launch starts. Every launch leaves it at 0, and launches
on one stream run one after another, so a counter is kept per (device, stream). Inside a
CUDA graph capture a fresh zeroed counter is made for the call (its zero fill is captured
too, so every replay starts from 0), and it is not cached: a counter that only a graph
has zeroed must not serve eager work.
"""

from __future__ import annotations

import torch

from ._launch import interpreting

_COUNTERS: dict = {}


def arrival_counter(device: torch.device) -> torch.Tensor:
    """A zeroed int32 counter for one launch on ``device``'s current stream."""
    if interpreting() or device.type != "cuda":
        key = (str(device), None)
    else:
        if torch.cuda.is_current_stream_capturing():
            return torch.zeros((1,), dtype=torch.int32, device=device)
        key = (str(device), torch.cuda.current_stream(device).cuda_stream)
    counter = _COUNTERS.get(key)
    if counter is None:
        counter = _COUNTERS[key] = torch.zeros((1,), dtype=torch.int32, device=device)
    return counter
