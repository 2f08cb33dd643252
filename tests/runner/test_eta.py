"""How long a run has left."""

from __future__ import annotations

from kubetrain.api.progress import format_duration
from kubetrain.runner.eta import EtaEstimator
from tests.runner.updates import report


def test_eta_ignores_startup_and_uses_wall_time_between_epochs() -> None:
    eta = EtaEstimator()
    assert eta.eta(report(1, 100.0)) == 2.0 * 9  # the workers' own epoch time at first
    assert eta.eta(report(3, 106.0)) == 3.0 * 7  # then 3 s per epoch of wall time


def test_eta_after_resume_counts_only_this_runs_epochs() -> None:
    eta = EtaEstimator()
    eta.eta(report(6, 0.0))
    assert eta.eta(report(8, 10.0)) == 5.0 * 2


def test_duration_format() -> None:
    assert format_duration(3725.4) == "1:02:05" and format_duration(None) == "?"
