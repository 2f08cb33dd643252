"""kopf handlers: thin, each one line of work handed to the runtime.

- one daemon per TrainingJob runs its reconcile loop (kopf starts it for every job it sees and
  pauses it when peering says another replica leads; the loop ends itself when its job goes);
- watch events on a job or on its pods poke that loop;
- all kopf settings are set in `configure`, with the reasons.

The runtime comes in through kopf's memo (`memo.runtime`), built by `__main__`.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import kopf

from kubetrain.api import GROUP, PLURAL, VERSION
from kubetrain_operator._kopf.daemons import release_daemons
from kubetrain_operator._kopf.diffbase import NoDiffBase
from kubetrain_operator.health import Probes, Servers
from kubetrain_operator.reconcile import JobKey
from kubetrain_operator.render import LABEL_JOB
from kubetrain_operator.runtime import Runtime


def _runtime(memo: kopf.Memo) -> Runtime:
    runtime: Runtime = memo["runtime"]
    return runtime


@kopf.on.login()
def login(memo: kopf.Memo, settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo:
    """kopf's watches use the same credentials as our client (kubeconfig or ServiceAccount)."""
    cfg = _runtime(memo).reconciler.kube.api.configuration
    # Re-read on every login: kopf logs in again on a 401, and a bound token may have rotated.
    header = cfg.get_api_key_with_prefix("BearerToken") or cfg.get_api_key_with_prefix(
        "authorization"
    )
    scheme, _sep, token = (header or "").rpartition(" ")
    return kopf.ConnectionInfo(
        server=cfg.host,
        ca_path=cfg.ssl_ca_cert,
        insecure=not cfg.verify_ssl,
        scheme=scheme or None,
        token=token or None,
        certificate_path=cfg.cert_file,
        private_key_path=cfg.key_file,
        trust_env=settings.networking.trust_env,
    )


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    runtime = _runtime(memo)
    # The job loops end themselves when their job goes (_kopf/daemons.py): no finalizer on jobs.
    release_daemons(kopf.get_default_registry())
    # kopf's default would also write status.kopf, which the CRD's structural schema prunes.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=f"kopf.{GROUP}")
    # kopf's change detection deep-copies every event's body; nothing here uses it.
    NoDiffBase.guard(kopf.get_default_registry())
    settings.persistence.diffbase_storage = NoDiffBase(
        prefix=f"kopf.{GROUP}", key="last-handled-configuration"
    )
    # We write our own Events, one per condition change; kopf's would repeat handler logs.
    settings.posting.enabled = False
    # Watch only our pods, filtered by the API server: a cluster's other pods cost nothing.
    settings.watching.label_selectors["v1", "pods"] = LABEL_JOB
    # Seconds. A request slower than this is retried; watches have their own timeouts.
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 10
    # Seconds a stopping daemon (job deleted, peering paused) gets before it is cancelled.
    settings.background.cancellation_polling = 1

    servers = Servers()
    server = runtime.config.server
    await servers.start(
        host=server.host,
        health_port=server.health_port,
        metrics_port=server.metrics_port,
        probes=Probes(
            is_ready=lambda: runtime.ready, oldest_pass_seconds=runtime.oldest_pass_seconds
        ),
        registry=runtime.metrics.registry,
    )
    memo["servers"] = servers
    runtime.ready = True
    logging.getLogger(__name__).info(
        "kubetrain operator ready: metrics on :%d, health on :%d",
        server.metrics_port,
        server.health_port,
    )


@kopf.on.cleanup()
async def shutdown(memo: kopf.Memo, **_: Any) -> None:
    runtime = _runtime(memo)
    runtime.ready = False
    servers: Servers | None = memo.get("servers")
    if servers is not None:
        await servers.stop()
    runtime.executor.shutdown(wait=False, cancel_futures=True)


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10.0)
async def keep_job_reconciled(
    stopped: kopf.DaemonStopped,
    namespace: str | None,
    name: str,
    body: kopf.Body,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    # kopf keeps `body` up to date in place: the first pass gets a copy of it as it is now.
    seen = copy.deepcopy(dict(body))
    await _runtime(memo).keep_reconciled(JobKey(namespace or "", name), stopped, seen)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def job_changed(
    type: str,
    namespace: str | None,
    name: str,
    uid: str,
    meta: kopf.Meta,
    status: kopf.Status,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    runtime = _runtime(memo)
    if type == "DELETED":
        runtime.reconciler.forget(uid)
        runtime.poke(JobKey(namespace or "", name))  # its loop ends at the pass this wakes
    elif meta.get("generation") != status.get("observedGeneration"):
        # Only a spec edit needs a pass. Our own status writes and the driver's progress
        # leave the generation as observed; reacting to them would double every pass.
        runtime.poke(JobKey(namespace or "", name))


@kopf.on.event("v1", "pods", labels={LABEL_JOB: kopf.PRESENT})
async def pod_changed(
    type: str,
    namespace: str | None,
    labels: kopf.Labels,
    status: kopf.Status,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    if type == "ADDED" and not status.get("conditions") and not status.get("containerStatuses"):
        return  # a pod we just created, which nothing has touched yet: nothing to decide
    _runtime(memo).poke(JobKey(namespace or "", labels[LABEL_JOB]))
