"""A line from a training worker for whoever watches the job."""

from __future__ import annotations

import logging
import sys

log = logging.getLogger(__name__)


def say(message: str) -> None:
    """To the log when logging is set up (the pod program), else to stderr (Ray workers leave
    the root logger unconfigured, and forward stderr to the driver)."""
    if log.isEnabledFor(logging.INFO) and log.hasHandlers():
        log.info(message)
    else:
        print(f"kubetrain: {message}", file=sys.stderr, flush=True)
