"""What the operator waits for before it acts, against a real API server (tests/apiserver.py):
the CRDs applied from crds/, and the peering object that only the chart creates."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from kubetrain_operator.__main__ import _ask, needs
from kubetrain_operator.health import Missing, check
from kubetrain_operator.render.install import peering_object
from tests.apiserver import ApiServer, free_port, wait_until
from tests.conftest import job_dict
from tests.operator.helpers import http_get

pytestmark = [pytest.mark.apiserver, pytest.mark.slow]


def _missing(apiserver: ApiServer, namespaces: list[str], *, peering: str) -> list[str]:
    kube = apiserver.kube()
    wanted = needs(namespaces, standalone=False, peering=peering)
    gaps: list[Missing] = asyncio.run(check(wanted, lambda path: _ask(kube, path)))
    return [m.what for m in gaps]


def test_the_check_sees_the_crds_and_waits_for_the_peering_object(apiserver: ApiServer) -> None:
    name = f"p-{uuid.uuid4().hex[:6]}"
    assert _missing(apiserver, [], peering=name) == [f"the ClusterKopfPeering named '{name}'"]
    apiserver.create(peering_object(name))
    assert _missing(apiserver, [], peering=name) == []

    # Namespaced: a KopfPeering in each watched namespace; a pattern's are not checked.
    ns = f"ns-{uuid.uuid4().hex[:6]}"
    apiserver.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    assert _missing(apiserver, [ns, "team-*"], peering=name) == [
        f"the KopfPeering named '{name}' in namespace '{ns}'"
    ]
    apiserver.create(peering_object(name, namespace=ns))
    assert _missing(apiserver, [ns, "team-*"], peering=name) == []


def test_the_operator_is_not_ready_and_says_why_until_the_peering_exists_then_acts(
    apiserver: ApiServer, tmp_path: Path
) -> None:
    """The trap, end to end: every CRD applied, no ClusterKopfPeering, `kubetrain-operator` run
    from a checkout. It must say it is not ready, and why, and act once the peering exists."""
    name = f"op-{uuid.uuid4().hex[:6]}"
    health = free_port()
    job = job_dict()
    job["metadata"] = {"name": f"tj-{uuid.uuid4().hex[:6]}", "namespace": "default"}
    apiserver.create(job)
    log = tmp_path / "operator.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kubetrain_operator", "--kubeconfig", str(apiserver.kubeconfig),
             "--peering", name, "--health-port", str(health), "--metrics-port", str(free_port()),
             "--bind", "127.0.0.1", "--threads", "2"],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    readyz = f"http://127.0.0.1:{health}/readyz"
    try:
        code, text = wait_until("/readyz to answer", lambda: http_get(readyz), timeout=60)
        assert code == 503, text
        assert f"the ClusterKopfPeering named '{name}'" in text
        assert "--standalone" in text
        time.sleep(2.5)  # a few more checks (one a second): still not ready, no second warning
        assert http_get(readyz)[0] == 503
        job_status = (
            f"/apis/kubetrain.io/v1alpha1/namespaces/default/trainingjobs/{job['metadata']['name']}"
        )
        assert not (apiserver.request("GET", job_status) or {}).get("status"), "it acted unpeered"
        warnings = [line for line in log.read_text().splitlines() if " WARNING " in line]
        assert len(warnings) == 1, log.read_text()
        assert "acts on no TrainingJob until these exist" in warnings[0]

        t0 = time.monotonic()
        apiserver.create(peering_object(name))
        wait_until("/readyz 200", lambda: http_get(readyz)[0] == 200, timeout=30)
        ready_after = time.monotonic() - t0
        wait_until(
            "the operator to write the job's status",
            lambda: (apiserver.request("GET", job_status) or {}).get("status"),
            timeout=30,
        )
        acted_after = time.monotonic() - t0
        print(f"\nready {ready_after:.1f}s and acting {acted_after:.1f}s after the peering")
        text = log.read_text()
        assert "found what was missing" in text and "kubetrain operator ready" in text
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        apiserver.delete(job)
        print(log.read_text()[-3000:])


def test_sigterm_while_waiting_stops_the_operator_at_once(apiserver: ApiServer) -> None:
    """In a pod the operator is PID 1, which SIGTERM does not kill unless it is handled."""
    health = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubetrain_operator", "--kubeconfig", str(apiserver.kubeconfig),
         "--peering", f"none-{uuid.uuid4().hex[:6]}", "--health-port", str(health),
         "--metrics-port", str(free_port()), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        readyz = f"http://127.0.0.1:{health}/readyz"
        assert wait_until("/readyz to answer", lambda: http_get(readyz), timeout=60)[0] == 503
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - t0 < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
