"""cli_runs' helpers keep their deadlines: a run that hangs in silence fails the test in time,
with what it printed, and is killed (children are tiny Python programs, not `kubetrain run`)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time

from tests.integration.cli_runs import epoch_lines, interrupt, spawn


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def fails_within(seconds: float, proc: subprocess.Popen[str], until: str, timeout: float) -> str:
    """epoch_lines(proc, until, timeout) must raise an AssertionError within `seconds`: its
    message. Run on a thread, so that a helper that blocks fails this test rather than hangs it.
    """
    raised: list[BaseException] = []

    def call() -> None:
        try:
            epoch_lines(proc, until, timeout)
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        proc.kill()
        raise AssertionError(f"epoch_lines still blocked after {seconds}s (timeout {timeout}s)")
    assert raised and isinstance(raised[0], AssertionError), raised
    return str(raised[0])


def test_a_run_that_goes_silent_fails_at_the_deadline_and_is_killed() -> None:
    proc = spawn(python("""
        import sys, time
        print("epoch 1/3 loss 0.5", flush=True)
        print("warming up", file=sys.stderr, flush=True)
        time.sleep(3600)
    """))  # fmt: skip
    started = time.monotonic()
    message = fails_within(5, proc, "epoch 2/3", timeout=1.5)
    assert time.monotonic() - started >= 1.5
    assert proc.returncode is not None  # killed, not left running
    assert "no 'epoch 2/3' within 1.5s" in message
    assert "epoch 1/3 loss 0.5" in message and "warming up" in message


def test_a_run_that_never_prints_fails_at_the_deadline() -> None:
    proc = spawn(python("import time; time.sleep(3600)"))
    message = fails_within(4, proc, "epoch 1/1", timeout=1.0)
    assert "no 'epoch 1/1' within 1.0s" in message
    assert proc.returncode is not None


def test_a_run_that_ends_early_fails_with_its_stderr() -> None:
    proc = spawn(python("""
        import sys
        print("epoch 1/3", flush=True)
        sys.exit("Traceback: boom")
    """))  # fmt: skip
    message = fails_within(30, proc, "epoch 3/3", timeout=30)
    assert "process ended before 'epoch 3/3' (exit code 1)" in message
    assert "Traceback: boom" in message and "['epoch 1/3']" in message


def test_progress_lines_up_to_the_one_asked_for() -> None:
    proc = spawn(python("""
        import sys
        sys.stderr.write("x" * 1_000_000)  # more than a pipe holds: the helper must drain it
        for line in ("starting", "resumed from the checkpoint of epoch 1:", "epoch 2/3",
                     "note", "epoch 3/3 [checkpoint]"):
            print(line, flush=True)
    """))  # fmt: skip
    lines = epoch_lines(proc, "epoch 3/3", timeout=10)
    assert lines == [
        "resumed from the checkpoint of epoch 1:",
        "epoch 2/3",
        "epoch 3/3 [checkpoint]",
    ]
    assert proc.wait(timeout=30) == 0


def test_interrupt_returns_the_stderr_read_so_far() -> None:
    proc = spawn(python("""
        import sys, time
        try:
            print("epoch 1/9", flush=True)
            time.sleep(60)
        except KeyboardInterrupt:
            sys.stderr.write("interrupted\\n")
            sys.exit(130)
    """))  # fmt: skip
    epoch_lines(proc, "epoch 1/9", timeout=30)
    assert interrupt(proc, signal.SIGINT) == "interrupted\n"
