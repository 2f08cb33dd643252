"""Where the runner's own Ray actors live, and which of Ray Train's a local run starts."""

from __future__ import annotations

import os
from typing import Any

import pytest
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from kubetrain.runner import LocalCluster, start_ray
from kubetrain.runner.ray_job import channel_options

WATCHER = "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER"


def test_progress_channel_is_pinned_to_the_drivers_node() -> None:
    # On a cluster, a worker pod's node may go at any time; the driver's node stays.
    node = "a2ed883064274c87e2d713aea042bc950bf9c6670d6a9a7101508b8e"  # as Ray names nodes
    options = channel_options(node)
    strategy = options["scheduling_strategy"]
    assert isinstance(strategy, NodeAffinitySchedulingStrategy)
    assert (strategy.node_id, strategy.soft) == (node, False)
    assert options["num_cpus"] == 0  # the head offers no CPUs


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
