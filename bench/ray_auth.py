"""What Ray's token authentication costs a job's start-up, side by side with it off.

Every job's Ray cluster runs with RAY_AUTH_MODE=token (the operator gives each pod the job's
token). This starts a Ray cluster the way a job's head does (`ray start --head`, then a node
joining it and a driver connecting), once with token authentication and once without, in
alternation, and prints the median seconds of each and their ratio.

    .venv/bin/python bench/ray_auth.py [--repeats 5]

Each cluster gets its own temp dir and ports and is stopped by killing its own processes: never
`ray stop`, which would stop every Ray process on the machine (a local cluster's pods included).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
DRIVER = """
import ray, sys
ray.init(address=sys.argv[1], log_to_driver=False)
@ray.remote(num_cpus=1)
def one(): return 1
assert ray.get(one.remote()) == 1
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_and_use(token: bool) -> float:
    """Seconds from `ray start --head` to a task run on a second node, as a job starts."""
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    env.pop("RAY_ADDRESS", None)
    if token:
        env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_urlsafe(32)}
    else:
        env["RAY_AUTH_MODE"] = "disabled"
    port = free_port()
    address = f"127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="kt-auth-") as tmp:
        procs: list[subprocess.Popen[bytes]] = []
        t0 = time.perf_counter()
        try:
            head = [RAY, "start", "--head", f"--port={port}", "--num-cpus=0",
                    "--include-dashboard=false", f"--temp-dir={tmp}", "--block"]  # fmt: skip
            node = [RAY, "start", f"--address={address}", "--num-cpus=1", "--block"]
            for command in (head, node):
                procs.append(
                    subprocess.Popen(
                        command,
                        env=env,
                        start_new_session=True,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.STDOUT,
                    )
                )
            subprocess.run([sys.executable, "-c", DRIVER, address], env=env, check=True,
                           capture_output=True, timeout=300)  # fmt: skip
            return time.perf_counter() - t0
        finally:
            for proc in reversed(procs):
                # Each `ray start --block` leads its own session: its whole group goes.
                with_group(proc)


def with_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    times: dict[bool, list[float]] = {True: [], False: []}
    for i in range(args.repeats):
        for token in (i % 2 == 0, i % 2 != 0):  # alternate which goes first
            seconds = start_and_use(token)
            times[token].append(seconds)
            print(f"repeat {i + 1} {'token' if token else 'no auth'}: {seconds:.2f} s", flush=True)
    on, off = statistics.median(times[True]), statistics.median(times[False])
    print(f"median: token {on:.2f} s, no auth {off:.2f} s, ratio {on / off:.3f}")


if __name__ == "__main__":
    main()
