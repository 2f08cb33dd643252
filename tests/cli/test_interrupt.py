"""Ctrl-C during `kubetrain run`: exit 130 with one line, whatever Ray makes of the interrupt."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest

from kubetrain import cli
from kubetrain.runner import JobFailed
from tests.conftest import EXAMPLES

ARGS = ["run", str(EXAMPLES / "mnist-mlp.yaml"), "--no-metrics"]


@pytest.fixture(autouse=True)
def own_signal_handlers() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    cli._interrupted.clear()
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)
    cli._interrupted.clear()


def _ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_exits_130_and_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def run_job(*args: Any, **kwargs: Any) -> NoReturn:
        _ctrl_c()
        raise AssertionError("the interrupt should have stopped the run")

    monkeypatch.setattr("kubetrain.runner.run_job", run_job)
    assert cli.main(ARGS) == cli.EXIT_INTERRUPTED
    assert "interrupted; stopping the workers" in capsys.readouterr().err


def test_an_interrupt_ray_turned_into_its_own_error_still_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def run_job(*args: Any, **kwargs: Any) -> NoReturn:
        try:
            _ctrl_c()
        except BaseException as exc:  # as a library may: the interrupt comes back as an error
            raise RuntimeError("ray.get was interrupted") from exc
        raise AssertionError("unreachable")

    monkeypatch.setattr("kubetrain.runner.run_job", run_job)
    assert cli.main(ARGS) == cli.EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err


def test_training_that_fails_as_the_workers_stop_is_reported_as_interrupted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def run_job(*args: Any, **kwargs: Any) -> NoReturn:
        with contextlib.suppress(KeyboardInterrupt):  # swallowed; the training thread fails
            _ctrl_c()
        raise JobFailed("training failed: the actor died unexpectedly")

    monkeypatch.setattr("kubetrain.runner.run_job", run_job)
    assert cli.main(ARGS) == cli.EXIT_INTERRUPTED
    assert "training failed" not in capsys.readouterr().err


def test_a_failure_without_an_interrupt_is_a_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def run_job(*args: Any, **kwargs: Any) -> NoReturn:
        raise JobFailed("training failed: loss is NaN")

    monkeypatch.setattr("kubetrain.runner.run_job", run_job)
    assert cli.main(ARGS) == cli.EXIT_FAILED
    assert "training failed: loss is NaN" in capsys.readouterr().err
