"""HTTP endpoints: /healthz (liveness), /readyz (readiness) and /metrics (Prometheus); and the
check of what the operator needs in the cluster before it can act.

Liveness fails when a reconcile pass has been stuck for longer than `stuck_after` seconds (a
wedged API connection or thread): restarting the pod is then the cure.

Readiness waits for the cluster to hold what the operator needs: the TrainingJob CRD and, unless
it runs `--standalone`, kopf's peering CRD and the peering object it names. Without them kopf
starts, says nothing, and acts on nothing: it keeps every watch paused until the peering object
exists, and where it scans CRDs only once (a namespaced install) it never sees a CRD applied
later. So the entry point waits for them before it starts kopf (`wait_for_prerequisites`): /readyz
answers 503 naming what is missing, one warning says how to fix it, and kopf starts once it is all
there (its startup handler then turns /readyz ready). `missing` decides, purely, from the API
server's answers to `questions`; the caller's `ask` does the GETs.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from kubetrain.api import GROUP, PLURAL, VERSION
from kubetrain_operator.config import ServerSettings
from kubetrain_operator.render.install import PEERING_GROUP, peering_object

log = logging.getLogger(__name__)


def _starting() -> str:
    return "starting"


@dataclass(frozen=True)
class Probes:
    is_ready: Callable[[], bool]
    oldest_pass_seconds: Callable[[], float]
    stuck_after: float = 300.0  # seconds; a pass is a few API calls, 5 min means it hangs
    # What /readyz says while not ready.
    not_ready_reason: Callable[[], str] = _starting


def _health_app(probes: Probes) -> web.Application:
    async def healthz(request: web.Request) -> web.Response:
        age = probes.oldest_pass_seconds()
        if age > probes.stuck_after:
            return web.Response(status=500, text=f"a reconcile pass is stuck for {age:.0f}s\n")
        return web.Response(text="ok\n")

    async def readyz(request: web.Request) -> web.Response:
        if probes.is_ready():
            return web.Response(text="ok\n")
        return web.Response(status=503, text=probes.not_ready_reason().rstrip("\n") + "\n")

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


# ------------------------------------------------------------------------------ prerequisites


@dataclass(frozen=True)
class Needs:
    """What the operator needs in the cluster, from its flags."""

    peering: str | None  # the (Cluster)KopfPeering's name (--peering); None: --standalone
    clusterwide: bool = True  # a ClusterKopfPeering; else a KopfPeering per watched namespace
    # Namespaced: where a KopfPeering must exist. Exact names only: a pattern's namespaces are
    # kopf's to find, so for them only the CRD is checked.
    namespaces: tuple[str, ...] = ()


@dataclass(frozen=True)
class Answer:
    """The API server's answer to one GET."""

    status: int  # HTTP status; 0: no answer at all (unreachable, TLS, timeout)
    body: Mapping[str, Any] = field(default_factory=dict)  # the decoded JSON of a 200
    error: str = ""  # what went wrong, when not 200


@dataclass(frozen=True)
class Missing:
    what: str  # the same for as long as the same thing is missing: logging compares it
    fix: str  # a command, or what to do
    detail: str = ""  # an error text, which may differ between tries
    peering: bool = False  # a part of peering: --standalone does without it


_TRAININGJOB_API = f"/apis/{GROUP}/{VERSION}"
_PEERING_API = f"/apis/{PEERING_GROUP}/v1"
_CLUSTER_PEERINGS, _PEERINGS = "clusterkopfpeerings", "kopfpeerings"
APPLY_CRDS = "kubectl apply -f crds/ (from a checkout; the Helm chart installs them)"
STANDALONE = "or, with one replica only, run kubetrain-operator with --standalone (no peering)"


def _peering_path(needs: Needs, namespace: str | None) -> str:
    if namespace is None:
        return f"{_PEERING_API}/{_CLUSTER_PEERINGS}/{needs.peering}"
    return f"{_PEERING_API}/namespaces/{namespace}/{_PEERINGS}/{needs.peering}"


def _peering_namespaces(needs: Needs) -> list[str | None]:
    return [None] if needs.clusterwide else list(needs.namespaces)


def questions(needs: Needs) -> list[str]:
    """The paths to GET: API discovery for the CRDs (what kopf reads, and every authenticated
    client may), and the peering objects themselves."""
    paths = [_TRAININGJOB_API]
    if needs.peering is not None:
        paths.append(_PEERING_API)
        paths += [_peering_path(needs, ns) for ns in _peering_namespaces(needs)]
    return paths


def _serves(answer: Answer, plural: str) -> bool:
    return answer.status == 200 and any(
        r.get("name") == plural for r in answer.body.get("resources", [])
    )


def _failure(path: str, answer: Answer) -> Missing:
    if answer.status == 0:
        fix = "check that the API server is up and that --kubeconfig (or $KUBECONFIG) points at it"
        return Missing("an answer from the API server", fix, answer.error)
    if answer.status in (401, 403):
        fix = (
            "give the operator the chart's RBAC rules (charts/kubetrain/files/operator-rules.yaml)"
            " or use a kubeconfig that has them"
        )
        return Missing(f"the right to GET {path} (HTTP {answer.status})", fix, answer.error)
    fix = "none, if it passes: it is asked again every second"
    return Missing(f"a good answer to GET {path} (HTTP {answer.status})", fix, answer.error)


def missing(needs: Needs, answers: Mapping[str, Answer]) -> list[Missing]:
    """What is missing, given the answers to `questions(needs)` (an unasked path counts as a
    404). Empty: the operator can start."""
    unanswered = Answer(404)
    got = {path: answers.get(path, unanswered) for path in questions(needs)}
    down = [a for a in got.values() if a.status == 0]
    if down:  # one line for the lot, not one per question
        return [_failure("", down[0])]
    out = [_failure(p, a) for p, a in got.items() if a.status not in (200, 404)]
    if not _serves(got[_TRAININGJOB_API], PLURAL):
        out.append(Missing(f"the TrainingJob CRD ({PLURAL}.{GROUP})", APPLY_CRDS))
    if needs.peering is None:
        return out
    kind, plural = ("ClusterKopfPeering", _CLUSTER_PEERINGS)
    if not needs.clusterwide:
        kind, plural = ("KopfPeering", _PEERINGS)
    if not _serves(got[_PEERING_API], plural):
        out.append(
            Missing(f"kopf's {kind} CRD ({plural}.{PEERING_GROUP})", APPLY_CRDS, peering=True)
        )
    for ns in _peering_namespaces(needs):
        if got[_peering_path(needs, ns)].status == 404:
            obj = json.dumps(peering_object(needs.peering, namespace=ns), separators=(",", ":"))
            where = "" if ns is None else f" in namespace {ns!r}"
            out.append(Missing(
                f"the {kind} named {needs.peering!r}{where}",
                f"echo '{obj}' | kubectl apply -f -",
                detail="kopf keeps every watch paused until it exists; the Helm chart creates it",
                peering=True,
            ))  # fmt: skip
    return out


def explain(gaps: Sequence[Missing]) -> str:
    """What is missing and the fixes, for the log and for /readyz."""
    lines = ["not ready: the operator acts on no TrainingJob until these exist:"]
    lines += [f"  - {m.what}" + (f": {m.detail}" if m.detail else "") for m in gaps]
    fixes = list(dict.fromkeys(m.fix for m in gaps))
    if any(m.peering for m in gaps):
        fixes.append(STANDALONE)
    lines.append("fix:")
    lines += [f"  {fix}" for fix in fixes]
    return "\n".join(lines)


async def check(needs: Needs, ask: Callable[[str], Answer]) -> list[Missing]:
    """Asks the API server (`ask` blocks: one thread asks, one question at a time, so as to
    take one connection of the client's pool) and says what is missing."""
    answers = await asyncio.to_thread(lambda: {path: ask(path) for path in questions(needs)})
    return missing(needs, answers)


async def wait_for_prerequisites(
    needs: Needs,
    ask: Callable[[str], Answer],
    *,
    server: ServerSettings,
    registry: CollectorRegistry,
    every: float = 1.0,
) -> None:
    """Returns once the cluster holds what `needs` names; at once when it does already.

    Meanwhile it serves /healthz (ok: a restart would not help), /readyz (503, what is missing)
    and /metrics, and logs a warning with the fixes whenever what is missing changes (once, for
    as long as nothing changes). Cancel it to give up; it stops its servers either way.
    """
    gaps = await check(needs, ask)
    if not gaps:
        return
    servers = Servers()
    await servers.start(
        host=server.host,
        health_port=server.health_port,
        metrics_port=server.metrics_port,
        probes=Probes(
            is_ready=lambda: False,
            oldest_pass_seconds=lambda: 0.0,
            not_ready_reason=lambda: explain(gaps),
        ),
        registry=registry,
    )
    first = [m.what for m in gaps]
    try:
        logged: list[str] = []
        while gaps:
            if [m.what for m in gaps] != logged:
                logged = [m.what for m in gaps]
                log.warning("%s\n(checking again every %gs)", explain(gaps), every)
            await asyncio.sleep(every)
            gaps = await check(needs, ask)
    finally:
        await servers.stop()
    log.info("found what was missing (%s): starting", "; ".join(first))
