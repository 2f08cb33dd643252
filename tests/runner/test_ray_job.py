"""Which of Ray Train's actors a local run starts."""

from __future__ import annotations

import os
from typing import Any

import pytest
import ray

from kubetrain.runner import LocalCluster, start_ray

WATCHER = "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER"


@pytest.fixture
def ray_inits(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """ray.init's calls, none of them carried out; the environment is restored afterwards."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(kwargs))
    for name in (WATCHER, "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"):
        monkeypatch.delenv(name, raising=False)
    return calls


def test_a_local_cluster_starts_no_preemption_watcher(ray_inits: list[dict[str, Any]]) -> None:
    # Nothing drains a laptop's node; the watcher's actor would boot during the first epochs.
    start_ray(LocalCluster())
    assert ray_inits[0]["address"] == "local"
    assert os.environ[WATCHER] == "0"


def test_a_real_cluster_keeps_the_preemption_watcher(ray_inits: list[dict[str, Any]]) -> None:
    # In pods, a drained node is worth noticing: Ray Train's default stays.
    start_ray(LocalCluster(address="kubetrain-head.default.svc:6379"))
    assert ray_inits[0]["address"] == "kubetrain-head.default.svc:6379"
    assert WATCHER not in os.environ


def test_a_users_choice_of_watcher_wins(
    ray_inits: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WATCHER, "1")
    start_ray(LocalCluster())
    assert os.environ[WATCHER] == "1"
