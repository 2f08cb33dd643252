"""What a job read from the cluster says: its phase, failure, progress line, age and row."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from kubetrain.api import Phase
from kubetrain.api.names import head_pod_name
from kubetrain.api.status import fault_message
from kubetrain.client.views import (
    Failure,
    JobStatus,
    Verdict,
    WaitFor,
    format_table,
    human_duration,
    list_row,
    metrics_of,
    phase_of,
    progress_line,
    status_line,
    verdict,
)
from kubetrain.pods.status_sink import progress_status
from kubetrain.runner.console import format_progress
from tests.client.jobs import CREATED, cluster_job, condition, failed, running
from tests.runner.updates import report

NOW = datetime.fromisoformat(CREATED.replace("Z", "+00:00")) + timedelta(seconds=208)


def test_the_cluster_progress_line_is_the_local_one() -> None:
    """`kubetrain wait` prints, from the status the head wrote, what `kubetrain run` prints."""
    update = report(3, 0.0)
    status = progress_status(update.report, None, 75.0).patch()
    job = cluster_job(status={"phase": "Running", **status})
    assert progress_line(job) == format_progress(update, 75.0)
    assert progress_line(job) == (
        "epoch 3/10  loss 0.5000  accuracy 0.9000  1234 samples/s  ETA 0:01:15"
    )


def test_no_progress_before_the_first_epoch() -> None:
    assert progress_line(cluster_job()) is None
    assert progress_line(cluster_job(status={"phase": "Starting"})) is None


def test_phase_comes_from_the_true_conditions() -> None:
    assert phase_of(cluster_job()) is Phase.PENDING
    assert phase_of(cluster_job(status=running())) is Phase.RUNNING
    # A stale stored phase loses to the conditions.
    assert phase_of(cluster_job(status=failed("OOMKilled", "x") | {"phase": "Running"})) is (
        Phase.FAILED
    )
    assert phase_of(cluster_job(status={"phase": "Starting"})) is Phase.STARTING


def test_failure_names_reason_pod_and_container() -> None:
    message = fault_message("t-worker-1", "worker", "OOMKilled (exit code 137)")
    failure = Failure.of(cluster_job(status=failed("OOMKilled", message)))
    assert failure == Failure("OOMKilled", message, "t-worker-1", "worker")
    assert failure.describe() == (
        "OOMKilled: pod t-worker-1 container worker: OOMKilled (exit code 137)"
    )
    spec = Failure.of(cluster_job(status=failed("InvalidSpec", "spec.model.inputSize: ...")))
    assert spec is not None and (spec.pod, spec.container) == (None, None)
    assert Failure.of(cluster_job(status=running())) is None
    not_true = running()
    not_true["conditions"].append(condition("Failed", status="False"))
    assert Failure.of(cluster_job(status=not_true)) is None


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(-5, "<invalid>"), (-1, "0s"), (0, "0s"), (119, "119s"), (120, "2m"), (208, "3m28s"),
     (600, "10m"), (179 * 60, "179m"), (3 * 3600, "3h"), (4 * 3600 + 300, "4h5m"),
     (30 * 3600, "30h"), (3 * 86400 + 4 * 3600, "3d4h"), (40 * 86400, "40d"),
     (2 * 365 * 86400 + 3 * 86400, "2y3d"), (9 * 365 * 86400, "9y")],
)  # fmt: skip
def test_age_reads_as_kubectls(seconds: int, shown: str) -> None:
    assert human_duration(seconds) == shown


def test_list_rows_and_table() -> None:
    job = cluster_job("mnist", status=running(restarts=1, workerRestarts=2))
    assert list_row(job, NOW) == ["mnist", "Running", "3/10", "accuracy=0.9000", "3", "3m28s"]
    fresh = cluster_job("new", namespace="team-a")
    assert list_row(fresh, NOW, with_namespace=True) == [
        "team-a", "new", "Pending", "", "", "0", "3m28s"
    ]  # fmt: skip
    table = format_table(["NAME", "PHASE"], [["mnist", "Running"], ["a-long-name", "Pending"]])
    assert table.splitlines() == [
        "NAME          PHASE",
        "mnist         Running",
        "a-long-name   Pending",
    ]


def test_status_collects_what_kubetrain_status_shows() -> None:
    message = fault_message("t-head", "head", "NonZeroExit: ValueError: bad")
    job = cluster_job(status=failed("NonZeroExit", message, restarts=1))
    st = JobStatus.of(job, log_pod=head_pod_name("t"), log_tail=("a", "b"))
    assert st.phase is Phase.FAILED and st.failure is not None and st.failure.pod == "t-head"
    assert (st.checkpoint, st.restarts, st.log_tail) == ("/ckpt/t/checkpoint_000002", 1, ("a", "b"))
    assert st.metrics == {"val_accuracy": 0.9, "val_loss": 0.4}
    assert st.progress is not None and st.progress.startswith("epoch 3/10")


def test_metrics_are_the_status_progress_fields_as_the_crd_names_them() -> None:
    assert metrics_of(cluster_job()) == {}
    assert metrics_of(cluster_job(status=running())) == {
        "epoch": 3, "totalEpochs": 10, "loss": 0.4, "samplesPerSecond": 812.0, "etaSeconds": 7.0,
        "metrics": {"val_accuracy": 0.9, "val_loss": 0.4},
        "checkpoint": "/ckpt/t/checkpoint_000002",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("phase", "wait_for", "expected"),
    [
        (Phase.SUCCEEDED, WaitFor.SUCCEEDED, Verdict.DONE),
        (Phase.FAILED, WaitFor.SUCCEEDED, Verdict.FAILED),
        (Phase.SUCCEEDED, WaitFor.FINISHED, Verdict.DONE),
        (Phase.FAILED, WaitFor.FINISHED, Verdict.DONE),
        *((p, w, None) for p in (Phase.PENDING, Phase.STARTING, Phase.RUNNING, Phase.RESTARTING,
                                 Phase.SUSPENDED) for w in WaitFor),
    ],
)  # fmt: skip
def test_what_ends_a_wait(phase: Phase, wait_for: WaitFor, expected: Verdict | None) -> None:
    assert verdict(phase, wait_for) is expected


def test_status_line_says_progress_or_the_latest_message_or_the_failure() -> None:
    starting = cluster_job("j", status={"phase": "Starting", "message": "waiting for 2 pod(s)",
                                        "conditions": [condition("Created")]})  # fmt: skip
    assert status_line(starting) == "j  Starting  waiting for 2 pod(s)"
    assert status_line(cluster_job("j", status=running())).startswith(
        "j  Running  epoch 3/10  loss 0.4000  accuracy 0.9000  812 samples/s  ETA 0:00:07"
    )
    restarting = running(message="restart 1/3 from the last checkpoint: pod j-head: lost")
    restarting["conditions"].append(condition("Restarting"))
    assert status_line(cluster_job("j", status=restarting)).endswith(
        "ETA 0:00:07  restart 1/3 from the last checkpoint: pod j-head: lost"
    )
    done = cluster_job("j", status=failed("OOMKilled", "pod j-worker-0 container worker: OOM"))
    assert status_line(done).endswith("OOMKilled: pod j-worker-0 container worker: OOM")


def test_now_is_utc() -> None:
    from kubetrain.client.views import now_utc

    assert now_utc().tzinfo is timezone.utc


def test_the_status_page_shows_rays_coloured_log_prefixes_as_plain_text() -> None:
    from kubetrain.cli.display import _ANSI

    assert _ANSI.sub("", "\x1b[36m(RayTrainWorker pid=87)\x1b[0m epoch 3") == (
        "(RayTrainWorker pid=87) epoch 3"
    )
