"""What a finished run leaves: its result, shown to the user and written beside its checkpoints."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
