"""Progress of a run as the user sees it: one line per epoch, with an ETA.

Workers report to Ray Train's controller; `ProgressCallback` (running in the controller) forwards
rank 0's report through a `ProgressChannel` (the GCS's key-value store) to the driver, where a
`ProgressSink` shows it: the console locally, the TrainingJob's status in a cluster.
"""

from __future__ import annotations

import pickle  # reports from our own controller callback, inside the same Ray cluster
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

import ray.train
from ray.experimental import internal_kv
from ray.train.v2._internal.execution.callback import ControllerCallback
from ray.train.v2._internal.execution.controller.state import RestartingState
from ray.train.v2.api.exceptions import PreemptionError

from kubetrain.runner.recurring import recurring_among

_KV = "kubetrain"  # the GCS key-value namespace of our keys


@dataclass(frozen=True)
class EpochReport:
    metrics: dict[str, Any]
    checkpoint: str | None
    at: float = field(default_factory=time.time)

    @property
    def epoch(self) -> int:
        return int(self.metrics.get("epoch", 0))

    @property
    def total_epochs(self) -> int:
        return int(self.metrics.get("total_epochs", 0))

    @property
    def metric_name(self) -> str:
        return str(self.metrics.get("metric_name", "accuracy"))

    @property
    def metric(self) -> float | None:
        value = self.metrics.get(f"val_{self.metric_name}")
        return None if value is None else float(value)


@dataclass(frozen=True)
class WorkerFailure:
    ranks: tuple[int, ...]  # empty when no rank failed (the run ended early without an error)
    error: str

    def describe(self) -> str:
        who = f"worker {', '.join(map(str, self.ranks))} failed: " if self.ranks else ""
        return f"{who}{self.error}; resuming from the last checkpoint"


class ProgressSink(Protocol):
    def on_epoch(self, report: EpochReport, eta_seconds: float | None) -> None: ...
    def on_worker_failure(self, failure: WorkerFailure) -> None: ...


class EtaEstimator:
    """Remaining epochs times the mean wall time per epoch, measured between reports.

    Worker start-up is not an epoch: the first report's estimate uses the workers' own
    epoch time, later ones the wall time between this run's reports.
    """

    def __init__(self) -> None:
        self.first: EpochReport | None = None

    def eta(self, report: EpochReport) -> float | None:
        remaining = report.total_epochs - report.epoch
        if remaining <= 0 or report.metrics.get("finished"):  # the last epoch, or an early stop
            return 0.0
        if self.first is None:
            self.first = report
            seconds = report.metrics.get("epoch_seconds")
            return None if seconds is None else max(0.0, float(seconds) * remaining)
        epochs = report.epoch - self.first.epoch
        if epochs <= 0:
            return None
        return max(0.0, (report.at - self.first.at) / epochs * remaining)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def format_progress(report: EpochReport, eta_seconds: float | None) -> str:
    m = report.metrics
    parts = [f"epoch {report.epoch}/{report.total_epochs}"]
    if "val_loss" in m:
        parts.append(f"loss {m['val_loss']:.4f}")
    if report.metric is not None:
        parts.append(f"{report.metric_name} {report.metric:.4f}")
    if "samples_per_second" in m:
        parts.append(f"{m['samples_per_second']:.0f} samples/s")
    parts.append(f"ETA {format_duration(eta_seconds)}")
    if m.get("stopped_early"):
        parts.append("(early stop)")
    if report.checkpoint:
        parts.append("[checkpoint]")
    return "  ".join(parts)


def format_resumed(report: EpochReport) -> str | None:
    """The line that says a run picked up where an earlier one stopped (or that an earlier one
    had finished, leaving nothing to train), or None if it did not.

    Given the first report of a run: any epoch after the first means a checkpoint was loaded.
    """
    if report.metrics.get("already_finished"):
        how = "stopped early at" if report.metrics.get("stopped_early") else "finished"
        return (
            f"nothing to train: this job already {how} epoch {report.epoch}/"
            f"{report.total_epochs} (its checkpoint's scores follow); to train again from the "
            "start, rename it (metadata.name) or remove its checkpoints"
        )
    if report.epoch <= 1:
        return None
    done = report.epoch - 1
    return f"resumed from the checkpoint of epoch {done}: {done}/{report.total_epochs} were done"


class ConsoleSink:
    def __init__(self, stream: TextIO = sys.stdout) -> None:
        self.stream = stream
        self.first = True

    def on_epoch(self, report: EpochReport, eta_seconds: float | None) -> None:
        if self.first and (resumed := format_resumed(report)):
            print(resumed, file=self.stream)
        self.first = False
        print(format_progress(report, eta_seconds), file=self.stream, flush=True)

    def on_worker_failure(self, failure: WorkerFailure) -> None:
        print(failure.describe(), file=self.stream, flush=True)


class ProgressChannel:
    """Carries reports from Ray Train's controller (`put`, in `ProgressCallback`) to the driver
    (`take`) through the key-value store of Ray's GCS: numbered keys under a prefix of its own.

    Not an actor: an actor is one more Ray process, whose event loop and core-worker threads
    took ~1.3% of a core for the whole run (measured with 2 workers on 2 cores), out of the
    training workers' share. The GCS runs anyway, on the head, beside the driver: losing a
    worker's node loses no report. Each copy counts for itself: the controller's copy numbers
    what it puts, the driver's copy what it has taken; one channel serves one `fit()`.
    """

    def __init__(self) -> None:
        self.prefix = f"progress/{uuid.uuid4().hex}/"
        self._put = 0
        self._taken = 0

    def _key(self, index: int) -> str:
        return f"{self.prefix}{index:09d}"

    def put(self, item: EpochReport | WorkerFailure) -> None:
        _kv_put(self._key(self._put), item)
        self._put += 1

    def take(self) -> list[EpochReport | WorkerFailure]:
        """What was put since the last call, in order (removed from the store)."""
        items: list[EpochReport | WorkerFailure] = []
        while True:
            key = self._key(self._taken)
            item = _kv_get(key)
            if item is None:
                return items
            items.append(item)
            internal_kv._internal_kv_del(key, namespace=_KV)
            self._taken += 1

    def publish(self, name: str, value: object) -> None:
        """Leaves `value` for every copy under `name` (not numbered: never taken as a report)."""
        _kv_put(self.prefix + name, value)

    def published(self, name: str) -> Any:
        """What `publish` left under `name`, or None."""
        return _kv_get(self.prefix + name)


def _kv_put(key: str, value: object) -> None:
    internal_kv._internal_kv_put(key, pickle.dumps(value), namespace=_KV)


def _kv_get(key: str) -> Any:
    raw = internal_kv._internal_kv_get(key, namespace=_KV)
    return None if raw is None else pickle.loads(raw)


class ProgressCallback(ray.train.UserCallback):  # type: ignore[misc]
    """Runs in Ray Train's controller actor; forwards reports to the driver's channel."""

    def __init__(self, channel: ProgressChannel) -> None:
        self.channel = channel

    def after_report(
        self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any
    ) -> None:
        path = getattr(checkpoint, "path", None)
        self.channel.put(EpochReport(dict(metrics[0]), path))

    def after_exception(self, run_context: Any, worker_exceptions: dict[int, Exception]) -> None:
        if recurring_among(worker_exceptions.values()) is not None:
            return  # not retried: the run ends with this error, and the driver says it
        self.channel.put(blame(worker_exceptions))


class PreemptionReporter(ControllerCallback):  # type: ignore[misc]
    """Runs in Ray Train's controller actor; forwards restarts that no worker error announced.

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
