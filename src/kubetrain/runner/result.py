"""What a finished run leaves: its result, shown to the user and written beside its checkpoints."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubetrain.api.artifacts import REPORT_FILE, ModelReport
from kubetrain.trainer.storage import Storage


@dataclass
class RunResult:
    name: str
    status: str  # "succeeded" | "failed"
    metrics: dict[str, Any]
    checkpoint: str | None
    wall_seconds: float
    samples_per_second: float | None
    epochs_completed: int
    error: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # e.g. raw DeepSpeed config overrides
    model: dict[str, Any] | None = None  # the exported model's report (api.artifacts.ModelReport)

    @property
    def model_report(self) -> ModelReport | None:
        return None if self.model is None else ModelReport.model_validate(self.model)

    def to_json(self, *, with_history: bool = True) -> str:
        data = dict(self.__dict__)
        if not with_history:
            data.pop("history")
        return json.dumps(data, indent=2, default=str)


def write_result(storage: Storage, name: str, run: RunResult) -> None:
    if storage.filesystem is not None:
        with storage.filesystem.open_output_stream(f"{storage.path}/{name}/result.json") as out:
            out.write(run.to_json().encode())
        return
    path = Path(storage.path) / name / "result.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(run.to_json())


def read_model_report(storage: Storage, directory: str) -> ModelReport:
    """The report the rank-0 worker wrote beside the exported model."""
    text = storage.read_text(f"{directory}/{REPORT_FILE}")
    if text is None:
        raise FileNotFoundError(
            f"training succeeded but the exported model's {REPORT_FILE} is not in "
            f"{storage.uri(directory)}; see the rank-0 worker's log"
        )
    return ModelReport.model_validate_json(text)
