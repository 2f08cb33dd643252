"""The epoch report: what a training worker reports after every epoch, typed.

It crosses three processes: kubetrain's loop (`trainer/loop.py`) writes it with
`ray.train.report`, Ray Train's controller forwards it (`runner/`), and the driver shows it (the
console locally, the TrainingJob's status in a pod). On the wire it is the flat dict Ray Train
carries (`to_metrics`): the fields below by name, and each validation metric as `val_<name>`.

A user's own loop (`training.entrypoint`) reports whatever it likes: `from_metrics` takes what
it recognises, keeps the rest, and never fails on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kubetrain.api.quantities import is_number

VAL_PREFIX = "val_"


class EpochReport(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    epoch: int = Field(0, description="The epoch just completed, from 1.")
    total_epochs: int = Field(0, description="spec.training.epochs.")
    step: int | None = Field(None, description="Optimizer steps so far.")
    world_size: int | None = None
    lr: float | None = None
    metric_name: str = Field("accuracy", description="spec.training.metric: the headline score.")
    # None: the loop does not say (a user's own loop). kubetrain's loop sets it on every report.
    finished: bool | None = Field(None, description="The last epoch, or an early stop.")
    stopped_early: bool = False
    # Started again after it had finished: nothing was trained, the scores are the checkpoint's.
    already_finished: bool = False
    train_loss: float | None = None
    samples_per_second: float | None = Field(None, description="All workers, per second.")
    epoch_seconds: float | None = Field(None, description="The slowest worker's epoch time.")
    val: dict[str, float] = Field(
        default_factory=dict, description="Validation metrics: loss, accuracy, f1, ..."
    )

    @classmethod
    def from_metrics(cls, metrics: Mapping[str, Any]) -> EpochReport:
        """The report in a `ray.train.report` dict. A field of the wrong type is dropped (a
        user's loop may use our names for its own values), never an error: progress must not
        fail a run."""
        data: dict[str, Any] = {}
        val: dict[str, float] = {}
        for key, value in metrics.items():
            if key.startswith(VAL_PREFIX) and is_number(value):
                val[key[len(VAL_PREFIX) :]] = float(value)
            else:
                data[key] = value
        data["val"] = val
        while True:
            try:
                return cls.model_validate(data)
            except ValidationError as exc:
                bad = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
                if not bad & data.keys() - {"val"}:
                    raise
                for key in bad:
                    data.pop(key, None)

    def to_metrics(self) -> dict[str, Any]:
        """The flat dict `ray.train.report` carries (and `from_metrics` reads back)."""
        out = {k: v for k, v in self.model_dump(exclude={"val"}).items() if v is not None}
        out.update({f"{VAL_PREFIX}{k}": v for k, v in self.val.items()})
        return out

    @property
    def metric(self) -> float | None:
        """The headline validation score (`metric_name`), if reported."""
        return self.val.get(self.metric_name)

    @property
    def val_loss(self) -> float | None:
        return self.val.get("loss")

    def scores(self) -> dict[str, float]:
        """What a run's result is summed up by: its validation metrics and training loss (not
        its throughput or timings), flat as in `to_metrics`."""
        out = {f"{VAL_PREFIX}{k}": v for k, v in self.val.items()}
        if self.train_loss is not None:
            out["train_loss"] = self.train_loss
        return out
