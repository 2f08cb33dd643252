"""`kubetrain-operator`: run the operator (the only place that reads flags and the environment)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import re
import signal
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from kubetrain_operator.config import OperatorConfig, PodSettings, PolicySettings, ServerSettings
from kubetrain_operator.health import Answer, Needs, wait_for_prerequisites

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from kubetrain_operator.kube import Kube


def _parser() -> argparse.ArgumentParser:
    defaults = OperatorConfig()
    p = argparse.ArgumentParser(prog="kubetrain-operator", description=__doc__)
    scope = p.add_argument_group("scope")
    scope.add_argument(
        "-n", "--namespace", action="append", default=[],
        help="watch only this namespace (repeatable); default: the whole cluster",
    )  # fmt: skip
    scope.add_argument("--kubeconfig", help="kubeconfig file; default: $KUBECONFIG or in-cluster")
    peering = p.add_argument_group("peering (one active replica)")
    peering.add_argument(
        "--peering", default="kubetrain",
        help="name of the (Cluster)KopfPeering object shared by the replicas",
    )  # fmt: skip
    peering.add_argument(
        "--priority", type=int,
        help="this replica's peering priority; default: random, so exactly one replica leads",
    )  # fmt: skip
    peering.add_argument("--standalone", action="store_true", help="no peering (one replica)")
    servers = p.add_argument_group("endpoints")
    servers.add_argument("--metrics-port", type=int, default=defaults.server.metrics_port)
    servers.add_argument("--health-port", type=int, default=defaults.server.health_port)
    servers.add_argument("--bind", default=defaults.server.host, help="address to serve on")
    policy = p.add_argument_group("policy")
    policy.add_argument(
        "--image-pull-grace", type=float, default=defaults.policy.image_pull_grace_seconds,
        help="seconds a pod may fail to pull its image before the job fails",
    )  # fmt: skip
    policy.add_argument(
        "--resync", type=float, default=defaults.policy.resync_seconds,
        help="seconds between reconciles of a job that no event wakes",
    )  # fmt: skip
    p.add_argument("--threads", type=int, default=defaults.reconcile_threads)
    p.add_argument("--head-cpu", default=defaults.pods.head_cpu)
    p.add_argument("--head-memory", default=defaults.pods.head_memory)
    p.add_argument(
        "--head-ephemeral-storage", default=defaults.pods.head_ephemeral_storage,
        help="the head pod's scratch disk (its /tmp), asked and limited",
    )  # fmt: skip
    p.add_argument(
        "--no-network-policy", dest="network_policy", action="store_false",
        help="no per-job NetworkPolicy (where the cluster fences namespaces itself)",
    )  # fmt: skip
    p.add_argument(
        "--metrics-from", type=metrics_from, default=defaults.pods.metrics_from,
        metavar="JSON", help="NetworkPolicyPeer list allowed to scrape the jobs' metrics ports",
    )  # fmt: skip
    p.add_argument(
        "--pod-env", action="append", default=[], type=pod_env, metavar="NAME=VALUE",
        help="a variable every job pod gets (repeatable), e.g. a download mirror; a job's own "
        "spec.pod.env overrides it",
    )  # fmt: skip
    p.add_argument("--log-level", default="INFO")
    return p


def pod_env(text: str) -> tuple[str, str]:
    """`NAME=VALUE` for --pod-env."""
    name, sep, value = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise argparse.ArgumentTypeError(
            f"{text!r}: write NAME=VALUE, NAME a variable name (letters, digits, _)"
        )
    return name, value


def metrics_from(text: str) -> str:
    """--metrics-from: a JSON list of NetworkPolicyPeer objects, kept as given."""
    try:
        peers = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(peers, list) or not all(isinstance(p, dict) for p in peers):
        raise argparse.ArgumentTypeError(
            'a JSON list of NetworkPolicyPeer objects, e.g. [{"namespaceSelector": {}}]'
        )
    return text


def exact_namespaces_only(namespaces: Sequence[str]) -> bool:
    """True when every --namespace is a plain name, none a kopf pattern (`team-*`, `!x`, `a,b`)."""
    return bool(namespaces) and not any(set(ns) & set("!*?,") for ns in namespaces)


def needs(namespaces: Sequence[str], *, standalone: bool, peering: str) -> Needs:
    """What must exist in the cluster before kopf starts: the TrainingJob CRD and, with peering,
    kopf's peering CRD and object (a ClusterKopfPeering, or a KopfPeering per namespace)."""
    if standalone:
        return Needs(peering=None)
    exact = tuple(ns for ns in namespaces if exact_namespaces_only([ns]))
    return Needs(peering=peering, clusterwide=not namespaces, namespaces=exact)


def _ask(kube: Kube, path: str) -> Answer:
    """GET `path`; every failure is an answer (status 0: no answer at all)."""
    from kubetrain_operator.kube import ApiError

    try:
        body = kube._call("GET", path)
    except ApiError as e:
        return Answer(e.status, error=str(e))
    except Exception as e:  # urllib3's: refused, TLS, timeout
        return Answer(0, error=f"{type(e).__name__}: {e}")
    return Answer(404) if body is None else Answer(200, body)


def _wait_until_ready_to_start(
    wanted: Needs, kube: Kube, server: ServerSettings, registry: CollectorRegistry
) -> bool:
    """Waits for `wanted` (see health.py); False when SIGTERM or SIGINT came first."""

    async def wait() -> bool:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await wait_for_prerequisites(
                wanted, lambda path: _ask(kube, path), server=server, registry=registry
            )
        except asyncio.CancelledError:
            return False
        return True

    return asyncio.run(wait())


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # kopf logs every handler call at INFO; our own log lines say what matters.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    # Imported here so that `--help` is instant and the trainer image never imports kopf.
    import kopf

    from kubetrain_operator import handlers  # noqa: F401  (registers the handlers)
    from kubetrain_operator.kube import Kube, api_client
    from kubetrain_operator.metrics import Metrics
    from kubetrain_operator.reconcile import Reconciler
    from kubetrain_operator.runtime import Runtime

    config = OperatorConfig(
        pods=PodSettings(
            head_cpu=args.head_cpu,
            head_memory=args.head_memory,
            head_ephemeral_storage=args.head_ephemeral_storage,
            env=tuple(args.pod_env),
            network_policy=args.network_policy,
            metrics_from=args.metrics_from,
        ),
        policy=PolicySettings(
            image_pull_grace_seconds=args.image_pull_grace, resync_seconds=args.resync
        ),
        server=ServerSettings(
            metrics_port=args.metrics_port, health_port=args.health_port, host=args.bind
        ),
        reconcile_threads=args.threads,
    )
    in_cluster = args.kubeconfig is None and "KUBERNETES_SERVICE_HOST" in os.environ
    api = api_client(
        kubeconfig=args.kubeconfig, in_cluster=in_cluster, pool_size=config.reconcile_threads
    )
    metrics = Metrics()
    kube = Kube(api)
    # kopf, started without them, would wait in silence (see health.py): wait here, saying why.
    wanted = needs(args.namespace, standalone=args.standalone, peering=args.peering)
    if not _wait_until_ready_to_start(wanted, kube, config.server, metrics.registry):
        return 0
    runtime = Runtime(
        config=config,
        reconciler=Reconciler(kube, config, metrics),
        metrics=metrics,
        executor=ThreadPoolExecutor(config.reconcile_threads, thread_name_prefix="reconcile"),
    )
    # kopf pauses every replica that sees another of the same priority; random ones elect one.
    priority = args.priority if args.priority is not None else random.randint(1, 2**31)
    settings = kopf.OperatorSettings()
    # Plain namespace names need no cluster-wide reads, so a namespaced install (Roles only)
    # has none: kopf then neither lists namespaces nor watches CRDs. With scanning on and no
    # right to do either, kopf retries the 403s for about a minute before it starts working.
    settings.scanning.disabled = exact_namespaces_only(args.namespace)
    kopf.run(
        settings=settings,
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=args.standalone,
        priority=priority,
        # Naming the peering makes it mandatory: replicas wait for the peering CRD rather than
        # all acting at once. kopf applies that even when standalone, so only name it then.
        peering_name=None if args.standalone else args.peering,
        memo=kopf.Memo(runtime=runtime),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
