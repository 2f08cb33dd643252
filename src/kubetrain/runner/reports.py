"""What the driver hears from a run, and who it tells.

Workers report to Ray Train's controller; the controller's callbacks (`callbacks.py`) forward
each epoch's report and each worker failure through a `ProgressChannel` to the driver, which
hands them to a `ProgressSink`: the console locally (`console.py`), the TrainingJob's status in
a pod (`kubetrain.pods.status_sink`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from kubetrain.api.report import EpochReport


@dataclass(frozen=True)
class EpochUpdate:
    """One epoch's report as the driver received it."""

    report: EpochReport
    checkpoint: str | None  # where Ray Train stored this epoch's checkpoint, if one was written
    at: float = field(default_factory=time.time)  # when the controller forwarded it


@dataclass(frozen=True)
class WorkerFailure:
    ranks: tuple[int, ...]  # empty when no rank failed (the run ended early without an error)
    error: str

    def describe(self) -> str:
        who = f"worker {', '.join(map(str, self.ranks))} failed: " if self.ranks else ""
        return f"{who}{self.error}; resuming from the last checkpoint"


class ProgressSink(Protocol):
    def on_epoch(self, update: EpochUpdate, eta_seconds: float | None) -> None: ...
    def on_worker_failure(self, failure: WorkerFailure) -> None: ...
