"""Run a TrainingJob with Ray Train's TorchTrainer, on a local cluster or the job's Ray head.

The driver starts `fit()` in a thread and, in the main thread, forwards progress from the
controller to a sink. Ctrl-C in the main thread aborts the run (abort.py) before the caller shuts
Ray down.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
import ray.train
from ray.train.torch import TorchConfig

from kubetrain.api.job import TrainingJob
from kubetrain.api.quantities import cpu_cores
from kubetrain.runner import preflight
from kubetrain.runner.abort import ControllerAnnouncer, abort_run
from kubetrain.runner.lean_trainer import LeanTorchTrainer
from kubetrain.runner.progress import (
    EpochReport,
    EtaEstimator,
    PreemptionReporter,
    ProgressCallback,
    ProgressChannel,
    ProgressSink,
    WorkerFailure,
)
from kubetrain.runner.recurring import recurring_cause
from kubetrain.runner.storage import Storage, resolve
from kubetrain.trainer.evaluation import final_scores
from kubetrain.trainer.worker import train_loop_per_worker, worker_config

log = logging.getLogger(__name__)


class JobFailed(RuntimeError):
    """Training ended in failure; the message says why and where. `will_recur`: running the job
    again as written would fail the same way (the spec, the code or the data must change)."""

    def __init__(self, message: str, *, will_recur: bool = False) -> None:
        super().__init__(message)
        self.will_recur = will_recur


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


@dataclass(frozen=True)
class LocalCluster:
    """How the driver attaches to Ray: a fresh local cluster, or an existing address."""

    address: str | None = None
    num_cpus: int | None = None
    verbose: bool = False


# Ray Train's controller polls workers every 2 s by default, and `ray.train.report` waits for
# that poll: a 2 s stall per epoch. 0.25 s costs nothing measurable on the driver.
_CONTROLLER_POLL_S = "0.25"
# Ray Train's preemption watcher follows node drains (spot reclaim, autoscaler scale-down) on a
# real cluster. A local one has none, and the watcher's actor boots (~2 CPU-seconds) just as the
# workers start training: with 2 workers on 2 cores it took 13% of a core from their epochs.
_PREEMPTION_WATCHER = "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER"


def _stop_log_monitor() -> None:
    """Stops the local cluster's log monitor, which streams workers' output to a driver that
    asked for it (log_to_driver). Unasked, it still globs the logs directory and reads every
    log file ten times a second: 1.5-2% of a core taken from 2 workers training on 2 cores.
    The logs are still written, under the session's logs/ directory."""
    node = getattr(ray._private.worker, "_global_node", None)
    if node is not None:
        node.kill_log_monitor(check_alive=False)


def start_ray(cluster: LocalCluster, cpus_needed: float = 0.0) -> None:
    """Start (or attach to) Ray once per process, with kubetrain's settings."""
    if ray.is_initialized():
        return
    with _keeping_sigterm_handler():
        _init_ray(cluster, cpus_needed)


@contextlib.contextmanager
def _keeping_sigterm_handler() -> Iterator[None]:
    """Ray's core worker takes SIGTERM for its crash handler, which dumps a stack trace and
    aborts (exit 134): a `kill` or a closed terminal would lose the caller's own handler (the
    CLI stops the run as Ctrl-C does). Python's handler is put back after `ray.init`."""
    handler = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        if callable(handler) and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, handler)


def _init_ray(cluster: LocalCluster, cpus_needed: float) -> None:
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", _CONTROLLER_POLL_S)
    if cluster.address:
        ray.init(address=cluster.address, log_to_driver=cluster.verbose)
        return
    os.environ.setdefault(_PREEMPTION_WATCHER, "0")
    # Locally, logical CPUs are oversubscribed so a spec written for a big node still runs on
    # a laptop (Ray would otherwise wait forever for CPUs that do not exist).
    num_cpus = cluster.num_cpus or max(os.cpu_count() or 1, int(cpus_needed + 0.999))
    ray.init(
        # Our own cluster, even when `ray start` left one running on this machine (ray.init()
        # would attach to it and refuse num_cpus).
        address="local",
        num_cpus=num_cpus,
        include_dashboard=False,
        log_to_driver=cluster.verbose,
        logging_level=logging.INFO if cluster.verbose else logging.WARNING,
        configure_logging=True,
    )
    if not cluster.verbose:
        _stop_log_monitor()


def build_trainer(
    job: TrainingJob,
    storage: Storage,
    channel: ProgressChannel,
    *,
    metrics_port_per_rank: bool,
    worker_resources: Mapping[str, float] | None = None,
    local_cluster: bool,
) -> LeanTorchTrainer:
    spec = job.spec
    res = spec.distributed.resources_per_worker
    use_gpu = res.gpu > 0
    per_worker: dict[str, float] = {"CPU": cpu_cores(res.cpu), **(worker_resources or {})}
    if use_gpu:
        per_worker["GPU"] = float(res.gpu)
    config = worker_config(
        spec,
        job=job.name,
        namespace=job.namespace,
        metrics_port=spec.metrics.port if spec.metrics.enabled else None,
        metrics_port_per_rank=metrics_port_per_rank,
    )
    # One list, pickled at once: the controller's callbacks share one copy of the channel,
    # which numbers what they put. (Ray Train types them as Tune's callbacks: Any.)
    callbacks: list[Any] = [
        ProgressCallback(channel),
        PreemptionReporter(channel),
        ControllerAnnouncer(channel),
    ]
    return LeanTorchTrainer(
        train_loop_per_worker,
        local_cluster=local_cluster,
        train_loop_config=config,
        # gloo on CPU, NCCL on GPU.
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ray.train.ScalingConfig(
            num_workers=spec.distributed.workers, use_gpu=use_gpu, resources_per_worker=per_worker
        ),
        run_config=ray.train.RunConfig(
            name=job.name,
            storage_path=storage.path,
            storage_filesystem=storage.filesystem,
            failure_config=ray.train.FailureConfig(max_failures=spec.distributed.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=spec.checkpoint.keep),
            callbacks=callbacks,
        ),
    )


# Seconds between the driver's looks for new reports: a GCS read each, and the delay of a line.
_REPORT_POLL_S = 0.5


def _show(
    channel: ProgressChannel, sink: ProgressSink, eta: EtaEstimator, seen: list[EpochReport]
) -> None:
    """Shows what arrived on the channel."""
    for item in channel.take():
        if isinstance(item, EpochReport):
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
    CPUs and GPUs (the operator's pods offer one `kubetrain_worker` each: one worker per pod).
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
    seen: list[EpochReport] = []
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

    last = seen[-1].metrics if seen else dict(result.metrics or {})
    checkpoint = storage.uri(result.checkpoint.path) if result.checkpoint is not None else None
    run = RunResult(
        name=job.name,
        status="succeeded",
        metrics=final_scores(last),
        checkpoint=checkpoint,
        wall_seconds=round(wall, 3),
        samples_per_second=last.get("samples_per_second"),
        epochs_completed=int(last.get("epoch", 0)),
        history=[r.metrics for r in seen],
        warnings=warnings,
    )
    _write_result(storage, job.name, run)
    return run


def _fit(
    trainer: LeanTorchTrainer,
    channel: ProgressChannel,
    sink: ProgressSink,
    eta: EtaEstimator,
    seen: list[EpochReport],
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


def unfinished_at(seen: list[EpochReport]) -> int | None:
    """The epoch a run stopped at when its loop did not get to the end, else None.

    kubetrain's loop marks its last report `finished` (last epoch, or early stop); a user's own
    loop (training.entrypoint) reports no such flag and is taken at its word.
    """
    if not seen or "finished" not in seen[-1].metrics or seen[-1].metrics["finished"]:
        return None
    return seen[-1].epoch


def _explain(error: BaseException) -> str:
    text = str(error).strip()
    # Ray wraps the worker's exception; its last line is the one that names the cause.
    lines = [line for line in text.splitlines() if line.strip()]
    tail = lines[-1] if lines else repr(error)
    return f"training failed: {tail}"


def _write_result(storage: Storage, name: str, run: RunResult) -> None:
    if storage.filesystem is not None:
        with storage.filesystem.open_output_stream(f"{storage.path}/{name}/result.json") as out:
            out.write(run.to_json().encode())
        return
    path = Path(storage.path) / name / "result.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(run.to_json())
