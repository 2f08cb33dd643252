"""`kubetrain`: run a TrainingJob locally, or submit and follow it on a cluster.

On this machine (`local.py`): run, validate, crd, reference. On the cluster of your kubeconfig
(`cluster.py`): submit, list, status, logs, wait, delete, metrics.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kubetrain.api import InvalidTrainingJob
from kubetrain.cli import cluster, local
from kubetrain.cli._common import (
    EXIT_CLUSTER,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_TIMEOUT,
    handle_interrupts,
)
from kubetrain.cli._common import interrupted as _interrupted

__all__ = [
    "EXIT_CLUSTER",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID",
    "EXIT_TIMEOUT",
    "main",
]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kubetrain",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=cluster.EXIT_CODES,
    )
    sub = p.add_subparsers(dest="command", required=True)
    local.add_parsers(sub)
    cluster.add_parsers(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handle_interrupts()
    try:
        code: int = args.handler(args)
        return code
    except InvalidTrainingJob as exc:
        print(f"kubetrain: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        return local.stop_interrupted()
    except Exception:
        if _interrupted.is_set():
            return local.stop_interrupted()
        raise
