"""A run's progress on the terminal: one line per epoch, with an ETA."""

from __future__ import annotations

import sys
from typing import TextIO

from kubetrain.api.artifacts import ModelReport
from kubetrain.api.progress import progress_parts
from kubetrain.api.report import EpochReport
from kubetrain.api.spec import ExportSelect
from kubetrain.runner.reports import EpochUpdate, WorkerFailure


def format_progress(update: EpochUpdate, eta_seconds: float | None) -> str:
    report = update.report
    parts = progress_parts(
        epoch=report.epoch,
        total_epochs=report.total_epochs,
        loss=report.val_loss,
        metric_name=report.metric_name,
        metric=report.metric,
        samples_per_second=report.samples_per_second,
        eta_seconds=eta_seconds,
    )
    if report.stopped_early:
        parts.append("(early stop)")
    if update.checkpoint:
        parts.append("[checkpoint]")
    return "  ".join(parts)


def format_resumed(report: EpochReport) -> str | None:
    """The line that says a run picked up where an earlier one stopped (or that an earlier one
    had finished, leaving nothing to train), or None if it did not.

    Given the first report of a run: any epoch after the first means a checkpoint was loaded.
    """
    if report.already_finished:
        how = "stopped early at" if report.stopped_early else "finished"
        return (
            f"nothing to train: this job already {how} epoch {report.epoch}/"
            f"{report.total_epochs} (its checkpoint's scores follow); to train again from the "
            "start, rename it (metadata.name) or remove its checkpoints"
        )
    if report.epoch <= 1:
        return None
    done = report.epoch - 1
    return f"resumed from the checkpoint of epoch {done}: {done}/{report.total_epochs} were done"


def format_model_report(report: ModelReport) -> list[str]:
    """What `kubetrain run` prints of the exported model once training succeeded."""
    which = f"best {report.metric_name}" if report.select is ExportSelect.BEST else "last"
    return [
        f"kubetrain: exported the model of epoch {report.epoch} ({which}) as "
        f"{report.format.value} to {report.directory}",
        *(f"  {line}" for line in report.table()),
    ]


class ConsoleSink:
    def __init__(self, stream: TextIO = sys.stdout) -> None:
        self.stream = stream
        self.first = True

    def on_epoch(self, update: EpochUpdate, eta_seconds: float | None) -> None:
        if self.first and (resumed := format_resumed(update.report)):
            print(resumed, file=self.stream)
        self.first = False
        print(format_progress(update, eta_seconds), file=self.stream, flush=True)

    def on_worker_failure(self, failure: WorkerFailure) -> None:
        print(failure.describe(), file=self.stream, flush=True)
