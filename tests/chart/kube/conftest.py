"""The chart installed on a real control plane (tests/kube_cluster.py's `cluster` and `kube`)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The kube tests here are slow too (they need root and a cluster build), so that
    `-m "not slow"` leaves them out: before pytest's -m deselects (tryfirst)."""
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here) and item.get_closest_marker("kube"):
            item.add_marker(pytest.mark.slow)
