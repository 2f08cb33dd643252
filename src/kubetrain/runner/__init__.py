"""The driver: runs a TrainingJob under Ray Train and reports its progress."""

from kubetrain.runner.preflight import PreflightError
from kubetrain.runner.progress import ConsoleSink, EpochReport, ProgressSink, WorkerFailure
from kubetrain.runner.ray_job import (
    JobFailed,
    LocalCluster,
    RunResult,
    run_job,
    start_ray,
)

__all__ = [
    "ConsoleSink",
    "EpochReport",
    "JobFailed",
    "LocalCluster",
    "PreflightError",
    "ProgressSink",
    "RunResult",
    "WorkerFailure",
    "run_job",
    "start_ray",
]
