"""Ctrl-C (or SIGTERM) in the middle of a run: the workers stop before the driver lets go.

Ray ends a process with exit code 1 when a thread wakes in a core worker that was shut down,
so `kubetrain run` can only exit 130 if the fit thread has ended before Ray shuts down.
"""

from __future__ import annotations

import _thread
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubetrain.runner import EpochUpdate, run_job
from tests.conftest import make_job
from tests.integration.conftest import RecordingSink, actor_classes_since, actor_ids

pytestmark = pytest.mark.slow


@pytest.fixture
def ctrl_c_raises() -> Iterator[None]:
    """Python's own Ctrl-C handler, whatever an earlier test left installed (a `fit()` in the
    main thread leaves Ray Train's, which aborts that run's finished controller and returns)."""
    saved = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, saved)


class InterruptingSink(RecordingSink):
    """Presses Ctrl-C (in the main thread, as the signal handler would) at the first epoch."""

    def on_epoch(self, update: EpochUpdate, eta_seconds: float | None) -> None:
        super().on_epoch(update, eta_seconds)
        if len(self.epochs) == 1:
            _thread.interrupt_main()


def test_an_interrupted_run_stops_its_controller_and_workers_before_returning(
    ray_cluster: None, ctrl_c_raises: None, tmp_path: Path
) -> None:
    job = make_job(training={"epochs": 30}, checkpoint={"storagePath": str(tmp_path)})
    sink = InterruptingSink()
    before = actor_ids()

    with pytest.raises(KeyboardInterrupt):
        run_job(job, sink)

    assert len(sink.epochs) < 30  # it really stopped in the middle
    assert "kubetrain-fit" not in {t.name for t in threading.enumerate() if t.is_alive()}
    assert not actor_classes_since(before, alive_only=True) & {"TrainController", "RayTrainWorker"}
