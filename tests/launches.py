"""Recording kernel launches in tests, through the launch-observer hook in kernels/_launch.py."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from tritongrad.kernels._launch import (
    LaunchInfo,
    LaunchObserver,
    add_launch_observer,
    remove_launch_observer,
)


class _Recorder(LaunchObserver):
    def __init__(self, launches: list[LaunchInfo]):
        self.launches = launches

    def begin(self, info: LaunchInfo) -> None:
        # Recorded as the launch starts, so a launch whose kernel raises still counts.
        self.launches.append(info)


@contextmanager
def recorded_launches() -> Iterator[list[LaunchInfo]]:
    """Yields a list that receives the LaunchInfo of every kernel launch inside the block."""
    launches: list[LaunchInfo] = []
    recorder = _Recorder(launches)
    add_launch_observer(recorder)
    try:
        yield launches
    finally:
        remove_launch_observer(recorder)
