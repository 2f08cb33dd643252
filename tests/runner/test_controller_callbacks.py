"""What kubetrain's callbacks inside Ray Train's controller pass on to the driver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray import cloudpickle
from ray.train.v2._internal.execution.controller.state import RestartingState, RunningState
from ray.train.v2.api.exceptions import PreemptionError, WorkerGroupError
from ray.train.v2.api.preemption import PreemptionInfo

from kubetrain.runner.callbacks import PreemptionReporter, blame
from kubetrain.runner.channel import ProgressChannel
from kubetrain.runner.reports import EpochUpdate, WorkerFailure
from kubetrain.runner.torch_trainer import build_trainer
from kubetrain.trainer.storage import resolve
from tests.conftest import make_job


class RecordingChannel(ProgressChannel):
    def __init__(self) -> None:
        super().__init__()
        self.items: list[EpochUpdate | WorkerFailure] = []

    def put(self, item: EpochUpdate | WorkerFailure) -> None:
        self.items.append(item)


def preempted(*ranks: int) -> PreemptionError:
    info = PreemptionInfo(deadline_ms=None, preempted_node_to_ranks={"node-a": list(ranks)})
    return PreemptionError(preemption_info=info)


def test_a_restart_after_a_drained_node_is_reported_naming_its_ranks() -> None:
    channel = RecordingChannel()
    PreemptionReporter(channel).after_controller_state_update(
        RunningState(), RestartingState(training_failed_error=preempted(1))
    )
    assert len(channel.items) == 1
    failure = channel.items[0]
    assert isinstance(failure, WorkerFailure)
    assert failure.describe() == (
        "worker 1 failed: its node was preempted or drained; resuming from the last checkpoint"
    )


def test_a_restart_after_a_worker_error_is_left_to_after_exception() -> None:
    # after_exception already reported the rank and its error: no second line.
    channel = RecordingChannel()
    error = WorkerGroupError("boom", worker_failures={1: RuntimeError("boom")})
    reporter = PreemptionReporter(channel)
    reporter.after_controller_state_update(RunningState(), RestartingState(error))
    reporter.after_controller_state_update(RestartingState(error), RunningState())
    assert channel.items == []


def test_the_controllers_callbacks_share_one_channel(tmp_path: Path) -> None:
    """Two copies would both number their reports from 0, and overwrite each other's."""
    job = make_job(checkpoint={"storagePath": str(tmp_path)})
    trainer = build_trainer(
        job, resolve(job.spec.checkpoint), ProgressChannel(), metrics_port_per_rank=True,
        local_cluster=True,
    )  # fmt: skip
    callbacks: list[Any] = cloudpickle.loads(cloudpickle.dumps(trainer.run_config.callbacks))
    channels = {id(cb.channel) for cb in callbacks}
    assert len(callbacks) == 3 and len(channels) == 1


GLOO_FALLOUT = RuntimeError(
    "[../third_party/gloo/gloo/transport/tcp/pair.cc:537] Read error [127.0.0.1]:4711: "
    "Connection reset by peer"
)


def test_a_crash_is_blamed_on_the_rank_that_died_not_on_its_peers() -> None:
    died = RuntimeError("The actor died unexpectedly before finishing this task.\nexit code 1")
    failure = blame({0: GLOO_FALLOUT, 1: died})
    assert failure.ranks == (1,)
    assert failure.error == "exit code 1"


def test_when_every_rank_reports_fallout_every_rank_is_named() -> None:
    failure = blame({0: GLOO_FALLOUT, 1: GLOO_FALLOUT})
    assert failure.ranks == (0, 1)
    assert "Connection reset by peer" in failure.error
