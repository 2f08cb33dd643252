"""The operator's HTTP endpoints, served for real on ephemeral ports; what it waits for before
it starts, decided from the API server's answers."""

from __future__ import annotations

import asyncio
import logging
import socket
import urllib.error
import urllib.request

import pytest

from kubetrain_operator.config import ServerSettings
from kubetrain_operator.health import (
    Answer,
    Missing,
    Needs,
    Probes,
    Servers,
    explain,
    missing,
    questions,
    wait_for_prerequisites,
)
from kubetrain_operator.metrics import Metrics
from tests.operator.helpers import http_get


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_health_readiness_and_metrics() -> None:
    state = {"ready": False, "stuck": 0.0}
    metrics = Metrics()
    metrics.created.inc()
    health, prom = _free_port(), _free_port()

    async def main() -> None:
        servers = Servers()
        probes = Probes(
            is_ready=lambda: bool(state["ready"]),
            oldest_pass_seconds=lambda: float(state["stuck"]),
            stuck_after=300,
        )
        await servers.start(
            host="127.0.0.1", health_port=health, metrics_port=prom, probes=probes,
            registry=metrics.registry,
        )  # fmt: skip
        try:
            get = asyncio.to_thread
            assert (await get(http_get, f"http://127.0.0.1:{health}/readyz"))[0] == 503
            state["ready"] = True
            assert (await get(http_get, f"http://127.0.0.1:{health}/readyz"))[0] == 200
            assert (await get(http_get, f"http://127.0.0.1:{health}/healthz"))[0] == 200
            state["stuck"] = 301.0
            code, text = await get(http_get, f"http://127.0.0.1:{health}/healthz")
            assert code == 500 and "stuck" in text
            code, text = await get(http_get, f"http://127.0.0.1:{prom}/metrics")
            assert code == 200 and "kubetrain_jobs_created_total 1.0" in text
            assert 'kubetrain_jobs{phase="Running"} 0.0' in text
        finally:
            await servers.stop()

    asyncio.run(main())


# ------------------------------------------------------------------------------ prerequisites

CLUSTER = Needs(peering="kubetrain")
TJ_API = "/apis/kubetrain.io/v1alpha1"
PEERING_API = "/apis/kopf.dev/v1"
CLUSTER_PEERING = "/apis/kopf.dev/v1/clusterkopfpeerings/kubetrain"


def _discovery(*plurals: str) -> Answer:
    return Answer(200, {"kind": "APIResourceList", "resources": [{"name": p} for p in plurals]})


EVERYTHING = {
    TJ_API: _discovery("trainingjobs", "trainingjobs/status"),
    PEERING_API: _discovery("clusterkopfpeerings", "kopfpeerings"),
    CLUSTER_PEERING: Answer(200, {"kind": "ClusterKopfPeering"}),
}


def _whats(gaps: list[Missing]) -> list[str]:
    return [m.what for m in gaps]


def test_nothing_is_missing_when_the_crds_and_the_peering_object_exist() -> None:
    assert questions(CLUSTER) == [TJ_API, PEERING_API, CLUSTER_PEERING]
    assert missing(CLUSTER, EVERYTHING) == []


def test_the_missing_cluster_peering_object_is_named_with_the_command_that_creates_it() -> None:
    """The trap: every CRD applied, no ClusterKopfPeering, and kopf acting on nothing."""
    gaps = missing(CLUSTER, {**EVERYTHING, CLUSTER_PEERING: Answer(404)})
    assert _whats(gaps) == ["the ClusterKopfPeering named 'kubetrain'"]
    text = explain(gaps)
    obj = '{"apiVersion":"kopf.dev/v1","kind":"ClusterKopfPeering","metadata":{"name":"kubetrain"}}'
    assert f"echo '{obj}' | kubectl apply -f -" in text
    assert "--standalone" in text and "the Helm chart creates it" in text
    assert "kubectl apply -f crds/" not in text


def test_an_empty_cluster_lacks_both_crds_and_the_object_and_says_apply_crds_once() -> None:
    gaps = missing(CLUSTER, {})  # every GET answered 404
    assert _whats(gaps) == [
        "the TrainingJob CRD (trainingjobs.kubetrain.io)",
        "kopf's ClusterKopfPeering CRD (clusterkopfpeerings.kopf.dev)",
        "the ClusterKopfPeering named 'kubetrain'",
    ]
    assert explain(gaps).count("kubectl apply -f crds/") == 1


def test_a_group_served_without_the_resource_does_not_count() -> None:
    gaps = missing(CLUSTER, {**EVERYTHING, PEERING_API: _discovery("kopfpeerings")})
    assert _whats(gaps) == ["kopf's ClusterKopfPeering CRD (clusterkopfpeerings.kopf.dev)"]


def test_standalone_needs_only_the_trainingjob_crd_and_offers_no_standalone_fix() -> None:
    alone = Needs(peering=None)
    assert questions(alone) == [TJ_API]
    assert missing(alone, {TJ_API: EVERYTHING[TJ_API]}) == []
    gaps = missing(alone, {})
    assert _whats(gaps) == ["the TrainingJob CRD (trainingjobs.kubetrain.io)"]
    assert "--standalone" not in explain(gaps)


def test_namespaced_peering_needs_a_kopfpeering_in_each_named_namespace() -> None:
    needs = Needs(peering="p", clusterwide=False, namespaces=("a", "b"))
    in_a, in_b = (f"/apis/kopf.dev/v1/namespaces/{ns}/kopfpeerings/p" for ns in "ab")
    assert questions(needs) == [TJ_API, PEERING_API, in_a, in_b]
    answers = {
        TJ_API: EVERYTHING[TJ_API],
        PEERING_API: _discovery("kopfpeerings"),  # the namespaced one is all it needs
        in_a: Answer(200, {"kind": "KopfPeering"}),
        in_b: Answer(404),
    }
    gaps = missing(needs, answers)
    assert _whats(gaps) == ["the KopfPeering named 'p' in namespace 'b'"]
    assert '"namespace":"b"' in gaps[0].fix


def test_an_unreachable_api_server_is_one_line_with_its_error() -> None:
    down = {p: Answer(0, error="connection refused") for p in questions(CLUSTER)}
    gaps = missing(CLUSTER, down)
    assert _whats(gaps) == ["an answer from the API server"]
    assert "connection refused" in explain(gaps) and "--kubeconfig" in explain(gaps)


def test_a_forbidden_read_names_the_path_and_rbac_rather_than_a_missing_object() -> None:
    gaps = missing(CLUSTER, {**EVERYTHING, CLUSTER_PEERING: Answer(403, error="forbidden")})
    assert _whats(gaps) == [f"the right to GET {CLUSTER_PEERING} (HTTP 403)"]
    assert "operator-rules.yaml" in gaps[0].fix


class _Cluster:
    """Answers the operator's GETs from a dict that a test changes, counting the rounds."""

    def __init__(self, answers: dict[str, Answer]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def ask(self, path: str) -> Answer:
        self.asked.append(path)
        return self.answers.get(path, Answer(404))


def test_waiting_serves_why_warns_once_and_returns_once_the_peering_exists(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cluster = _Cluster({**EVERYTHING, CLUSTER_PEERING: Answer(404)})
    health, prom = _free_port(), _free_port()
    server = ServerSettings(metrics_port=prom, health_port=health, host="127.0.0.1")
    url = f"http://127.0.0.1:{health}/readyz"

    async def main() -> None:
        waiting = asyncio.create_task(
            wait_for_prerequisites(
                CLUSTER, cluster.ask, server=server, registry=Metrics().registry, every=0.01
            )
        )
        while len(cluster.asked) < 3 * 5:  # a few rounds of the same answers
            await asyncio.sleep(0.01)
        code, text = await asyncio.to_thread(http_get, url)
        assert code == 503 and "ClusterKopfPeering named 'kubetrain'" in text
        assert (await asyncio.to_thread(http_get, f"http://127.0.0.1:{health}/healthz"))[0] == 200
        cluster.answers[CLUSTER_PEERING] = Answer(200, {})
        await asyncio.wait_for(waiting, timeout=5)
        with pytest.raises(urllib.error.URLError):  # its servers are gone: kopf's take the ports
            urllib.request.urlopen(url, timeout=1)

    with caplog.at_level(logging.INFO, logger="kubetrain_operator.health"):
        asyncio.run(main())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "ClusterKopfPeering named 'kubetrain'" in warnings[0].getMessage()
    assert "found what was missing" in caplog.records[-1].getMessage()


def test_waiting_warns_again_only_when_what_is_missing_changes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cluster = _Cluster({})
    server = ServerSettings(metrics_port=_free_port(), health_port=_free_port(), host="127.0.0.1")

    async def main() -> None:
        waiting = asyncio.create_task(
            wait_for_prerequisites(
                CLUSTER, cluster.ask, server=server, registry=Metrics().registry, every=0.01
            )
        )
        while len(cluster.asked) < 3 * 3:
            await asyncio.sleep(0.01)
        cluster.answers.update({TJ_API: EVERYTHING[TJ_API], PEERING_API: EVERYTHING[PEERING_API]})
        asked = len(cluster.asked)
        while len(cluster.asked) < asked + 3 * 3:
            await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    with caplog.at_level(logging.WARNING, logger="kubetrain_operator.health"):
        asyncio.run(main())
    first, second = (r.getMessage() for r in caplog.records)
    assert "TrainingJob CRD" in first and "TrainingJob CRD" not in second
    assert "ClusterKopfPeering named 'kubetrain'" in second


def test_nothing_is_served_or_logged_when_nothing_is_missing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cluster = _Cluster(dict(EVERYTHING))
    health = _free_port()
    server = ServerSettings(metrics_port=_free_port(), health_port=health, host="127.0.0.1")
    registry = Metrics().registry
    with caplog.at_level(logging.INFO, logger="kubetrain_operator.health"):
        asyncio.run(wait_for_prerequisites(CLUSTER, cluster.ask, server=server, registry=registry))
    assert cluster.asked == questions(CLUSTER) and caplog.records == []
