"""`kubetrain run / validate / crd / reference`: a TrainingJob on this machine, no cluster."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from kubetrain.api import check_job, load_job, render_crd_yaml
from kubetrain.api.overrides import Overrides
from kubetrain.api.reference import render_reference
from kubetrain.api.spec import DistributedSpec
from kubetrain.cli._common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID, interrupted


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", help="train a TrainingJob YAML on a local Ray cluster")
    run.add_argument("file", type=Path, help="TrainingJob YAML (the same you would kubectl apply)")
    run.add_argument("--workers", type=int, help="override spec.distributed.workers")
    run.add_argument(
        "--ranks-per-pod", type=int, help="override spec.distributed.ranksPerPod (ranks per worker)"
    )
    run.add_argument("--backend", help="override spec.distributed.backend (ddp, deepspeed)")
    run.add_argument("--epochs", type=int, help="override spec.training.epochs")
    run.add_argument("--storage", help="override spec.checkpoint.storagePath")
    run.add_argument("--metrics-port", type=int, help="override spec.metrics.port")
    run.add_argument("--no-metrics", action="store_true", help="serve no Prometheus metrics")
    run.add_argument("--address", help="attach to an existing Ray cluster instead of a new one")
    run.add_argument("--output", type=Path, help="also write the result JSON here")
    run.add_argument("-v", "--verbose", action="store_true", help="show Ray's and workers' logs")
    run.set_defaults(handler=_run)

    val = sub.add_parser("validate", help="check a TrainingJob YAML without running it")
    val.add_argument("file", type=Path)
    val.add_argument(
        "--cluster",
        action="store_true",
        help="also check what only matters on a cluster (checkpoints every pod can reach)",
    )
    val.set_defaults(handler=_validate)

    crd = sub.add_parser("crd", help="print the TrainingJob CRD generated from the spec models")
    crd.add_argument("-o", "--output", type=Path, help="write to a file instead of stdout")
    crd.set_defaults(handler=_print(render_crd_yaml))

    ref = sub.add_parser("reference", help="print the spec field reference (Markdown)")
    ref.add_argument("-o", "--output", type=Path, help="write to a file instead of stdout")
    ref.set_defaults(handler=_print(render_reference))


def _run(args: argparse.Namespace) -> int:
    job = load_job(args.file)
    job = Overrides(
        workers=args.workers,
        ranks_per_pod=args.ranks_per_pod,
        backend=args.backend,
        storage_path=args.storage,
        metrics_port=args.metrics_port,
        metrics_enabled=False if args.no_metrics else None,
        epochs=args.epochs,
    ).apply(job)
    # Refused here, before torch and Ray are imported: a mistake costs a fraction of a second.
    check_job(job, source=str(args.file))
    # Imported here: `validate` and `crd` must not pay for importing torch and Ray.
    from kubetrain.runner import ConsoleSink, JobFailed, LocalCluster, PreflightError, run_job
    from kubetrain.runner.console import format_model_report

    spec = job.spec
    print(
        f"kubetrain: {job.name}: {spec.model.name.value} on {spec.dataset.source.value}, "
        f"{_workers(spec.distributed)}, {spec.distributed.backend.value}, "
        f"{spec.training.epochs} epochs; checkpoints in {spec.checkpoint.storage_path}",
        flush=True,
    )
    if spec.metrics.enabled:
        last = spec.metrics.port + spec.distributed.world_size - 1
        print(f"kubetrain: metrics on http://127.0.0.1:{spec.metrics.port}-{last}/metrics")
    try:
        result = run_job(
            job, ConsoleSink(), cluster=LocalCluster(address=args.address, verbose=args.verbose)
        )
    except PreflightError as exc:
        print(f"kubetrain: invalid job: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except JobFailed as exc:
        if interrupted.is_set():
            raise KeyboardInterrupt from exc
        if exc.will_recur:
            print(f"kubetrain: {job.name}: invalid job, not retried: {exc}", file=sys.stderr)
            return EXIT_INVALID
        print(f"kubetrain: {job.name}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    report = result.model_report
    if report is not None:
        print("\n".join(format_model_report(report)))
    print(result.to_json(with_history=False))
    if args.output:
        args.output.write_text(result.to_json())
    return 0


def _validate(args: argparse.Namespace) -> int:
    job = check_job(load_job(args.file), source=str(args.file), on_cluster=args.cluster)
    print(f"{args.file}: TrainingJob {job.name!r} is valid")
    return 0


def _print(render: Callable[[], str]) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        text = render()
        if args.output:
            args.output.write_text(text)
        else:
            sys.stdout.write(text)
        return 0

    return handler


def stop_interrupted() -> int:
    """After Ctrl-C in `kubetrain run`: stop the local Ray cluster, say so, exit 130."""
    print("\nkubetrain: interrupted; stopping the workers", file=sys.stderr)
    _shutdown_ray()
    return EXIT_INTERRUPTED


def _shutdown_ray() -> None:
    # A second Ctrl-C during shutdown should not print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import ray

        if ray.is_initialized():
            ray.shutdown()
    except Exception:  # shutting down anyway
        pass


def _workers(dist: DistributedSpec) -> str:
    """'2 worker(s)', or '2 worker(s) x 2 ranks' when pods run several ranks."""
    pods = f"{dist.workers} worker(s)"
    return pods if dist.ranks_in_pod == 1 else f"{pods} x {dist.ranks_in_pod} ranks"
