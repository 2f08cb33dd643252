"""The per-epoch progress line on the terminal."""

from __future__ import annotations

import io

from kubetrain.runner.console import ConsoleSink, format_progress, format_resumed
from kubetrain.runner.eta import EtaEstimator
from kubetrain.runner.reports import WorkerFailure
from tests.runner.updates import report


def test_progress_line_has_epoch_loss_metric_rate_eta() -> None:
    line = format_progress(report(3, 0.0), 75.0)
    assert line == "epoch 3/10  loss 0.5000  accuracy 0.9000  1234 samples/s  ETA 0:01:15"


def test_a_resumed_run_says_where_it_picked_up_once() -> None:
    out = io.StringIO()
    sink = ConsoleSink(out)
    for epoch in (4, 5):
        sink.on_epoch(report(epoch, 0.0), None)
    lines = out.getvalue().splitlines()
    assert lines[0] == "resumed from the checkpoint of epoch 3: 3/10 were done"
    assert [ln.split()[:2] for ln in lines[1:]] == [["epoch", "4/10"], ["epoch", "5/10"]]


def test_a_fresh_run_claims_no_resume() -> None:
    out = io.StringIO()
    ConsoleSink(out).on_epoch(report(1, 0.0), None)
    assert "resumed" not in out.getvalue()


def test_a_run_of_a_finished_job_says_nothing_was_trained_and_shows_its_scores() -> None:
    out = io.StringIO()
    sink = ConsoleSink(out)
    last = report(10, 0.0, already_finished=True, finished=True)
    sink.on_epoch(last, EtaEstimator().eta(last))
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("nothing to train: this job already finished epoch 10/10 ")
    assert "rename it (metadata.name) or remove its checkpoints" in lines[0]
    assert lines[1].startswith("epoch 10/10  loss 0.5000  accuracy 0.9000")
    assert lines[1].endswith("ETA 0:00:00")

    early = report(6, 0.0, already_finished=True, stopped_early=True, finished=True)
    assert "already stopped early at epoch 6/10" in (format_resumed(early.report) or "")
    assert EtaEstimator().eta(early) == 0.0, "nothing remains after an early stop"


def test_a_failure_line_names_the_rank_or_says_the_run_ended_early() -> None:
    out = io.StringIO()
    sink = ConsoleSink(out)
    sink.on_worker_failure(WorkerFailure((1,), "exit code 1"))
    sink.on_worker_failure(WorkerFailure((), "Ray Train ended the run at epoch 48 of 200"))
    assert out.getvalue().splitlines() == [
        "worker 1 failed: exit code 1; resuming from the last checkpoint",
        "Ray Train ended the run at epoch 48 of 200; resuming from the last checkpoint",
    ]
