"""What the cluster verbs do, through `kubetrain.client.Client`; each returns the exit code.

Output that is the verb's answer goes to stdout (a table, a log, the progress); what went wrong,
and notes about the output (a pod replaced while following its log), go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from kubetrain.api import TrainingJob, check_job, load_job
from kubetrain.api.names import head_pod_name, worker_pod_name
from kubetrain.cli._common import (
    EXIT_CLUSTER,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_TIMEOUT,
)
from kubetrain.cli.display import ProgressDisplay, render_metrics, render_status
from kubetrain.client import (
    Client,
    ClusterError,
    Failure,
    JobFailed,
    Rejected,
    WaitFor,
    WaitTimeout,
)
from kubetrain.client.views import (
    LIST_COLUMNS,
    format_table,
    list_row,
    metrics_of,
    now_utc,
    phase_of,
)

Verb = Callable[[argparse.Namespace, Callable[[], Client]], int]


def _say(message: str) -> None:
    print(f"kubetrain: {message}", file=sys.stderr, flush=True)


def run(name: str, args: argparse.Namespace) -> int:
    """Runs verb `name`; a cluster's refusal or failure becomes its line and exit code."""
    client: Client | None = None

    def connect() -> Client:
        nonlocal client
        if client is None:
            client = Client(args.kubeconfig, args.context, args.namespace)
        return client

    try:
        return VERBS[name](args, connect)
    except JobFailed as exc:
        _say(str(exc))
        if exc.failure is not None and (hint := _logs_hint(exc.job, exc.failure)):
            _say(hint)
        return EXIT_FAILED
    except WaitTimeout as exc:
        _say(str(exc))
        return EXIT_TIMEOUT
    except Rejected as exc:
        _say(f"{exc}; nothing was created")
        return EXIT_INVALID
    except ClusterError as exc:
        _say(str(exc))
        return EXIT_CLUSTER
    except KeyboardInterrupt:
        print(file=sys.stderr)
        if name in ("submit", "wait"):
            _say("stopped watching; the job goes on (kubetrain delete stops it)")
        return EXIT_INTERRUPTED
    finally:
        if client is not None:
            client.close()


def _logs_hint(job: TrainingJob, failure: Failure) -> str | None:
    """The command that shows the log of the pod at fault, when the failure names one."""
    if failure.pod is None:
        return None
    if failure.pod == head_pod_name(job.name):
        return f"its log: kubetrain logs {job.name}"
    for rank in range(job.spec.distributed.workers):
        if failure.pod == worker_pod_name(job.name, rank):
            return f"its log: kubetrain logs {job.name} --rank {rank}"
    return None


def _follow_to_end(client: Client, name: str, wait_for: WaitFor, timeout: float | None) -> int:
    display = ProgressDisplay.for_stream(sys.stdout)
    try:
        job = client.wait(name, for_=wait_for, timeout=timeout, on_update=display.update)
    finally:
        display.close()
    print(f'trainingjob "{name}" {phase_of(job).value}')
    return 0


def _submit(args: argparse.Namespace, connect: Callable[[], Client]) -> int:
    source = str(args.file)
    # Checked before the cluster is asked anything: a mistake is exit 2 with or without one.
    job = check_job(load_job(args.file), source=source, on_cluster=True)
    client = connect()
    created = client.submit(job, source=source)
    print(f'trainingjob "{created.name}" created in namespace "{created.namespace}"', flush=True)
    others = other_objects(args.file)
    if others:
        _say(
            f"{source} also holds {', '.join(others)}, which submit does not create"
            f" (kubectl apply -f {source} creates every object in it)"
        )
    if not args.watch:
        return 0
    return _follow_to_end(client, created.name, WaitFor.SUCCEEDED, None)


def other_objects(path: Path) -> list[str]:
    """`Kind "name"` of each object in the file that is not its TrainingJob (an example may bring
    the claim its checkpoints go on)."""
    try:
        docs = list(yaml.safe_load_all(path.read_text()))
    except (OSError, yaml.YAMLError):
        return []
    return [
        f'{doc.get("kind")} "{(doc.get("metadata") or {}).get("name", "?")}"'
        for doc in docs
        if isinstance(doc, dict) and doc.get("kind", "TrainingJob") != "TrainingJob"
    ]


def _wait(args: argparse.Namespace, connect: Callable[[], Client]) -> int:
    return _follow_to_end(connect(), args.name, WaitFor(args.wait_for), args.timeout)


def _list(args: argparse.Namespace, connect: Callable[[], Client]) -> int:
    client = connect()
    jobs = client.list(all_namespaces=args.all_namespaces)
    if not jobs:
        where = "any namespace" if args.all_namespaces else f'namespace "{client.namespace}"'
        _say(f"no TrainingJobs in {where}")
        return 0
    now = now_utc()
    header = (["NAMESPACE"] if args.all_namespaces else []) + list(LIST_COLUMNS)
    rows = [list_row(j, now, with_namespace=args.all_namespaces) for j in jobs]
    print(format_table(header, rows))
    return 0


def _status(args: argparse.Namespace, connect: Callable[[], Client]) -> int:
    print(render_status(connect().status(args.name, log_lines=args.log_lines), now_utc()))
    return 0


def _logs(args: argparse.Namespace, connect: Callable[[], Client]) -> int:
    lines = connect().logs(
        args.name, rank=args.rank, follow=args.follow, tail=args.tail, on_note=_say
    )
    for line in lines:
        print(line, flush=args.follow)
    return 0


def _delete(args: argparse.Namespace, connect: Callable[[], Client]) -> int:
    client = connect()
    client.delete(args.name)
    print(f'trainingjob "{args.name}" deleted from namespace "{client.namespace}"')
    return 0


def _metrics(args: argparse.Namespace, connect: Callable[[], Client]) -> int:
    client = connect()
    job = client.get(args.name)
    values = metrics_of(job)
    if args.output == "json":
        print(json.dumps(values, indent=2, sort_keys=True))
        return 0
    if not values:
        _say(f"{job.name} has reported no epoch yet (it is {phase_of(job).value})")
        return 0
    print(render_metrics(values))
    if job.spec.metrics.enabled:
        port = job.spec.metrics.port
        _say(
            f"each worker serves Prometheus metrics on port {port}: kubectl port-forward -n"
            f" {job.namespace} pod/{worker_pod_name(job.name, 0)} {port}, then"
            f" http://127.0.0.1:{port}/metrics"
        )
    return 0


VERBS: dict[str, Verb] = {
    "submit": _submit,
    "list": _list,
    "status": _status,
    "logs": _logs,
    "wait": _wait,
    "delete": _delete,
    "metrics": _metrics,
}
