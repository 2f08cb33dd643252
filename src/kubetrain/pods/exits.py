"""How a pod's program ends: an exit code the operator reads, and a message where it reads it."""

from __future__ import annotations

import contextlib
import signal
import sys
from pathlib import Path

from kubetrain.pods.contract import EXIT_FAILED, EXIT_INVALID

__all__ = ["EXIT_FAILED", "EXIT_INVALID", "EXIT_SIGTERM", "terminate"]

EXIT_SIGTERM = 128 + signal.SIGTERM  # stopped by Kubernetes (deletion, preemption): retryable
TERMINATION_LOG = Path("/dev/termination-log")


def terminate(code: int, message: str) -> int:
    """Exit `code`, leaving `message` where `kubectl describe pod` and the operator read it."""
    print(f"kubetrain: {message}", file=sys.stderr, flush=True)
    with contextlib.suppress(OSError):  # not in a pod
        TERMINATION_LOG.write_text(message[:4000])
    return code
