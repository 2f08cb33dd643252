"""A clock and a sleep that take no time."""

from __future__ import annotations


class FakeTime:
    def __init__(self) -> None:
        self.t = 0.0

    def sleep(self, seconds: float) -> None:
        self.t += seconds

    def clock(self) -> float:
        return self.t
