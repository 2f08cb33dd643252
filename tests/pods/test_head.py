"""The head pod's program: its waits, its Ray command and where it keeps checkpoints."""

from __future__ import annotations

from kubetrain.pods.head import HeadPorts, head_command, wait_for_workers, with_storage_path
from tests.operator.helpers import api_job
from tests.pods.fake_time import FakeTime


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


def test_storage_path_flag_moves_only_the_checkpoint_dir() -> None:
    job = api_job(checkpoint={"storagePath": "./runs", "everyEpochs": 2, "claimName": "ckpt"})
    moved = with_storage_path(job, "/kubetrain/runs")
    assert moved.spec.checkpoint.storage_path == "/kubetrain/runs"
    assert moved.spec.checkpoint.every_epochs == 2
    assert moved.spec.model_dump(exclude={"checkpoint"}) == job.spec.model_dump(
        exclude={"checkpoint"}
    )
    assert with_storage_path(job, None) is job


def test_the_head_offers_ray_no_cpus_so_training_lands_on_worker_pods() -> None:
    command = head_command(HeadPorts(gcs=6379, dashboard=None, metrics=8080))
    assert command[:4] == ["ray", "start", "--head", "--port=6379"]
    assert {"--num-cpus=0", "--num-gpus=0", "--metrics-export-port=8080"} <= set(command)
    assert "--include-dashboard=false" in command  # Ray's Jobs API runs code: off by default
    with_dashboard = head_command(HeadPorts(gcs=6379, dashboard=8265, metrics=8080))
    assert {"--dashboard-host=0.0.0.0", "--dashboard-port=8265"} <= set(with_dashboard)
