"""Run a TrainingJob with Ray Train's TorchTrainer, on a local cluster or the job's Ray head.

The driver starts `fit()` in a thread and, in the main thread, forwards progress from the
controller to a sink. Ctrl-C in the main thread aborts the run (abort.py) before the caller shuts
Ray down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import ray

from kubetrain.api.artifacts import plan as artifact_plan
from kubetrain.api.job import TrainingJob
from kubetrain.api.quantities import cpu_cores
from kubetrain.api.report import EpochReport
from kubetrain.runner import preflight
from kubetrain.runner._ray.lean_trainer import LeanTorchTrainer
from kubetrain.runner.abort import abort_run
from kubetrain.runner.channel import ProgressChannel
from kubetrain.runner.eta import EtaEstimator
from kubetrain.runner.ray_cluster import LocalCluster, start_ray
from kubetrain.runner.recurring import recurring_cause
from kubetrain.runner.reports import EpochUpdate, ProgressSink, WorkerFailure
from kubetrain.runner.result import RunResult, read_model_report, write_result
from kubetrain.runner.torch_trainer import build_trainer
from kubetrain.trainer.artifacts.worker import export_directory
from kubetrain.trainer.storage import resolve

log = logging.getLogger(__name__)


class JobFailed(RuntimeError):
    """Training ended in failure; the message says why and where. `will_recur`: running the job
    again as written would fail the same way (the spec, the code or the data must change)."""

    def __init__(self, message: str, *, will_recur: bool = False) -> None:
        super().__init__(message)
        self.will_recur = will_recur


# Seconds between the driver's looks for new reports: a GCS read each, and the delay of a line.
_REPORT_POLL_S = 0.5


def _show(
    channel: ProgressChannel, sink: ProgressSink, eta: EtaEstimator, seen: list[EpochUpdate]
) -> None:
    """Shows what arrived on the channel."""
    for item in channel.take():
        if isinstance(item, EpochUpdate):
            seen.append(item)
            sink.on_epoch(item, eta.eta(item))
        elif isinstance(item, WorkerFailure):
            sink.on_worker_failure(item)


def run_job(
    job: TrainingJob,
    sink: ProgressSink,
    *,
    cluster: LocalCluster | None = None,
    metrics_port_per_rank: bool = True,
    worker_resources: Mapping[str, float] | None = None,
) -> RunResult:
    """Train `job` to the end. Raises JobFailed (with the cause) if training fails.

    `worker_resources` are custom Ray resources each training worker asks for on top of its
    CPUs and GPUs (a worker pod offers one `kubetrain_worker` per rank it runs).
    `metrics_port_per_rank`: each rank serves metrics on the port + its world rank (one
    machine); else + its local rank (the ranks of one pod).
    """
    spec = preflight.resolve_deepspeed_config(job.spec)
    job = job.model_copy(update={"spec": spec})
    warnings = [str(conflict) for conflict in preflight.check(spec)]
    for line in warnings:
        log.warning("kubetrain: %s", line)
    cluster = cluster or LocalCluster()
    workers_cpu = spec.distributed.workers * cpu_cores(spec.distributed.resources_per_worker.cpu)
    start_ray(cluster, workers_cpu)
    if cluster.address is None:
        gpus_here = float(ray.cluster_resources().get("GPU", 0.0))  # type: ignore[no-untyped-call]
        preflight.check_local_gpus(spec, gpus_here)
    storage = resolve(spec.checkpoint)

    def fit_once() -> Any:
        channel = ProgressChannel()  # one per fit: the controller's copy numbers from 0
        trainer = build_trainer(
            job,
            storage,
            channel,
            metrics_port_per_rank=metrics_port_per_rank,
            worker_resources=worker_resources,
            local_cluster=cluster.address is None,
        )
        return _fit(trainer, channel, sink, eta, seen)

    started = time.time()
    eta = EtaEstimator()
    seen: list[EpochUpdate] = []
    result = fit_once()
    # Ray Train may end a run cleanly before its last epoch: when a node is preempted (a worker
    # pod deleted or evicted, its Ray node draining), it can take the ranks' exits for the end
    # of training. The reports say whether the loop got to its end; if not, fit again: it
    # resumes from the latest checkpoint. Bounded like worker failures.
    refits = 0
    while (stopped_at := unfinished_at(seen)) is not None:
        if refits == spec.distributed.max_failures:
            raise JobFailed(
                f"training stopped before its last epoch {refits + 1} times, last at epoch "
                f"{stopped_at} of {spec.training.epochs}, without an error (nodes lost or "
                "preempted); spec.distributed.maxFailures bounds the retries; run it again to "
                "resume from the latest checkpoint"
            )
        refits += 1
        sink.on_worker_failure(
            WorkerFailure(
                (), f"Ray Train ended the run at epoch {stopped_at} of {spec.training.epochs} "
                "(a node was lost or preempted)",
            )
        )  # fmt: skip
        result = fit_once()
    wall = time.time() - started

    last = seen[-1].report if seen else EpochReport.from_metrics(result.metrics or {})
    checkpoint = storage.uri(result.checkpoint.path) if result.checkpoint is not None else None
    exported = None
    if artifact_plan(spec) is not None:
        report = read_model_report(storage, export_directory(storage.path, job.name))
        exported = report.model_dump(mode="json")
    run = RunResult(
        name=job.name,
        status="succeeded",
        metrics=last.scores(),
        checkpoint=checkpoint,
        wall_seconds=round(wall, 3),
        samples_per_second=last.samples_per_second,
        epochs_completed=last.epoch,
        history=[update.report.to_metrics() for update in seen],
        warnings=warnings,
        model=exported,
    )
    write_result(storage, job.name, run)
    return run


def _fit(
    trainer: LeanTorchTrainer,
    channel: ProgressChannel,
    sink: ProgressSink,
    eta: EtaEstimator,
    seen: list[EpochUpdate],
) -> Any:
    """`trainer.fit()` in a thread while this one shows its progress; its Result, or JobFailed."""
    outcome: dict[str, Any] = {}

    def fit() -> None:
        try:
            outcome["result"] = trainer.fit()
        except Exception as exc:  # reported to the user by the main thread
            outcome["error"] = exc

    thread = threading.Thread(target=fit, name="kubetrain-fit", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            _show(channel, sink, eta, seen)
            thread.join(_REPORT_POLL_S)
    except BaseException:
        # Ctrl-C, or a SIGTERM handler's KeyboardInterrupt or SystemExit: stop the workers while
        # Ray is up (see abort.py), then let the caller end.
        if not abort_run(channel, thread):
            log.warning("kubetrain: the training run did not stop in time; shutting Ray down")
        raise
    _show(channel, sink, eta, seen)  # the callbacks have run: the last reports are in
    if "error" in outcome:
        recurring = recurring_cause(outcome["error"])
        if recurring is not None:
            raise JobFailed(str(recurring), will_recur=True)
        raise JobFailed(_explain(outcome["error"]))
    return outcome["result"]


def unfinished_at(seen: list[EpochUpdate]) -> int | None:
    """The epoch a run stopped at when its loop did not get to the end, else None.

    kubetrain's loop marks its last report `finished` (last epoch, or early stop); a user's own
    loop (training.entrypoint) reports no such flag and is taken at its word.
    """
    last = seen[-1].report if seen else None
    if last is None or last.finished is None or last.finished:
        return None
    return last.epoch


def _explain(error: BaseException) -> str:
    text = str(error).strip()
    # Ray wraps the worker's exception; its last line is the one that names the cause.
    lines = [line for line in text.splitlines() if line.strip()]
    tail = lines[-1] if lines else repr(error)
    return f"training failed: {tail}"
