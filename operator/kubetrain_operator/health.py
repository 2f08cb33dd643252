"""HTTP endpoints: /healthz (liveness), /readyz (readiness) and /metrics (Prometheus).

Liveness fails when a reconcile pass has been stuck for longer than `stuck_after` seconds (a
wedged API connection or thread): restarting the pod is then the cure. Readiness turns on once
the startup handler has checked the API server and the CRD.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


@dataclass(frozen=True)
class Probes:
    is_ready: Callable[[], bool]
    oldest_pass_seconds: Callable[[], float]
    stuck_after: float = 300.0  # seconds; a pass is a few API calls, 5 min means it hangs


def _health_app(probes: Probes) -> web.Application:
    async def healthz(request: web.Request) -> web.Response:
        age = probes.oldest_pass_seconds()
        if age > probes.stuck_after:
            return web.Response(status=500, text=f"a reconcile pass is stuck for {age:.0f}s\n")
        return web.Response(text="ok\n")

    async def readyz(request: web.Request) -> web.Response:
        if probes.is_ready():
            return web.Response(text="ok\n")
        return web.Response(status=503, text="starting\n")

    app = web.Application()
    app.add_routes([web.get("/healthz", healthz), web.get("/readyz", readyz)])
    return app


def _metrics_app(registry: CollectorRegistry) -> web.Application:
    async def metrics(request: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.add_routes([web.get("/metrics", metrics)])
    return app


class Servers:
    """The health and metrics servers, on the operator's event loop."""

    def __init__(self) -> None:
        self.runners: list[web.AppRunner] = []

    async def start(
        self,
        *,
        host: str,
        health_port: int,
        metrics_port: int,
        probes: Probes,
        registry: CollectorRegistry,
    ) -> None:
        apps = ((_health_app(probes), health_port), (_metrics_app(registry), metrics_port))
        for app, port in apps:
            runner = web.AppRunner(app, handle_signals=False, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, host, port).start()
            self.runners.append(runner)

    async def stop(self) -> None:
        for runner in self.runners:
            await runner.cleanup()
        self.runners.clear()
