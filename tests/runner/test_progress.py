"""The per-epoch progress line and its ETA."""

from __future__ import annotations

import io

from kubetrain.runner.progress import (
    ConsoleSink,
    EpochReport,
    EtaEstimator,
    WorkerFailure,
    blame,
    format_duration,
    format_progress,
    format_resumed,
)


def report(epoch: int, at: float, **extra: object) -> EpochReport:
    metrics = {
        "epoch": epoch,
        "total_epochs": 10,
        "val_loss": 0.5,
        "val_accuracy": 0.9,
        "samples_per_second": 1234.4,
        "epoch_seconds": 2.0,
        "metric_name": "accuracy",
    }
    return EpochReport(metrics | extra, None, at=at)  # fmt: skip


def test_progress_line_has_epoch_loss_metric_rate_eta() -> None:
    line = format_progress(report(3, 0.0), 75.0)
    assert line == "epoch 3/10  loss 0.5000  accuracy 0.9000  1234 samples/s  ETA 0:01:15"


def test_eta_ignores_startup_and_uses_wall_time_between_epochs() -> None:
    eta = EtaEstimator()
    assert eta.eta(report(1, 100.0)) == 2.0 * 9  # the workers' own epoch time at first
    assert eta.eta(report(3, 106.0)) == 3.0 * 7  # then 3 s per epoch of wall time


def test_eta_after_resume_counts_only_this_runs_epochs() -> None:
    eta = EtaEstimator()
    eta.eta(report(6, 0.0))
    assert eta.eta(report(8, 10.0)) == 5.0 * 2


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
    assert "already stopped early at epoch 6/10" in (format_resumed(early) or "")
    assert EtaEstimator().eta(early) == 0.0, "nothing remains after an early stop"


def test_duration_format() -> None:
    assert format_duration(3725.4) == "1:02:05" and format_duration(None) == "?"


GLOO_FALLOUT = RuntimeError(
    "[../third_party/gloo/gloo/transport/tcp/pair.cc:537] Read error [127.0.0.1]:4711: "
    "Connection reset by peer"
)


def test_a_crash_is_blamed_on_the_rank_that_died_not_on_its_peers() -> None:
    died = RuntimeError("The actor died unexpectedly before finishing this task.\nexit code 1")
    failure = blame({0: GLOO_FALLOUT, 1: died})
    assert failure.ranks == (1,)
    assert failure.error == "exit code 1"


def test_when_every_rank_reports_fallout_every_rank_is_named() -> None:
    failure = blame({0: GLOO_FALLOUT, 1: GLOO_FALLOUT})
    assert failure.ranks == (0, 1)
    assert "Connection reset by peer" in failure.error


def test_a_failure_line_names_the_rank_or_says_the_run_ended_early() -> None:
    out = io.StringIO()
    sink = ConsoleSink(out)
    sink.on_worker_failure(WorkerFailure((1,), "exit code 1"))
    sink.on_worker_failure(WorkerFailure((), "Ray Train ended the run at epoch 48 of 200"))
    assert out.getvalue().splitlines() == [
        "worker 1 failed: exit code 1; resuming from the last checkpoint",
        "Ray Train ended the run at epoch 48 of 200; resuming from the last checkpoint",
    ]
