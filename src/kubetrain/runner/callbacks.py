"""Callbacks that run in Ray Train's controller actor and forward what happens to the driver."""

from __future__ import annotations

from typing import Any

import ray.train
from ray.train.v2.api.exceptions import PreemptionError

from kubetrain.api.report import EpochReport
from kubetrain.runner._ray.controller import ControllerCallback, RestartingState
from kubetrain.runner.channel import ProgressChannel
from kubetrain.runner.recurring import recurring_among
from kubetrain.runner.reports import EpochUpdate, WorkerFailure


class ProgressCallback(ray.train.UserCallback):  # type: ignore[misc]
    """Forwards rank 0's epoch reports and the workers' failures to the driver's channel."""

    def __init__(self, channel: ProgressChannel) -> None:
        self.channel = channel

    def after_report(
        self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any
    ) -> None:
        path = getattr(checkpoint, "path", None)
        self.channel.put(EpochUpdate(EpochReport.from_metrics(metrics[0]), path))

    def after_exception(self, run_context: Any, worker_exceptions: dict[int, Exception]) -> None:
        if recurring_among(worker_exceptions.values()) is not None:
            return  # not retried: the run ends with this error, and the driver says it
        self.channel.put(blame(worker_exceptions))


class PreemptionReporter(ControllerCallback):  # type: ignore[misc]
    """Forwards restarts that no worker error announced.

    When a worker's node drains (its pod deleted or evicted), Ray Train may wait for the rank to
    leave and restart the workers from the latest checkpoint without any rank raising, so
    `ProgressCallback.after_exception` never hears of it. The user should.
    """

    def __init__(self, channel: ProgressChannel) -> None:
        self.channel = channel

    def after_controller_state_update(self, previous_state: Any, current_state: Any) -> None:
        error = getattr(current_state, "training_failed_error", None)
        if isinstance(current_state, RestartingState) and isinstance(error, PreemptionError):
            ranks = tuple(error.preemption_info.preempted_ranks)
            self.channel.put(WorkerFailure(ranks, "its node was preempted or drained"))


# What a rank raises when a *peer* went away mid-collective: fallout, not a cause.
_PEER_FALLOUT = ("gloo/transport", "Connection closed by peer", "ProcessGroupNCCL", "NCCL error")


def blame(worker_exceptions: dict[int, Exception]) -> WorkerFailure:
    """Names the ranks that failed first-hand. When rank 1 dies, rank 0's allreduce fails too
    (which one Ray Train sees first is a race); the user should hear about rank 1."""

    def fallout(exc: Exception) -> bool:
        return any(mark in str(exc) for mark in _PEER_FALLOUT)

    causes = {r: e for r, e in worker_exceptions.items() if not fallout(e)} or worker_exceptions
    first = causes[min(causes)]
    message = str(first).strip().splitlines()[-1] if str(first).strip() else repr(first)
    return WorkerFailure(tuple(sorted(causes)), message[:300])
