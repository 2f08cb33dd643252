"""Starting a Ray node in a pod: the head's, and each worker pod's.

A worker pod waits until the head's GCS port answers, then runs `ray start --block` with one
`kubetrain_worker` resource per training rank, so that exactly its ranks land on it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Callable

from kubetrain.pods.contract import WORKER_RESOURCE
from kubetrain.pods.exits import EXIT_FAILED, terminate

log = logging.getLogger("kubetrain.pods")

# Ray gives a starting node 30 s (hard-coded) to register with the GCS. On a node busy starting
# other pods that is sometimes too short and `ray start` exits 1; starting again works.
RAY_START_ATTEMPTS = 3
RAY_STARTED = "Ray runtime started"


def start_ray_node(
    start: Callable[[], tuple[int, bool]],
    cleanup: Callable[[], object],
    *,
    attempts: int = RAY_START_ATTEMPTS,
) -> int:
    """Runs `start` until the node has come up once; returns the exit code of the last run.

    `start` returns (exit code, whether the node had started). A run that fails before the node
    started is retried after `cleanup`; one that fails after it is not: that node ran and died.
    """
    code = 1
    for attempt in range(1, attempts + 1):
        code, started = start()
        if code == 0 or started or attempt == attempts:
            break
        log.warning(
            "ray start failed before the node came up (exit code %d); starting again (%d of %d)",
            code, attempt + 1, attempts,
        )  # fmt: skip
        cleanup()
    return code


_child: subprocess.Popen[str] | None = None  # the Ray process running now, for SIGTERM


def ray_process(command: list[str]) -> tuple[int, bool]:
    """Runs a `ray start` command, passing its output on; (exit code, whether it started)."""
    global _child
    started = False
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        _child = proc
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            started = started or RAY_STARTED in line
        code = proc.wait()
    _child = None
    return code, started


def ray_stop() -> None:
    subprocess.run(["ray", "stop", "--force"], check=False, capture_output=True)


def stop_child() -> None:
    """Passes SIGTERM on to Ray, so that it leaves the cluster cleanly."""
    child = _child
    if child is not None and child.poll() is None:
        child.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=10)


def wait_for_port(
    host: str,
    port: int,
    *,
    timeout: float,
    connect: Callable[[tuple[str, int]], object] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """True once a TCP connection to host:port succeeds (DNS may not know the head yet)."""
    connect = connect or (lambda addr: socket.create_connection(addr, timeout=2).close())
    deadline = clock() + timeout
    while True:
        try:
            connect((host, port))
            return True
        except OSError:
            if clock() >= deadline:
                return False
            sleep(1.0)


def worker_command(address: str, *, num_cpus: int, num_gpus: int, ranks: int) -> list[str]:
    return [
        "ray", "start", f"--address={address}", "--block",
        f"--num-cpus={num_cpus}", f"--num-gpus={num_gpus}",
        f"--resources={json.dumps({WORKER_RESOURCE: ranks})}", "--disable-usage-stats",
    ]  # fmt: skip


def run_worker(head_address: str, *, num_cpus: int, num_gpus: int, ranks: int, wait: float) -> int:
    """A worker pod's life: join the head's Ray cluster and stay until the node stops."""
    host, _, port = head_address.rpartition(":")
    if not wait_for_port(host, int(port), timeout=wait):
        return terminate(EXIT_FAILED, f"the Ray head {head_address} did not answer in {wait:.0f} s")
    command = worker_command(head_address, num_cpus=num_cpus, num_gpus=num_gpus, ranks=ranks)
    # `ray start --block` returns when the node stops: the pod's exit code is Ray's.
    return start_ray_node(lambda: ray_process(command), ray_stop)
