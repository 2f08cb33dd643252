"""Stopping a run the user interrupted (Ctrl-C, SIGTERM) before Ray shuts down.

`trainer.fit()` runs in a thread of its own, blocked in a `ray.get` on Ray Train's controller.
If the driver shut Ray down under it, that thread would wake in a core worker that is gone, and
Ray ends the whole process with exit code 1 ("The core worker has already been shutdown"):
the user's 130 would be lost, depending on timing. So the driver first aborts the controller
(which stops the workers and exits), lets the fit thread see that and end, then shuts down.

Ray Train registers that abort itself only when `fit()` runs in the main thread; ours does not.
`ControllerAnnouncer` runs in the controller and leaves its actor handle where the driver finds
it: the GCS key-value store, beside the run's progress reports.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import ray

from kubetrain.runner._ray.controller import ControllerCallback
from kubetrain.runner.channel import ProgressChannel

log = logging.getLogger(__name__)

# How long an interrupted run may take to stop its workers before Ray is shut down anyway.
ABORT_TIMEOUT_S = 30.0

_CONTROLLER = "controller"  # the name the handle is published under, beside the reports


class ControllerAnnouncer(ControllerCallback):  # type: ignore[misc]
    """Runs in Ray Train's controller actor; publishes its handle for `abort_run`."""

    def __init__(self, channel: ProgressChannel) -> None:
        self.channel = channel

    def after_controller_start(self, train_run_context: Any) -> None:
        self.channel.publish(_CONTROLLER, ray.get_runtime_context().current_actor)


def abort_run(
    channel: ProgressChannel, fit_thread: threading.Thread, timeout: float = ABORT_TIMEOUT_S
) -> bool:
    """Aborts the run `channel` belongs to and waits for `fit_thread` to end: True if it did."""
    deadline = time.monotonic() + timeout
    # A controller still starting has not published its handle yet: it will within a second.
    while (controller := channel.published(_CONTROLLER)) is None and fit_thread.is_alive():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    if controller is not None:
        try:
            ray.get(controller.abort.remote(), timeout=max(deadline - time.monotonic(), 1))
        except ray.exceptions.RayActorError:
            pass  # abort ends the controller: this is the expected answer
        except Exception as exc:  # stopping anyway; Ray's shutdown kills what is left
            log.warning("kubetrain: could not abort the training run: %s", exc)
    fit_thread.join(max(deadline - time.monotonic(), 1))
    return not fit_thread.is_alive()
