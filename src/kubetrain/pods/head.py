"""The head pod's life: start the Ray head, wait for the worker pods, train, report.

The head has no CPUs or GPUs for Ray, so every Ray Train worker lands on a worker pod. Once all
worker pods have joined, it creates the training marker (its readiness probe turns the pod
Ready, and the operator sets Running), trains with `kubetrain.runner.run_job`, and patches the
job's status after every epoch. It exits 0 on success; on failure it writes the reason to
/dev/termination-log (the operator quotes it) and exits EXIT_FAILED when retrying cannot help,
EXIT_INVALID for a job that cannot run as written.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from kubetrain.api import TrainingJob, parse_job
from kubetrain.api.artifacts import ModelReport
from kubetrain.api.status import ProgressStatus
from kubetrain.pods.contract import TRAINING_MARKER, WORKER_RESOURCE
from kubetrain.pods.exits import EXIT_FAILED, EXIT_INVALID, terminate
from kubetrain.pods.node import ray_process, ray_stop, start_ray_node

log = logging.getLogger("kubetrain.pods")


@dataclass(frozen=True)
class HeadPorts:
    gcs: int
    dashboard: int | None  # None: no dashboard
    metrics: int


def head_command(ports: HeadPorts) -> list[str]:
    # The pod's RAY_AUTH_MODE and RAY_AUTH_TOKEN (from the job's Secret) make every Ray entry
    # point, the dashboard included, ask for the job's token.
    dashboard = (
        ["--include-dashboard=false"]
        if ports.dashboard is None
        else ["--dashboard-host=0.0.0.0", f"--dashboard-port={ports.dashboard}"]
    )
    return [
        "ray", "start", "--head", f"--port={ports.gcs}",
        # No CPUs or GPUs on the head: every Ray Train worker lands on a worker pod.
        "--num-cpus=0", "--num-gpus=0", *dashboard,
        f"--metrics-export-port={ports.metrics}", "--disable-usage-stats",
    ]  # fmt: skip


def wait_for_workers(
    count: int,
    *,
    timeout: float,
    available: Callable[[], float],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> float:
    """Waits until `count` worker pods have joined Ray; returns how many joined."""
    deadline = clock() + timeout
    joined = available()
    while joined < count and clock() < deadline:
        sleep(0.5)
        joined = available()
    return joined


def run_head(
    job_file: str, ports: HeadPorts, *, storage_path: str | None, env: Mapping[str, str]
) -> int:
    job = with_storage_path(load_job_file(job_file), storage_path)
    # Each phase of the start-up is logged with its time: bench/startup.py --cluster reads them.
    log.info("starting the Ray head")
    code = start_ray_node(lambda: ray_process(head_command(ports)), ray_stop)
    if code != 0:
        return terminate(EXIT_FAILED, f"ray start --head failed with exit code {code}; see above")
    # Loaded once the head is up, not before: the worker pods join it meanwhile.
    log.info("Ray head started; loading the trainer (torch, Ray)")
    import ray

    from kubetrain.pods.status_sink import StatusSink, StatusWriter
    from kubetrain.runner import JobFailed, LocalCluster, PreflightError, run_job, start_ray

    # The workers' and Ray Train's own logs go to this pod's log: `kubectl logs <job>-head`
    # is where a user looks when training goes wrong.
    cluster = LocalCluster(address="auto", verbose=True)
    start_ray(cluster)

    dist = job.spec.distributed
    workers, ranks = dist.workers, dist.ranks_in_pod
    log.info("connected to Ray; waiting for %d worker pod(s) to join", workers)
    timeout = float(job.spec.run_policy.startup_deadline_seconds)
    joined = wait_for_workers(
        workers,
        timeout=timeout,
        # Each worker pod's node offers one WORKER_RESOURCE per rank.
        available=lambda: float(ray.cluster_resources().get(WORKER_RESOURCE, 0.0)) / ranks,  # type: ignore[no-untyped-call]
    )
    if joined < workers:
        return terminate(
            EXIT_FAILED, f"only {joined:.0f} of {workers} worker pods joined Ray in {timeout:.0f} s"
        )
    log.info("%d worker pod(s) joined, %d rank(s) each; starting Ray Train", workers, ranks)
    marker = Path(TRAINING_MARKER)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()  # the readiness probe turns the pod Ready: the job is Running

    writer = StatusWriter.in_cluster(env, namespace=job.namespace, name=job.name)
    try:
        result = run_job(
            job,
            StatusSink(writer.patch),
            cluster=cluster,
            # A pod's ranks serve metrics on its port + their local rank.
            metrics_port_per_rank=False,
            worker_resources={WORKER_RESOURCE: 1.0},
        )
    except PreflightError as exc:
        return terminate(EXIT_INVALID, f"invalid job: {exc}")
    except JobFailed as exc:
        # An error a retry would meet again was not retried: the spec, code or data must change.
        return terminate(EXIT_INVALID if exc.will_recur else EXIT_FAILED, str(exc))
    report = result.model_report
    if report is not None:
        log.info("exported model in %s:\n%s", report.directory, "\n".join(report.table()))
    final = final_status(result.checkpoint, report)
    if final is not None:
        writer.patch(final)
    log.info("training completed: %s", json.dumps(result.metrics))
    return 0


def final_status(checkpoint: str | None, report: ModelReport | None) -> ProgressStatus | None:
    """What the head writes once training succeeded: the last checkpoint and the exported
    model (where it is, its summary, and each variant's measures for the operator's gauges).
    Only the fields known are set (a merge patch's null would delete a field)."""
    final: dict[str, object] = {"checkpoint": checkpoint} if checkpoint else {}
    if report is not None:
        final |= {
            "exported_model": report.directory,
            "model_report": report.summary(),
            "model_variants": report.status_variants(),
        }
    return ProgressStatus.model_validate(final) if final else None


def with_storage_path(job: TrainingJob, path: str | None) -> TrainingJob:
    """The job with its checkpoints where the pod has them mounted (the checkpoint claim)."""
    if path is None:
        return job
    checkpoint = job.spec.checkpoint.model_copy(update={"storage_path": path})
    spec = job.spec.model_copy(update={"checkpoint": checkpoint})
    return job.model_copy(update={"spec": spec})


def load_job_file(path: str) -> TrainingJob:
    return parse_job(json.loads(Path(path).read_text()), source=path)
