"""A real Prometheus server scrapes a running job, and its HTTP API returns the series."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubetrain.runner import run_job
from tests.conftest import named_job
from tests.integration.conftest import RecordingSink, free_port, free_port_pair

pytestmark = [pytest.mark.slow, pytest.mark.prometheus]

PROMETHEUS = shutil.which("prometheus")


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, promql: str) -> list[dict[str, Any]]:
        q = urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{q}", timeout=10) as resp:
            body = json.load(resp)
        assert body["status"] == "success", body
        return body["data"]["result"]  # type: ignore[no-any-return]

    def targets_up(self) -> int:
        with urllib.request.urlopen(f"{self.url}/api/v1/targets", timeout=10) as resp:
            active = json.load(resp)["data"]["activeTargets"]
        return sum(1 for t in active if t["health"] == "up")


@pytest.fixture
def metrics_port() -> int:
    return free_port_pair()


@pytest.fixture
def prometheus(tmp_path: Path, metrics_port: int) -> Iterator[Prometheus]:
    if PROMETHEUS is None:
        pytest.fail("Debian's prometheus is not installed: run `make setup` (scripts/setup.sh)")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: kubetrain-workers\n"
        # The workers' own `job` label names the TrainingJob; keep it rather than Prometheus'.
        "    honor_labels: true\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{metrics_port}', "
        f"'127.0.0.1:{metrics_port + 1}']}}]\n"
    )
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("w"),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2):
                break
        except OSError:
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "prometheus did not become ready in 30 s"
            time.sleep(0.2)
    yield Prometheus(url)
    proc.terminate()
    proc.wait(timeout=30)


# Whatever the backend, the same series: the training loop records them, not the engine.
BACKENDS = {
    "ddp": {"workers": 2},
    "deepspeed-zero2": {"workers": 2, "backend": "deepspeed", "deepspeed": {"zeroStage": 2}},
}


@pytest.mark.parametrize("distributed", BACKENDS.values(), ids=BACKENDS.keys())
def test_prometheus_scrapes_every_worker(
    ray_cluster: None,
    prometheus: Prometheus,
    metrics_port: int,
    tmp_path: Path,
    distributed: dict[str, Any],
) -> None:
    sink = RecordingSink()
    job = named_job(
        "prom-job",
        distributed=distributed,
        training={"epochs": 25},
        metrics={"enabled": True, "port": metrics_port},
        checkpoint={"storagePath": str(tmp_path), "everyEpochs": 5},
    )
    result = run_job(job, sink)
    assert result.status == "succeeded"

    # The workers are gone now; *_over_time still sees what was scraped while they ran.
    selector = '{job="prom-job", namespace="default"}'
    epochs = prometheus.query(f"max_over_time(kubetrain_epoch{selector}[10m])")
    assert sorted(s["metric"]["rank"] for s in epochs) == ["0", "1"]
    assert all(float(s["value"][1]) >= 1 for s in epochs)
    names = ("kubetrain_train_loss", "kubetrain_samples_per_second", "kubetrain_step",
             "kubetrain_world_size", "kubetrain_learning_rate", "kubetrain_val_loss")  # fmt: skip
    for name in names:
        series = prometheus.query(f"max_over_time({name}{selector}[10m])")
        assert len(series) == 2, f"{name}: {series}"
    world = prometheus.query(f"max_over_time(kubetrain_world_size{selector}[10m])")
    assert {float(s["value"][1]) for s in world} == {2.0}
    acc = prometheus.query(
        'max_over_time(kubetrain_val_metric{job="prom-job", metric="accuracy"}[10m])'
    )
    assert acc and 0.5 < float(acc[0]["value"][1]) <= 1.0
    steps = prometheus.query(f"max_over_time(kubetrain_step_duration_seconds_count{selector}[10m])")
    assert steps and float(steps[0]["value"][1]) > 0
