"""Which of Ray Train's helper callbacks a kubetrain trainer keeps, local and in pods."""

from __future__ import annotations

import pytest
import ray.train
from ray.train.v2._internal.callbacks.datasets import DatasetsCallback
from ray.train.v2._internal.callbacks.placement_group_callback import (
    PlacementGroupCleanerCallback,
)
from ray.train.v2._internal.callbacks.user_callback import UserCallbackHandler
from ray.train.v2._internal.execution.scaling_policy import FixedScalingPolicy
from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer

from kubetrain.runner._ray.lean_trainer import LeanTorchTrainer, LocalScalingPolicy


def _noop() -> None: ...


def callback_types(*, local_cluster: bool) -> set[type]:
    trainer = LeanTorchTrainer(
        _noop,
        local_cluster=local_cluster,
        scaling_config=ray.train.ScalingConfig(num_workers=1),
    )
    return {type(cb) for cb in trainer._create_default_callbacks()}


@pytest.mark.parametrize("local_cluster", [True, False])
def test_no_dataset_manager_for_a_run_without_ray_datasets(local_cluster: bool) -> None:
    kept = callback_types(local_cluster=local_cluster)
    assert DatasetsCallback not in kept
    # The rest of Ray Train's defaults stay, users' callbacks among them.
    assert UserCallbackHandler in kept


def test_a_local_cluster_starts_no_placement_group_cleaner() -> None:
    assert PlacementGroupCleanerCallback not in callback_types(local_cluster=True)


def test_a_run_in_pods_keeps_the_placement_group_cleaner() -> None:
    # A Ray head outlives a crashed controller there; its placement group must still be freed.
    assert PlacementGroupCleanerCallback in callback_types(local_cluster=False)


def policy_given_to_the_controller(
    monkeypatch: pytest.MonkeyPatch, *, local_cluster: bool
) -> object:
    handed: dict[str, object] = {}

    def record(_self: object, **kwargs: object) -> None:
        handed.update(kwargs)

    monkeypatch.setattr(DataParallelTrainer, "_initialize_and_run_controller", record)
    config = ray.train.ScalingConfig(num_workers=2)
    trainer = LeanTorchTrainer(_noop, local_cluster=local_cluster, scaling_config=config)
    trainer._initialize_and_run_controller(scaling_policy=FixedScalingPolicy(config))
    return handed["scaling_policy"]


def test_a_local_cluster_asks_no_autoscaler_for_resources(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policy = policy_given_to_the_controller(monkeypatch, local_cluster=True)
    assert isinstance(policy, LocalScalingPolicy)
    assert policy.scaling_config.num_workers == 2
    # The calls that would start the AutoscalingCoordinator actor do nothing (no client set).
    policy._send_resource_request()
    policy._maybe_send_resource_request()
    policy._cancel_resource_request()


def test_a_run_in_pods_keeps_the_autoscaling_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    # A KubeRay cluster's autoscaler acts on them.
    policy = policy_given_to_the_controller(monkeypatch, local_cluster=False)
    assert type(policy) is FixedScalingPolicy
