"""Epoch reports as the driver receives them, for the runner's tests."""

from __future__ import annotations

from kubetrain.api.report import EpochReport
from kubetrain.runner.reports import EpochUpdate


def report(epoch: int, at: float, **extra: object) -> EpochUpdate:
    """Epoch `epoch` of 10, received at `at`; `extra` overrides or adds report fields."""
    metrics = {
        "epoch": epoch,
        "total_epochs": 10,
        "val_loss": 0.5,
        "val_accuracy": 0.9,
        "samples_per_second": 1234.4,
        "epoch_seconds": 2.0,
        "metric_name": "accuracy",
    }
    return EpochUpdate(EpochReport.from_metrics(metrics | extra), None, at=at)
