"""`python -m kubetrain.pods head|worker ...`: what the operator's pods run (see contract.py)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence

from kubetrain.pods import contract
from kubetrain.pods.exits import EXIT_SIGTERM, terminate
from kubetrain.pods.head import HeadPorts, run_head
from kubetrain.pods.node import run_worker, stop_child


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"python -m {contract.MODULE}",
        description="The program a TrainingJob's pods run (the operator writes its arguments).",
    )
    sub = p.add_subparsers(dest="role", required=True)
    head = sub.add_parser(contract.HEAD, help="run the Ray head and the training driver")
    head.add_argument("--job-file", required=True)
    head.add_argument("--gcs-port", type=int, default=6379)
    head.add_argument(
        "--dashboard-port", type=int, help="run Ray's dashboard on this port (default: none)"
    )
    head.add_argument("--metrics-port", type=int, default=8080)
    head.add_argument(
        "--storage-path", help="the checkpoint claim as mounted in this pod (overrides the spec)"
    )
    worker = sub.add_parser(contract.WORKER, help="join the head as a Ray Train worker node")
    worker.add_argument("--head-address", required=True, help="HOST:PORT of the head's GCS")
    worker.add_argument("--num-cpus", type=int, default=1)
    worker.add_argument("--num-gpus", type=int, default=0)
    worker.add_argument("--ranks", type=int, default=1, help="training ranks this node takes")
    worker.add_argument("--wait", type=float, default=600.0, help="seconds to wait for the head")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parser().parse_args(argv)

    def stop(signum: int, frame: object) -> None:
        stop_child()
        raise SystemExit(terminate(EXIT_SIGTERM, "stopped by SIGTERM"))

    signal.signal(signal.SIGTERM, stop)
    if args.role == contract.WORKER:
        return run_worker(
            args.head_address,
            num_cpus=args.num_cpus,
            num_gpus=args.num_gpus,
            ranks=args.ranks,
            wait=args.wait,
        )
    ports = HeadPorts(args.gcs_port, args.dashboard_port, args.metrics_port)
    return run_head(args.job_file, ports, storage_path=args.storage_path, env=os.environ)


if __name__ == "__main__":
    sys.exit(main())
