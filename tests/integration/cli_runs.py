"""`kubetrain run` as a user runs it: a subprocess, its progress lines, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.conftest import ROOT

KUBETRAIN = [sys.executable, "-m", "kubetrain.cli"]


def start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*KUBETRAIN, "run", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=ROOT, env=os.environ | {"PYTHONUNBUFFERED": "1"} | (env or {}),
    )  # fmt: skip


def epoch_lines(proc: subprocess.Popen[str], until: str, timeout: float) -> list[str]:
    """Progress lines (epochs, and a resumed run's first line) up to the one starting `until`."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    for line in proc.stdout:
        if line.startswith(("epoch ", "resumed ")):
            seen.append(line.strip())
            if line.startswith(until):
                return seen
        assert time.monotonic() < deadline, f"no {until!r} within {timeout}s; saw {seen}"
    raise AssertionError(f"process ended before {until!r}; saw {seen}")


def interrupt(proc: subprocess.Popen[str], sig: signal.Signals = signal.SIGINT) -> str:
    """Ctrl-C (or `kill`); the run must stop with 130 and say so. Returns its stderr."""
    proc.send_signal(sig)
    code = proc.wait(timeout=120)
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert code == 130, f"exit code {code} after {sig.name}; stderr ends:\n{err[-3000:]}"
    assert "interrupted" in err
    return err


def resumed_epochs(lines: list[str], total: int, at_least: int) -> list[int]:
    """The epochs a resumed run trained, checked against the checkpoint it said it resumed.

    The first run may checkpoint one more epoch between the Ctrl-C and its workers stopping,
    so the second starts after `at_least` or later, never from zero, and reaches `total`.
    """
    assert lines and lines[0].startswith("resumed from the checkpoint of epoch "), lines
    done = int(lines[0].split()[6].rstrip(":"))
    epochs = [int(ln.split()[1].split("/")[0]) for ln in lines[1:]]
    assert done >= at_least, f"resumed from epoch {done}, but epoch {at_least} was checkpointed"
    assert epochs == list(range(done + 1, total + 1)), lines
    return epochs
