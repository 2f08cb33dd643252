"""The path a user takes: apply examples/mnist-mlp.yaml, watch it succeed, find its metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from e2e.tests.conftest import (
    Figures,
    Operator,
    example_job,
    is_local_cluster,
    wait_for_phase,
)
from e2e.tests.kube import Kubectl, Obj, wait_for
from e2e.tests.prometheus import PROMETHEUS, Prometheus, annotated_targets, port_targets

JOB = "mnist-mlp"
PHASES = {"Pending", "Starting", "Running", "Restarting", "Suspended", "Succeeded", "Failed"}


@pytest.fixture(scope="module")
def prometheus(
    kubectl: Kubectl, operator: Operator, namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus | None]:
    """Scrapes the training pods and the operator while the example trains (local cluster)."""
    if PROMETHEUS is None or not is_local_cluster(kubectl):
        # The job still runs; only the Prometheus test skips, saying why.
        yield None
        return
    server = Prometheus(tmp_path_factory.mktemp("prometheus"))

    def operator_targets() -> list[Obj]:
        if operator.metrics_url is not None:  # on the host
            return [{"targets": [operator.metrics_url], "labels": {"pod": "host"}}]
        if operator.namespace is None:
            return []
        pods = kubectl.items("pods", namespace=operator.namespace, selector=operator.pod_selector())
        return port_targets(pods, "metrics")

    server.start(
        {
            "kubetrain-training": lambda: annotated_targets(
                kubectl.items("pods", namespace=namespace)
            ),
            "kubetrain-operator": operator_targets,
        },
        honor=set(),  # as the chart's PodMonitor: the pods' own labels are not trusted
    )
    yield server
    server.stop()


@dataclass(frozen=True)
class Finished:
    status: Obj
    seconds: float  # from `kubectl apply` to Succeeded
    watched: list[str]  # what `kubectl get tj -w` printed meanwhile


@pytest.fixture(scope="module")
def mnist(
    kubectl: Kubectl,
    namespace: str,
    checkpoint_claim: str,
    prometheus: Prometheus | None,
    figures: Figures,
) -> Finished:
    """examples/mnist-mlp.yaml (2 workers, offline digits) with its checkpoints on a claim,
    applied and run to the end."""
    with kubectl.watch("trainingjobs", namespace=namespace) as watched:
        t0 = time.monotonic()
        kubectl.apply(example_job(JOB, namespace, claim=checkpoint_claim))
        wait_for_phase(kubectl, JOB, namespace, {"Running", "Succeeded"}, timeout=600)
        figures.record("mnist.seconds_to_running", round(time.monotonic() - t0, 1))
        status = wait_for_phase(kubectl, JOB, namespace, {"Succeeded"}, timeout=900)
        seconds = time.monotonic() - t0
    finished = Finished(status, seconds, watched)
    figures.record("mnist.kubectl_get_tj_w", watched)
    figures.record("mnist.seconds_to_succeeded", round(finished.seconds, 1))
    figures.record("mnist.val_accuracy", status.get("metrics", {}).get("val_accuracy"))
    figures.record("mnist.samples_per_second", status.get("samplesPerSecond"))
    return finished


def test_mnist_example_succeeds_with_accuracy_in_status(mnist: Finished) -> None:
    status = mnist.status
    assert status["phase"] == "Succeeded"
    assert status["progress"] == "10/10"
    # The MLP on the digits reaches about 0.95; a broken data path or sync sits near 0.1.
    assert status["metrics"]["val_accuracy"] > 0.85, status
    assert status["metricSummary"].startswith("accuracy=")
    assert status["checkpoint"].startswith("/kubetrain/runs/"), status
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Succeeded"]["reason"] == "TrainingCompleted"


def test_kubectl_get_tj_w_shows_the_phases_epochs_and_metric(mnist: Finished) -> None:
    header, *lines = mnist.watched
    assert header.split() == ["NAME", "MODEL", "BACKEND", "WORKERS", "PHASE", "EPOCH", "METRIC",
                              "AGE"], header  # fmt: skip
    rows = [line.split() for line in lines if line.split()[0] == JOB]
    phases = [r[4] for r in rows if len(r) > 4 and r[4] in PHASES]
    seen = [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p]
    # Pending may pass too fast to be printed; the rest a user watching must see, in order.
    assert [p for p in seen if p != "Pending"] == ["Starting", "Running", "Succeeded"], rows
    last = rows[-1]
    assert last[1:4] == ["mlp", "ddp", "2"] and last[5] == "10/10", last
    name, _, value = last[6].partition("=")
    assert name == "accuracy" and float(value) > 0.85, last


def test_prometheus_holds_the_jobs_series(
    mnist: Finished, prometheus: Prometheus | None, namespace: str
) -> None:
    if prometheus is None:
        pytest.skip(
            "needs Debian's prometheus and pod IPs routable from this machine (e2e/cluster.sh)"
        )
    # The workers' series, labelled with the job (from the pods' metadata), both ranks.
    series = prometheus.series(f'{{__name__=~"kubetrain_.+",job="{JOB}",namespace="{namespace}"}}')
    names = {s["__name__"] for s in series}
    assert {"kubetrain_val_metric", "kubetrain_samples_per_second", "kubetrain_epoch"} <= names
    assert {s["rank"] for s in series if s["__name__"] == "kubetrain_epoch"} == {"0", "1"}
    # The operator counted the success (scraped a moment after the job finished).
    wait_for(
        "the operator's kubetrain_jobs_succeeded_total in Prometheus",
        lambda: any(
            float(r["value"][1]) >= 1
            for r in prometheus.query('kubetrain_jobs_succeeded_total{job="kubetrain-operator"}')
        ),
        timeout=30,
        every=2,
    )
