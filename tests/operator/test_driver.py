"""The in-cluster driver's pure parts: the status it writes, and its waits."""

from __future__ import annotations

from typing import Any

from kubetrain_operator.driver import (
    StatusSink,
    progress_status,
    start_ray_node,
    unshared_storage_message,
    wait_for_port,
    wait_for_workers,
    with_storage_path,
    worker_command,
)
from tests.operator.helpers import api_job

EPOCH = {
    "epoch": 3,
    "total_epochs": 10,
    "step": 420,
    "metric_name": "accuracy",
    "val_loss": 0.1234567,
    "val_accuracy": 0.97312,
    "val_f1": 0.97,
    "train_loss": 0.2,
    "samples_per_second": 1234.56,
    "stopped_early": False,
}


def test_progress_status_fills_the_columns() -> None:
    assert progress_status(EPOCH, "s3://ckpt/t/checkpoint_000002", 42.04) == {
        "epoch": 3,
        "totalEpochs": 10,
        "progress": "3/10",
        "step": 420,
        "loss": 0.123457,
        "metrics": {"val_loss": 0.1234567, "val_accuracy": 0.97312, "val_f1": 0.97},
        "metricSummary": "accuracy=0.9731",
        "samplesPerSecond": 1234.6,
        "etaSeconds": 42.0,
        "checkpoint": "s3://ckpt/t/checkpoint_000002",
    }


def test_progress_status_without_optional_fields() -> None:
    out = progress_status({"epoch": 1, "total_epochs": 2}, None, None)
    assert out == {"epoch": 1, "totalEpochs": 2, "progress": "1/2", "metrics": {}}


class Report:
    def __init__(self, metrics: dict[str, Any], checkpoint: str | None) -> None:
        self.metrics, self.checkpoint = metrics, checkpoint


def test_sink_patches_once_per_epoch() -> None:
    patches: list[Any] = []
    sink = StatusSink(patches.append)
    sink.on_epoch(Report(EPOCH, None), None)
    assert len(patches) == 1 and patches[0]["progress"] == "3/10"


class FakeTime:
    def __init__(self) -> None:
        self.t = 0.0

    def sleep(self, seconds: float) -> None:
        self.t += seconds

    def clock(self) -> float:
        return self.t


def test_wait_for_workers_returns_when_all_joined() -> None:
    time = FakeTime()
    joined = iter([0, 1, 1, 2])
    n = wait_for_workers(
        2, timeout=60, available=lambda: float(next(joined)), sleep=time.sleep, clock=time.clock
    )
    assert n == 2 and time.t == 1.5


def test_wait_for_workers_gives_up_at_the_deadline() -> None:
    time = FakeTime()
    n = wait_for_workers(2, timeout=10, available=lambda: 1.0, sleep=time.sleep, clock=time.clock)
    assert n == 1 and 10 <= time.t <= 10.5


def test_wait_for_port_retries_until_it_answers() -> None:
    time = FakeTime()
    tries = iter([OSError("no DNS yet"), OSError("refused"), None])

    def connect(addr: tuple[str, int]) -> None:
        error = next(tries)
        if error:
            raise error

    assert wait_for_port("h", 6379, timeout=30, connect=connect, sleep=time.sleep, clock=time.clock)
    assert time.t == 2


def test_wait_for_port_times_out() -> None:
    time = FakeTime()

    def refuse(addr: tuple[str, int]) -> None:
        raise OSError("refused")

    assert not wait_for_port("h", 1, timeout=3, connect=refuse, sleep=time.sleep, clock=time.clock)


def test_worker_command_advertises_one_worker_slot() -> None:
    assert worker_command("t-head.ml.svc:6379", num_cpus=4, num_gpus=1) == [
        "ray", "start", "--address=t-head.ml.svc:6379", "--block",
        "--num-cpus=4", "--num-gpus=1", '--resources={"kubetrain_worker": 1}',
        "--disable-usage-stats",
    ]  # fmt: skip


def test_driver_imports_neither_kopf_nor_a_kubernetes_client() -> None:
    import subprocess
    import sys

    code = (
        "import sys, kubetrain_operator.driver; "
        "bad = [m for m in ('kopf', 'kubernetes') if m in sys.modules]; "
        "sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_storage_path_flag_moves_only_the_checkpoint_dir() -> None:
    job = api_job(checkpoint={"storagePath": "./runs", "everyEpochs": 2, "claimName": "ckpt"})
    moved = with_storage_path(job, "/kubetrain/runs")
    assert moved.spec.checkpoint.storage_path == "/kubetrain/runs"
    assert moved.spec.checkpoint.every_epochs == 2
    assert moved.spec.model_dump(exclude={"checkpoint"}) == job.spec.model_dump(
        exclude={"checkpoint"}
    )
    assert with_storage_path(job, None) is job


def test_unshared_storage_refusal_names_the_fields_that_fix_it() -> None:
    message = unshared_storage_message(api_job(checkpoint={"storagePath": "./runs"}))
    assert "checkpoint.storagePath './runs'" in message
    assert "checkpoint.claimName" in message and "s3://" in message


def _runs(*results: tuple[int, bool]) -> tuple[list[tuple[int, bool]], list[str]]:
    return list(results), []


def test_ray_node_that_fails_before_starting_is_started_again() -> None:
    results, calls = _runs((1, False), (0, True))
    code = start_ray_node(lambda: results.pop(0), lambda: calls.append("stop"))
    assert (code, calls, results) == (0, ["stop"], [])


def test_ray_node_that_died_after_starting_is_not_restarted() -> None:
    results, calls = _runs((1, True), (0, True))
    assert start_ray_node(lambda: results.pop(0), lambda: calls.append("stop")) == 1
    assert calls == [] and len(results) == 1


def test_ray_node_start_gives_up_after_the_last_attempt() -> None:
    results, calls = _runs((1, False), (1, False), (1, False), (0, True))
    assert start_ray_node(lambda: results.pop(0), lambda: calls.append("stop"), attempts=3) == 1
    assert calls == ["stop", "stop"] and results == [(0, True)]
