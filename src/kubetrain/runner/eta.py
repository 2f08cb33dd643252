"""How long a run has left, from the epochs it has reported."""

from __future__ import annotations

from kubetrain.runner.reports import EpochUpdate


class EtaEstimator:
    """Remaining epochs times the mean wall time per epoch, measured between reports.

    Worker start-up is not an epoch: the first report's estimate uses the workers' own
    epoch time, later ones the wall time between this run's reports.
    """

    def __init__(self) -> None:
        self.first: EpochUpdate | None = None

    def eta(self, update: EpochUpdate) -> float | None:
        report = update.report
        remaining = report.total_epochs - report.epoch
        if remaining <= 0 or report.finished:  # the last epoch, or an early stop
            return 0.0
        if self.first is None:
            self.first = update
            seconds = report.epoch_seconds
            return None if seconds is None else max(0.0, seconds * remaining)
        epochs = report.epoch - self.first.report.epoch
        if epochs <= 0:
            return None
        return max(0.0, (update.at - self.first.at) / epochs * remaining)
