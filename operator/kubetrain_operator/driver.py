"""The programs the operator's pods run (an entry point: it reads the environment).

    python -m kubetrain_operator.driver head --job-file /etc/kubetrain/trainingjob.json
    python -m kubetrain_operator.driver worker --head-address HOST:PORT --num-cpus N --num-gpus G

`head` starts the Ray head (no CPUs, so Ray Train's workers land on worker pods), waits for the
workers to join, marks the pod Ready (the operator then sets Running) and trains with
`kubetrain.runner.run_job`, patching the job's status after every epoch through the pod's
ServiceAccount, which may patch this job's status and nothing else. It exits 0 on success; on
failure it writes the reason to /dev/termination-log (the operator quotes it) and exits 1 when
retrying cannot help, 2 for a job that cannot run as written.

`worker` waits until the head's GCS port answers, then runs `ray start --block` (once more if it
fails before the node has come up: Ray gives a node only 30 s to register).

Needs no kopf and no Kubernetes client: the status patch is one HTTPS request.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubetrain.api import GROUP, PLURAL, VERSION, TrainingJob, parse_job
from kubetrain_operator.render import names

log = logging.getLogger("kubetrain.driver")

EXIT_FAILED = 1  # training failed after Ray Train's own retries: a restart would fail the same
EXIT_INVALID = names.HEAD_EXIT_INVALID  # the job cannot run as written, or fails as it would again
EXIT_SIGTERM = 128 + signal.SIGTERM  # stopped by Kubernetes (deletion, preemption): retryable

WORKER_RESOURCE = "kubetrain_worker"  # one per worker pod (see README: Ray resources)
TERMINATION_LOG = Path("/dev/termination-log")
# Ray gives a starting node 30 s (hard-coded) to register with the GCS. On a node busy starting
# other pods that is sometimes too short and `ray start` exits 1; starting again works.
RAY_START_ATTEMPTS = 3
RAY_STARTED = "Ray runtime started"
TRAINING_MARKER = Path(names.TRAINING_MARKER)
SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


# --------------------------------------------------------------------------- status patches


def progress_status(
    metrics: Mapping[str, Any], checkpoint: str | None, eta: float | None
) -> dict[str, Any]:
    """The driver's part of the status, from one epoch report (the operator owns the rest)."""
    epoch = int(metrics.get("epoch", 0))
    total = int(metrics.get("total_epochs", 0))
    name = str(metrics.get("metric_name", "accuracy"))
    val = {k: float(v) for k, v in metrics.items() if k.startswith("val_") and _is_number(v)}
    status: dict[str, Any] = {
        "epoch": epoch,
        "totalEpochs": total,
        "progress": f"{epoch}/{total}",
        "metrics": val,
    }
    if _is_number(metrics.get("step")):
        status["step"] = int(metrics["step"])
    if "val_loss" in val:
        status["loss"] = round(val["val_loss"], 6)
    metric = val.get(f"val_{name}")
    if metric is not None:
        status["metricSummary"] = f"{name}={metric:.4f}"
    if _is_number(metrics.get("samples_per_second")):
        status["samplesPerSecond"] = round(float(metrics["samples_per_second"]), 1)
    if eta is not None:
        status["etaSeconds"] = round(eta, 1)
    if checkpoint:
        status["checkpoint"] = checkpoint
    return status


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class StatusWriter:
    """Merge-patches the job's status subresource with the pod's ServiceAccount token."""

    url: str  # .../namespaces/NS/trainingjobs/NAME/status
    token_file: Path
    context: ssl.SSLContext
    timeout: float = 10.0  # seconds; a slow API server must not stall training

    @classmethod
    def in_cluster(cls, env: Mapping[str, str], *, namespace: str, name: str) -> StatusWriter:
        host, port = env["KUBERNETES_SERVICE_HOST"], env.get("KUBERNETES_SERVICE_PORT", "443")
        if ":" in host:
            host = f"[{host}]"
        url = (
            f"https://{host}:{port}/apis/{GROUP}/{VERSION}/namespaces/{namespace}"
            f"/{PLURAL}/{name}/status"
        )
        context = ssl.create_default_context(cafile=str(SA_DIR / "ca.crt"))
        return cls(url, SA_DIR / "token", context)

    def patch(self, status: Mapping[str, Any]) -> bool:
        """True if the patch landed. Failures are logged: progress is not worth a failed run."""
        request = urllib.request.Request(
            self.url,
            data=json.dumps({"status": status}).encode(),
            method="PATCH",
            headers={
                "Content-Type": "application/merge-patch+json",
                # Read on every call: projected tokens rotate.
                "Authorization": f"Bearer {self.token_file.read_text().strip()}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.context):
                return True
        except (urllib.error.URLError, OSError) as exc:
            log.warning("cannot patch the job status: %s", exc)
            return False


class StatusSink:
    """A `kubetrain.runner.ProgressSink` that writes progress into the TrainingJob's status."""

    def __init__(self, patch: Callable[[Mapping[str, Any]], object]) -> None:
        self.patch = patch

    def on_epoch(self, report: Any, eta_seconds: float | None) -> None:
        status = progress_status(report.metrics, report.checkpoint, eta_seconds)
        log.info("epoch %s: %s", status["progress"], status.get("metricSummary", ""))
        self.patch(status)

    def on_worker_failure(self, failure: Any) -> None:
        log.warning("%s", failure.describe())


# --------------------------------------------------------------------------- head


def _terminate(code: int, message: str) -> int:
    """Exit `code`, leaving `message` where `kubectl describe pod` and the operator read it."""
    print(f"kubetrain driver: {message}", file=sys.stderr, flush=True)
    with contextlib.suppress(OSError):  # not in a pod
        TERMINATION_LOG.write_text(message[:4000])
    return code


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


def run_head(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    job = with_storage_path(_load(args.job_file), args.storage_path)
    if args.unshared_storage:  # said before the slow imports below
        return _terminate(EXIT_INVALID, unshared_storage_message(job))

    start = [
        "ray", "start", "--head", f"--port={args.gcs_port}",
        # No CPUs or GPUs on the head: every Ray Train worker lands on a worker pod.
        "--num-cpus=0", "--num-gpus=0",
        "--dashboard-host=0.0.0.0", f"--dashboard-port={args.dashboard_port}",
        f"--metrics-export-port={args.metrics_port}", "--disable-usage-stats",
    ]  # fmt: skip
    # Each phase of the start-up is logged with its time: bench/startup.py --cluster reads them.
    log.info("starting the Ray head")
    code = start_ray_node(lambda: _ray_process(start), _ray_stop)
    if code != 0:
        return _terminate(EXIT_FAILED, f"ray start --head failed with exit code {code}; see above")
    # Loaded once the head is up, not before: the worker pods join it meanwhile.
    log.info("Ray head started; loading the trainer (torch, Ray)")
    from kubetrain.runner import JobFailed, LocalCluster, PreflightError, run_job, start_ray

    # The workers' and Ray Train's own logs go to this pod's log: `kubectl logs <job>-head`
    # is where a user looks when training goes wrong.
    cluster = LocalCluster(address="auto", verbose=True)
    start_ray(cluster)

    import ray

    workers = job.spec.distributed.workers
    log.info("connected to Ray; waiting for %d worker pod(s) to join", workers)
    timeout = float(job.spec.run_policy.startup_deadline_seconds)
    joined = wait_for_workers(
        workers,
        timeout=timeout,
        available=lambda: float(ray.cluster_resources().get(WORKER_RESOURCE, 0.0)),  # type: ignore[no-untyped-call]
    )
    if joined < workers:
        return _terminate(
            EXIT_FAILED, f"only {joined:.0f} of {workers} worker pods joined Ray in {timeout:.0f} s"
        )
    log.info("%d worker pod(s) joined; starting Ray Train", workers)
    TRAINING_MARKER.parent.mkdir(parents=True, exist_ok=True)
    TRAINING_MARKER.touch()  # the readiness probe turns the pod Ready: the job is Running

    writer = StatusWriter.in_cluster(env, namespace=job.namespace, name=job.name)
    try:
        result = run_job(
            job,
            StatusSink(writer.patch),
            cluster=cluster,
            metrics_port_per_rank=False,
            # One training worker per worker pod: the pod's resources and metrics port are its.
            worker_resources={WORKER_RESOURCE: 1.0},
        )
    except PreflightError as exc:
        return _terminate(EXIT_INVALID, f"invalid job: {exc}")
    except JobFailed as exc:
        # An error a retry would meet again was not retried: the spec, code or data must change.
        return _terminate(EXIT_INVALID if exc.will_recur else EXIT_FAILED, str(exc))
    if result.checkpoint:
        writer.patch({"checkpoint": result.checkpoint})
    log.info("training completed: %s", json.dumps(result.metrics))
    return 0


def with_storage_path(job: TrainingJob, path: str | None) -> TrainingJob:
    """The job with its checkpoints where the pod has them mounted (see render.objects)."""
    if path is None:
        return job
    checkpoint = job.spec.checkpoint.model_copy(update={"storage_path": path})
    spec = job.spec.model_copy(update={"checkpoint": checkpoint})
    return job.model_copy(update={"spec": spec})


def unshared_storage_message(job: TrainingJob) -> str:
    path = job.spec.checkpoint.storage_path
    return (
        f"invalid job: checkpoint.storagePath {path!r} is a local directory, and the pods of a"
        " job share none (Ray Train writes checkpoints in the worker pods and tracks them in the"
        " head pod): set checkpoint.claimName to a PersistentVolumeClaim every pod can mount"
        " (ReadWriteMany when they span nodes), or checkpoint.storagePath to s3://bucket/prefix"
    )


def _load(path: str) -> TrainingJob:
    data = json.loads(Path(path).read_text())
    return parse_job(data, source=path)


# --------------------------------------------------------------------------- Ray nodes


def start_ray_node(
    start: Callable[[], tuple[int, bool]],
    cleanup: Callable[[], object],
    *,
    attempts: int = RAY_START_ATTEMPTS,
) -> int:
    """Runs `start` until the node has come up once; returns the exit code of the last run.

    `start` returns (exit code, whether the node had started). A run that fails before the node
    started is retried after `cleanup`; one that fails after it is not: that node ran and died.
    """
    code = 1
    for attempt in range(1, attempts + 1):
        code, started = start()
        if code == 0 or started or attempt == attempts:
            break
        log.warning(
            "ray start failed before the node came up (exit code %d); starting again (%d of %d)",
            code, attempt + 1, attempts,
        )  # fmt: skip
        cleanup()
    return code


_child: subprocess.Popen[str] | None = None  # the Ray process running now, for SIGTERM


def _ray_process(command: list[str]) -> tuple[int, bool]:
    """Runs a `ray start` command, passing its output on; (exit code, whether it started)."""
    global _child
    started = False
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        _child = proc
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            started = started or RAY_STARTED in line
        code = proc.wait()
    _child = None
    return code, started


def _ray_stop() -> None:
    subprocess.run(["ray", "stop", "--force"], check=False, capture_output=True)


def _stop_child() -> None:
    """Passes SIGTERM on to Ray, so that it leaves the cluster cleanly."""
    child = _child
    if child is not None and child.poll() is None:
        child.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=10)


# --------------------------------------------------------------------------- worker


def wait_for_port(
    host: str,
    port: int,
    *,
    timeout: float,
    connect: Callable[[tuple[str, int]], object] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """True once a TCP connection to host:port succeeds (DNS may not know the head yet)."""
    connect = connect or (lambda addr: socket.create_connection(addr, timeout=2).close())
    deadline = clock() + timeout
    while True:
        try:
            connect((host, port))
            return True
        except OSError:
            if clock() >= deadline:
                return False
            sleep(1.0)


def worker_command(address: str, *, num_cpus: int, num_gpus: int) -> list[str]:
    return [
        "ray", "start", f"--address={address}", "--block",
        f"--num-cpus={num_cpus}", f"--num-gpus={num_gpus}",
        f"--resources={json.dumps({WORKER_RESOURCE: 1})}", "--disable-usage-stats",
    ]  # fmt: skip


def run_worker(args: argparse.Namespace) -> int:
    host, _, port = args.head_address.rpartition(":")
    if not wait_for_port(host, int(port), timeout=args.wait):
        return _terminate(EXIT_FAILED, f"the Ray head {args.head_address} did not answer in "
                          f"{args.wait:.0f} s")  # fmt: skip
    command = worker_command(args.head_address, num_cpus=args.num_cpus, num_gpus=args.num_gpus)
    # `ray start --block` returns when the node stops: the pod's exit code is Ray's.
    return start_ray_node(lambda: _ray_process(command), _ray_stop)


# --------------------------------------------------------------------------- entry point


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m kubetrain_operator.driver", description=__doc__)
    sub = p.add_subparsers(dest="role", required=True)
    head = sub.add_parser("head", help="run the Ray head and the training driver")
    head.add_argument("--job-file", required=True)
    head.add_argument("--gcs-port", type=int, default=6379)
    head.add_argument("--dashboard-port", type=int, default=8265)
    head.add_argument("--metrics-port", type=int, default=8080)
    head.add_argument(
        "--storage-path", help="the local checkpoint dir as mounted in this pod (overrides spec)"
    )
    head.add_argument(
        "--unshared-storage", action="store_true",
        help="the spec's local checkpoint dir is shared with no other pod: refuse to run",
    )  # fmt: skip
    worker = sub.add_parser("worker", help="join the head as a Ray Train worker node")
    worker.add_argument("--head-address", required=True, help="HOST:PORT of the head's GCS")
    worker.add_argument("--num-cpus", type=int, default=1)
    worker.add_argument("--num-gpus", type=int, default=0)
    worker.add_argument("--wait", type=float, default=600.0, help="seconds to wait for the head")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = _parser().parse_args(argv)

    def stop(signum: int, frame: object) -> None:
        _stop_child()
        raise SystemExit(_terminate(EXIT_SIGTERM, "stopped by SIGTERM"))

    signal.signal(signal.SIGTERM, stop)
    if args.role == "worker":
        return run_worker(args)
    return run_head(args, os.environ)


if __name__ == "__main__":
    sys.exit(main())
