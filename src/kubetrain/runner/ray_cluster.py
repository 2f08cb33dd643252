"""Starting Ray, or attaching to it, once per process, with kubetrain's settings."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import ray

from kubetrain.runner._ray import node


@dataclass(frozen=True)
class LocalCluster:
    """How the driver attaches to Ray: a fresh local cluster, or an existing address."""

    address: str | None = None
    num_cpus: int | None = None
    verbose: bool = False


# Ray Train's controller polls workers every 2 s by default, and `ray.train.report` waits for
# that poll: a 2 s stall per epoch. 0.25 s costs nothing measurable on the driver.
_CONTROLLER_POLL_S = "0.25"
# Ray Train's preemption watcher follows node drains (spot reclaim, autoscaler scale-down) on a
# real cluster. A local one has none, and the watcher's actor boots (~2 CPU-seconds) just as the
# workers start training: with 2 workers on 2 cores it took 13% of a core from their epochs.
_PREEMPTION_WATCHER = "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER"


def start_ray(cluster: LocalCluster, cpus_needed: float = 0.0) -> None:
    """Start (or attach to) Ray once per process, with kubetrain's settings."""
    if ray.is_initialized():
        return
    with _keeping_sigterm_handler():
        _init_ray(cluster, cpus_needed)


@contextlib.contextmanager
def _keeping_sigterm_handler() -> Iterator[None]:
    """Ray's core worker takes SIGTERM for its crash handler, which dumps a stack trace and
    aborts (exit 134): a `kill` or a closed terminal would lose the caller's own handler (the
    CLI stops the run as Ctrl-C does). Python's handler is put back after `ray.init`."""
    handler = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        if callable(handler) and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, handler)


def _init_ray(cluster: LocalCluster, cpus_needed: float) -> None:
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", _CONTROLLER_POLL_S)
    if cluster.address:
        ray.init(address=cluster.address, log_to_driver=cluster.verbose)
        return
    os.environ.setdefault(_PREEMPTION_WATCHER, "0")
    # Locally, logical CPUs are oversubscribed so a spec written for a big node still runs on
    # a laptop (Ray would otherwise wait forever for CPUs that do not exist).
    num_cpus = cluster.num_cpus or max(os.cpu_count() or 1, int(cpus_needed + 0.999))
    ray.init(
        # Our own cluster, even when `ray start` left one running on this machine (ray.init()
        # would attach to it and refuse num_cpus).
        address="local",
        num_cpus=num_cpus,
        include_dashboard=False,
        log_to_driver=cluster.verbose,
        logging_level=logging.INFO if cluster.verbose else logging.WARNING,
        configure_logging=True,
    )
    if not cluster.verbose:
        node.stop_log_monitor()
