"""What every `kubetrain` verb shares: its exit codes and the interrupt flag."""

from __future__ import annotations

import signal
import threading

EXIT_FAILED = 1  # the training (or the awaited job) failed
EXIT_INVALID = 2  # bad input: the spec, the arguments; nothing was run or created
EXIT_CLUSTER = 3  # the cluster said no: unreachable, no CRD, forbidden, not found, exists
EXIT_TIMEOUT = 124  # `wait --timeout` ran out (as timeout(1) exits)
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM

# Set by Ctrl-C or SIGTERM. Ray may turn the KeyboardInterrupt into an error of its own (or the
# training thread may fail as the workers stop): once this is set, any such end is an interrupt.
interrupted = threading.Event()


def handle_interrupts() -> None:
    # `kill`, a closed terminal or a pod's termination stop the run like Ctrl-C does.
    def handler(signum: int, frame: object) -> None:
        interrupted.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
