"""Command-line settings that replace spec fields (`kubetrain run --workers 4 ...`)."""

from __future__ import annotations

from dataclasses import dataclass

from kubetrain.api.job import TrainingJob
from kubetrain.api.loading import parse_job


@dataclass(frozen=True)
class Overrides:
    """Command-line settings that replace spec fields (validated like the YAML itself)."""

    workers: int | None = None
    ranks_per_pod: int | None = None
    backend: str | None = None
    storage_path: str | None = None
    metrics_port: int | None = None
    metrics_enabled: bool | None = None
    epochs: int | None = None

    def apply(self, job: TrainingJob) -> TrainingJob:
        data = job.model_dump(mode="json", by_alias=True, exclude_none=True)
        spec = data["spec"]
        pairs = (
            (("distributed", "workers"), self.workers),
            (("distributed", "ranksPerPod"), self.ranks_per_pod),
            (("distributed", "backend"), self.backend),
            (("checkpoint", "storagePath"), self.storage_path),
            (("metrics", "port"), self.metrics_port),
            (("metrics", "enabled"), self.metrics_enabled),
            (("training", "epochs"), self.epochs),
        )
        for (section, key), value in pairs:
            if value is not None:
                spec.setdefault(section, {})[key] = value
        return parse_job(data, source="the command line")
