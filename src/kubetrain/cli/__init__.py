"""`kubetrain`: run a TrainingJob YAML locally, validate it, or print the CRD (`local.py`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kubetrain.api import InvalidTrainingJob
from kubetrain.cli import local
from kubetrain.cli._common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    handle_interrupts,
)
from kubetrain.cli._common import interrupted as _interrupted

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID",
    "main",
]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubetrain", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    local.add_parsers(sub)
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
