"""`kubetrain run` as a user runs it: a subprocess, its progress lines, Ctrl-C."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import weakref
from typing import IO

from tests.conftest import ROOT

KUBETRAIN = [sys.executable, "-m", "kubetrain.cli"]


def start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`kubetrain run ARGS`."""
    return spawn([*KUBETRAIN, "run", *args], env)


def spawn(argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=ROOT, env=os.environ | {"PYTHONUNBUFFERED": "1"} | (env or {}),
    )  # fmt: skip
    output(proc)  # read both pipes from the start: a full stderr pipe would stall the run
    return proc


class Output:
    """What a process prints, read on threads as it comes, so that a silent process cannot
    hold a test past its deadline (a read on the pipe would), nor a full pipe stall the process.
    """

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()  # stdout's lines, then None at EOF
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._threads = [
            threading.Thread(target=_read, args=(pipe, into, lines), daemon=True)
            for pipe, into, lines in ((proc.stdout, self.stdout, self.lines),
                                      (proc.stderr, self.stderr, None))
            if pipe is not None
        ]  # fmt: skip
        for thread in self._threads:
            thread.start()

    def finish(self, timeout: float = 10.0) -> None:
        """Waits for the pipes' ends (the process has exited; its children may hold them)."""
        for thread in self._threads:
            thread.join(timeout)

    def printed(self, tail: int = 3000) -> str:
        return (
            f"stdout ends:\n{''.join(self.stdout)[-tail:]}\n"
            f"stderr ends:\n{''.join(self.stderr)[-tail:]}"
        )


def _read(pipe: IO[str], into: list[str], lines: queue.Queue[str | None] | None) -> None:
    try:
        for line in pipe:
            into.append(line)
            if lines is not None:
                lines.put(line)
    finally:
        if lines is not None:
            lines.put(None)


_outputs: weakref.WeakKeyDictionary[subprocess.Popen[str], Output] = weakref.WeakKeyDictionary()


def output(proc: subprocess.Popen[str]) -> Output:
    """The one reader of `proc`'s pipes (started at the first call)."""
    if proc not in _outputs:
        _outputs[proc] = Output(proc)
    return _outputs[proc]


def _kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)
    output(proc).finish(timeout=5)


def epoch_lines(proc: subprocess.Popen[str], until: str, timeout: float) -> list[str]:
    """Progress lines (epochs, and a resumed run's first line) up to the one starting `until`.

    The deadline holds whether or not the process prints: past it, or if stdout ends first,
    the process is killed and the test fails with what it printed.
    """
    out = output(proc)
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            if left <= 0:
                raise queue.Empty  # time is up, however much it printed
            line = out.lines.get(timeout=left)
        except queue.Empty:
            _kill(proc)
            raise AssertionError(
                f"no {until!r} within {timeout}s (killed it); saw {seen}\n{out.printed()}"
            ) from None
        if line is None:
            _kill(proc)
            raise AssertionError(
                f"process ended before {until!r} (exit code {proc.returncode}); saw {seen}\n"
                f"{out.printed()}"
            )
        if line.startswith(("epoch ", "resumed ")):
            seen.append(line.strip())
            if line.startswith(until):
                return seen


def interrupt(proc: subprocess.Popen[str], sig: signal.Signals = signal.SIGINT) -> str:
    """Ctrl-C (or `kill`); the run must stop with 130 and say so. Returns its stderr."""
    proc.send_signal(sig)
    code = proc.wait(timeout=120)
    out = output(proc)
    out.finish()
    err = "".join(out.stderr)
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
