"""The operator's HTTP endpoints, served for real on ephemeral ports."""

from __future__ import annotations

import asyncio
import socket
import urllib.error
import urllib.request

from kubetrain_operator.health import Probes, Servers
from kubetrain_operator.metrics import Metrics


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


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
            assert (await get(_get, f"http://127.0.0.1:{health}/readyz"))[0] == 503
            state["ready"] = True
            assert (await get(_get, f"http://127.0.0.1:{health}/readyz"))[0] == 200
            assert (await get(_get, f"http://127.0.0.1:{health}/healthz"))[0] == 200
            state["stuck"] = 301.0
            code, text = await get(_get, f"http://127.0.0.1:{health}/healthz")
            assert code == 500 and "stuck" in text
            code, text = await get(_get, f"http://127.0.0.1:{prom}/metrics")
            assert code == 200 and "kubetrain_jobs_created_total 1.0" in text
            assert 'kubetrain_jobs{phase="Running"} 0.0' in text
        finally:
            await servers.stop()

    asyncio.run(main())
