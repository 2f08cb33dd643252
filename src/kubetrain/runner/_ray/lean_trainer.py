"""A TorchTrainer without the Ray Train helpers a kubetrain run has no use for.

Each helper is an actor of its own, and an idle Ray actor costs ~0.6% of a core (its core
worker checks for signals every 10 ms). With 2 workers on 2 cores that CPU comes out of
training, so it counts against the per-step overhead:
  - DatasetsCallback starts a DatasetManager actor for Ray Datasets; kubetrain passes none
    (every worker reads its own shard);
  - PlacementGroupCleanerCallback starts an actor that asks the State API every second
    whether the controller still lives, to free its placement group if it died. On a local
    cluster, which ends with the driver, there is nothing for it to outlive;
  - the scaling policy asks an AutoscalingCoordinator actor (Ray Data's, ~1.5 CPU-seconds of
    imports as it boots during the first epochs, then ~0.5% of a core) to have the cluster
    autoscaler provide the workers' resources, again every 20 s. A local cluster is the
    machine itself: there is no autoscaler to ask.

It also swaps Ray Train's failure policy for one that ends the run at once on an error a retry
would meet again (`WillRecur`): restarting the workers from the last checkpoint
(`distributed.maxFailures` times) would only repeat it, minutes later.

`_create_default_callbacks` and `_initialize_and_run_controller` are Ray Train's own (private)
hooks; tests/runner/test_lean_trainer.py fails if Ray renames them or the callbacks.
"""

from __future__ import annotations

from typing import Any

from ray.train.v2._internal.callbacks.datasets import DatasetsCallback
from ray.train.v2._internal.callbacks.placement_group_callback import (
    PlacementGroupCleanerCallback,
)
from ray.train.v2._internal.execution.failure_handling import FailureDecision
from ray.train.v2._internal.execution.failure_handling.default import DefaultFailurePolicy
from ray.train.v2._internal.execution.scaling_policy import FixedScalingPolicy
from ray.train.v2.torch.torch_trainer import TorchTrainer

from kubetrain.runner.recurring import recurring_cause


class NoRetryOfRecurringErrors(DefaultFailurePolicy):  # type: ignore[misc]
    """Ray Train's own policy, except that an error that will recur is raised, not retried."""

    def make_decision(self, training_failed_error: Any) -> Any:
        if recurring_cause(training_failed_error) is not None:
            return FailureDecision.RAISE
        return super().make_decision(training_failed_error)


class LocalScalingPolicy(FixedScalingPolicy):
    """A fixed worker count that asks no autoscaler for resources (none runs locally)."""

    def _send_resource_request(self) -> None: ...

    def _maybe_send_resource_request(self) -> None: ...

    def _cancel_resource_request(self) -> None: ...


class LeanTorchTrainer(TorchTrainer):
    def __init__(self, *args: Any, local_cluster: bool, **kwargs: Any) -> None:
        self._local_cluster = local_cluster
        super().__init__(*args, **kwargs)

    def _create_default_callbacks(self) -> list[Any]:
        unused: tuple[type, ...] = (DatasetsCallback,)
        if self._local_cluster:
            unused += (PlacementGroupCleanerCallback,)
        return [cb for cb in super()._create_default_callbacks() if not isinstance(cb, unused)]

    def _initialize_and_run_controller(self, **controller_init_kwargs: Any) -> Any:
        policy = controller_init_kwargs.get("scaling_policy")
        if self._local_cluster and type(policy) is FixedScalingPolicy:
            controller_init_kwargs["scaling_policy"] = LocalScalingPolicy(policy.scaling_config)
        failures = controller_init_kwargs.get("failure_policy")
        if type(failures) is DefaultFailurePolicy:
            controller_init_kwargs["failure_policy"] = NoRetryOfRecurringErrors(
                failures.failure_config
            )
        return super()._initialize_and_run_controller(**controller_init_kwargs)
