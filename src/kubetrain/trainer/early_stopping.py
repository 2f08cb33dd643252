"""Early stopping on a validation metric: monitor, patience, min_delta."""

from __future__ import annotations

from dataclasses import dataclass

from kubetrain.api.spec import EarlyStoppingSpec, MonitorMode


@dataclass
class EarlyStopping:
    spec: EarlyStoppingSpec
    best: float | None = None
    bad_epochs: int = 0

    @property
    def minimize(self) -> bool:
        if self.spec.mode is MonitorMode.AUTO:
            return self.spec.monitor.endswith("loss")
        return self.spec.mode is MonitorMode.MIN

    def update(self, value: float) -> bool:
        """Record this epoch's value; True when training should stop."""
        delta = self.spec.min_delta
        improved = self.best is None or (
            value < self.best - delta if self.minimize else value > self.best + delta
        )
        if improved:
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.spec.patience

    def state(self) -> dict[str, float | int | None]:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load(self, state: dict[str, float | int | None]) -> None:
        best = state.get("best")
        self.best = None if best is None else float(best)
        self.bad_epochs = int(state.get("bad_epochs") or 0)
