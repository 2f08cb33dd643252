"""The cluster verbs' exit codes, lines and progress display, with a fake client: what
`kubetrain wait` exits with when the job fails or time runs out, what `submit` does with an
invalid spec (nothing), how the progress looks on a terminal and in a log."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetrain import cli
from kubetrain.api import TrainingJob
from kubetrain.api.status import fault_message
from kubetrain.cli import verbs
from kubetrain.cli.display import ProgressDisplay, progress_bar, render_metrics, render_status
from kubetrain.client import (
    ClusterError,
    Failure,
    Forbidden,
    JobFailed,
    JobStatus,
    Rejected,
    WaitTimeout,
)
from kubetrain.client.views import metrics_of
from tests.client.jobs import CREATED, cluster_job, condition, failed, running
from tests.conftest import job_dict

MESSAGE = fault_message("t-worker-1", "worker", "OOMKilled (exit code 137)")


class FakeClient:
    """Stands in for kubetrain.client.Client; `script` says what each verb does."""

    made: list[FakeClient] = []

    def __init__(self, kubeconfig: Any, context: Any, namespace: Any) -> None:
        self.namespace = namespace or "default"
        self.calls: list[tuple[str, Any]] = []
        self.closed = False
        FakeClient.made.append(self)

    script: dict[str, Callable[..., Any]] = {}

    def _do(self, verb: str, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((verb, args))
        return self.script[verb](*args, **kwargs)

    def submit(self, job: TrainingJob, *, source: str) -> TrainingJob:
        return self._do("submit", job)  # type: ignore[no-any-return]

    def wait(self, name: str, **kwargs: Any) -> TrainingJob:
        return self._do("wait", name, **kwargs)  # type: ignore[no-any-return]

    def list(self, *, all_namespaces: bool) -> list[TrainingJob]:
        return self._do("list", all_namespaces)  # type: ignore[no-any-return]

    def get(self, name: str) -> TrainingJob:
        return self._do("get", name)  # type: ignore[no-any-return]

    def logs(self, name: str, **kwargs: Any) -> Iterator[str]:
        return self._do("logs", name, **kwargs)  # type: ignore[no-any-return]

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> type[FakeClient]:
    FakeClient.made = []
    FakeClient.script = {}
    monkeypatch.setattr(verbs, "Client", FakeClient)
    return FakeClient


def _updates(*jobs: TrainingJob, then: Exception | None = None) -> Callable[..., TrainingJob]:
    def wait(name: str, *, on_update: Callable[[TrainingJob], object], **kwargs: Any) -> Any:
        for job in jobs:
            on_update(job)
        if then is not None:
            raise then
        return jobs[-1]

    return wait


def test_wait_on_a_job_that_fails_exits_1_with_reason_pod_and_container(
    fake: type[FakeClient], capsys: pytest.CaptureFixture[str]
) -> None:
    job = cluster_job("t", status=failed("OOMKilled", MESSAGE), distributed={"workers": 2})
    failure = Failure.of(job)
    error = JobFailed(f'trainingjob "t" failed: {failure.describe() if failure else ""}', job,
                      failure)  # fmt: skip
    fake.script["wait"] = _updates(cluster_job("t", status=running()), job, then=error)
    assert cli.main(["wait", "t"]) == cli.EXIT_FAILED
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        'kubetrain: trainingjob "t" failed: OOMKilled: pod t-worker-1 container worker:'
        " OOMKilled (exit code 137)",
        "kubetrain: its log: kubetrain logs t --rank 1",
    ]
    assert out.splitlines()[0].startswith("t  Running  epoch 3/10  loss 0.4000")  # not a TTY
    assert fake.made[0].closed


def test_wait_timeout_exits_124_and_wait_for_finished_exits_0_on_a_failure(
    fake: type[FakeClient], capsys: pytest.CaptureFixture[str]
) -> None:
    still = cluster_job("t", status=running())
    timeout = WaitTimeout('trainingjob "t" is still Running after 5 s', still)
    fake.script["wait"] = _updates(still, then=timeout)
    assert cli.main(["wait", "t", "--timeout", "5"]) == cli.EXIT_TIMEOUT
    assert "is still Running after 5 s" in capsys.readouterr().err
    done = cluster_job("t", status=failed("OOMKilled", MESSAGE))
    fake.script["wait"] = _updates(done)
    assert cli.main(["wait", "t", "--for", "finished"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == 'trainingjob "t" Failed'
    assert fake.made[-1].calls[0][0] == "wait"


def test_wait_timeout_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["wait", "t", "--timeout", "0"])
    assert exit_.value.code == cli.EXIT_INVALID


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_submit_of_an_invalid_spec_exits_2_naming_the_field_and_asks_no_cluster(
    fake: type[FakeClient], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = job_dict(model={"inputSize": 100})
    assert cli.main(["submit", str(_write(tmp_path, data))]) == cli.EXIT_INVALID
    assert "spec.model.inputSize: is 100 but each digits image" in capsys.readouterr().err
    # A local storagePath without a claim: only wrong on a cluster, and refused before it.
    data = job_dict(checkpoint={"storagePath": "./runs"})
    assert cli.main(["submit", str(_write(tmp_path, data))]) == cli.EXIT_INVALID
    assert "spec.checkpoint.claimName" in capsys.readouterr().err
    assert fake.made == []


def test_submit_then_watch_until_it_succeeds(
    fake: type[FakeClient], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = job_dict(checkpoint={"storagePath": "s3://b/p"})
    created = cluster_job("t", status=None)
    succeeded = running(epoch=10)
    succeeded["conditions"].append(condition("Succeeded", reason="TrainingCompleted"))
    fake.script["submit"] = lambda job: created
    fake.script["wait"] = _updates(created, cluster_job("t", status=succeeded))
    assert cli.main(["submit", str(_write(tmp_path, data)), "--watch", "-n", "team-a"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == 'trainingjob "t" created in namespace "default"'
    assert out[1] == "t  Pending"
    assert out[2].startswith("t  Succeeded  epoch 10/10")
    assert out[-1] == 'trainingjob "t" Succeeded'
    assert fake.made[0].namespace == "team-a"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (
            Forbidden(
                'forbidden: user "u" may not create trainingjobs.kubetrain.io in namespace "b"',
                user="u",
                verb="create",
                resource="trainingjobs.kubetrain.io",
                namespace="b",
            ),
            cli.EXIT_CLUSTER,
        ),
        (ClusterError("the cluster has no TrainingJob CRD"), cli.EXIT_CLUSTER),
        (Rejected("the cluster refused the TrainingJob: spec.x"), cli.EXIT_INVALID),
        (KeyboardInterrupt(), cli.EXIT_INTERRUPTED),
    ],
)
def test_what_the_cluster_says_becomes_one_line_and_an_exit_code(
    fake: type[FakeClient], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    error: BaseException, code: int,
) -> None:  # fmt: skip
    def submit(job: TrainingJob) -> TrainingJob:
        raise error

    fake.script["submit"] = submit
    data = job_dict(checkpoint={"storagePath": "s3://b/p"})
    assert cli.main(["submit", str(_write(tmp_path, data))]) == code
    err = capsys.readouterr().err.strip()
    if isinstance(error, KeyboardInterrupt):
        assert "the job goes on" in err
    else:
        assert err.startswith(f"kubetrain: {error}") and len(err.splitlines()) == 1
    assert fake.made[0].closed


def test_logs_prints_lines_and_notes_apart(
    fake: type[FakeClient], capsys: pytest.CaptureFixture[str]
) -> None:
    def logs(name: str, *, on_note: Callable[[str], None], **kwargs: Any) -> Iterator[str]:
        yield "first"
        on_note("pod t-worker-0 was replaced (uid b); its log from the start:")
        yield "second"

    fake.script["logs"] = logs
    assert cli.main(["logs", "t", "-f", "--rank", "0"]) == 0
    out, err = capsys.readouterr()
    assert out == "first\nsecond\n"
    assert err == "kubetrain: pod t-worker-0 was replaced (uid b); its log from the start:\n"
    assert fake.made[0].calls == [("logs", ("t",))]


def test_list_prints_a_table_or_says_there_is_nothing(
    fake: type[FakeClient], capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script["list"] = lambda all_ns: [cluster_job("a", status=running(), namespace="x")]
    assert cli.main(["list", "-A"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["NAMESPACE", "NAME", "PHASE", "EPOCH", "METRIC", "RESTARTS", "AGE"]
    assert row.split()[:6] == ["x", "a", "Running", "3/10", "accuracy=0.9000", "0"]
    fake.script["list"] = lambda all_ns: []
    assert cli.main(["list"]) == 0
    assert capsys.readouterr().err == 'kubetrain: no TrainingJobs in namespace "default"\n'


def test_metrics_prints_the_status_values_and_json(
    fake: type[FakeClient], capsys: pytest.CaptureFixture[str]
) -> None:
    job = cluster_job("t", status=running(step=300), metrics={"enabled": True, "port": 9400})
    fake.script["get"] = lambda name: job
    assert cli.main(["metrics", "t"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "epoch             3", "totalEpochs       10", "step              300",
        "loss              0.4", "val_accuracy      0.9", "val_loss          0.4",
        "samplesPerSecond  812", "eta               0:00:07",
        "checkpoint        /ckpt/t/checkpoint_000002",
    ]  # fmt: skip
    assert "kubectl port-forward -n default pod/t-worker-0 9400" in err
    assert cli.main(["metrics", "t", "-o", "json"]) == 0
    assert '"val_accuracy": 0.9' in capsys.readouterr().out


def test_progress_on_a_terminal_is_one_live_line_with_a_bar() -> None:
    out = io.StringIO()
    display = ProgressDisplay(out, live=True, width=lambda: 200)
    starting = cluster_job("t", status={"phase": "Starting", "message": "waiting for pods",
                                        "conditions": [condition("Created")]})  # fmt: skip
    display.update(starting)
    display.update(cluster_job("t", status=running(epoch=3)))
    display.update(cluster_job("t", status=running(epoch=4)))
    display.close()
    text = out.getvalue()
    # The Starting line stays, then the Running line is rewritten in place.
    assert text.split("\n")[0] == "\r\x1b[Kt  Starting  waiting for pods"
    running_line = text.split("\n")[1]
    assert running_line.count("\r\x1b[K") == 2
    assert running_line.endswith(
        "\r\x1b[Kt  Running  [########------------]  epoch 4/10"
        "  loss 0.4000  accuracy 0.9000  812 samples/s  ETA 0:00:07"
    )
    assert text.endswith("\n")


def test_progress_in_a_log_is_a_plain_line_per_change() -> None:
    out = io.StringIO()
    display = ProgressDisplay(out, live=False)
    for epoch in (3, 3, 4):
        display.update(cluster_job("t", status=running(epoch=epoch)))
    display.close()
    lines = out.getvalue().splitlines()
    assert [line.split("  ")[:3] for line in lines] == [
        ["t", "Running", "epoch 3/10"], ["t", "Running", "epoch 4/10"]
    ]  # fmt: skip
    assert "\x1b" not in out.getvalue()


def test_a_live_line_is_cut_to_the_terminal() -> None:
    out = io.StringIO()
    ProgressDisplay(out, live=True, width=lambda: 30).update(cluster_job("t", status=running()))
    assert out.getvalue() == "\r\x1b[K" + "t  Running  [######----------"[:29]
    assert progress_bar(0, 10) == "[" + "-" * 20 + "]" and progress_bar(10, 10).count("#") == 20


def test_status_page() -> None:
    from datetime import datetime, timedelta

    now = datetime.fromisoformat(CREATED.replace("Z", "+00:00")) + timedelta(minutes=5)
    job = cluster_job("t", status=failed("OOMKilled", MESSAGE, restarts=1, workerRestarts=2))
    page = render_status(
        JobStatus.of(job, log_pod="t-worker-1", log_tail=("Killed",)), now
    ).splitlines()
    assert "Phase:       Failed" in page
    assert "Failed:      OOMKilled" in page
    assert "Failed in:   pod t-worker-1, container worker" in page
    assert "Restarts:    1 (worker pods replaced: 2)" in page
    assert "Checkpoint:  /ckpt/t/checkpoint_000002" in page
    assert "Metrics:     val_accuracy=0.9  val_loss=0.4" in page
    assert any(line.split()[:4] == ["Failed", "True", "OOMKilled", "5m"] for line in page)
    assert page[-2:] == ["Log of pod t-worker-1 (last 1 lines):", "  Killed"]
    no_log = render_status(JobStatus.of(job, log_pod="t-head", log_note="no log: gone"), now)
    assert no_log.splitlines()[-1] == "Log of pod t-head: no log: gone"


def test_metrics_text_flattens_the_metrics() -> None:
    text = render_metrics(metrics_of(cluster_job(status=running())))
    assert "val_accuracy      0.9" in text.splitlines()


def test_without_the_kubernetes_package_the_cluster_verbs_say_which_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for module in [m for m in sys.modules if m.startswith(("kubetrain.client", "kubernetes"))]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.delitem(sys.modules, "kubetrain.cli.verbs")
    monkeypatch.delattr(cli, "verbs")
    monkeypatch.setitem(sys.modules, "kubernetes", None)  # type: ignore[arg-type]
    assert cli.main(["list"]) == cli.EXIT_CLUSTER
    assert "pip install 'kubetrain[cluster]'" in capsys.readouterr().err


def test_submit_names_the_other_objects_in_the_file_it_does_not_create(
    fake: type[FakeClient], capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import EXAMPLES

    fake.script["submit"] = lambda job: cluster_job("mnist-mlp")
    path = EXAMPLES / "mnist-mlp.yaml"
    assert cli.main(["submit", str(path)]) == 0
    assert capsys.readouterr().err == (
        f'kubetrain: {path} also holds PersistentVolumeClaim "mnist-mlp-checkpoints", which submit'
        f" does not create (kubectl apply -f {path} creates every object in it)\n"
    )
