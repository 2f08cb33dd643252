"""The driver: runs a TrainingJob under Ray Train and reports its progress.

Run it with `run_job` (run.py); attach to Ray with `start_ray` (ray_cluster.py). Progress reaches
a `ProgressSink` (reports.py): the console (console.py), or the job's status in a pod.
"""

from kubetrain.runner.console import ConsoleSink
from kubetrain.runner.preflight import PreflightError
from kubetrain.runner.ray_cluster import LocalCluster, start_ray
from kubetrain.runner.reports import EpochUpdate, ProgressSink, WorkerFailure
from kubetrain.runner.result import RunResult
from kubetrain.runner.run import JobFailed, run_job

__all__ = [
    "ConsoleSink",
    "EpochUpdate",
    "JobFailed",
    "LocalCluster",
    "PreflightError",
    "ProgressSink",
    "RunResult",
    "WorkerFailure",
    "run_job",
    "start_ray",
]
