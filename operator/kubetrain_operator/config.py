"""The operator's settings: small frozen dataclasses grouped by topic.

Every field says its unit and why its default is what it is. Settings are built once, at the entry
point (`__main__`), from flags; nothing below reads the environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RayPorts:
    """Ports of the Ray head, published by the job's headless Service."""

    gcs: int = 6379  # Ray's default; workers join with --address=<head-svc>:6379
    dashboard: int = 8265  # Ray's default dashboard/job API port
    metrics: int = 8080  # Ray's --metrics-export-port (Prometheus format)


@dataclass(frozen=True)
class PodSettings:
    """What the operator puts into pods beyond the job's own spec."""

    # The head runs GCS and the driver; Ray Train's workers never land on it (--num-cpus=0),
    # so it needs little. Requests equal limits: a Guaranteed head is evicted last.
    head_cpu: str = "1"
    head_memory: str = "2Gi"
    # The head's scratch disk (/tmp: Ray's session dir, logs), asked and limited.
    head_ephemeral_storage: str = "4Gi"
    ports: RayPorts = field(default_factory=RayPorts)
    # Seconds between readiness probes of the head. The probe turns True when the driver starts
    # training, which is what the Running condition shows; 2 s keeps that within seconds.
    readiness_period_seconds: int = 2
    # Seconds a pod gets to stop after SIGTERM: enough for the driver to flush a status patch.
    termination_grace_seconds: int = 30
    # Python interpreter in the trainer image, used to start the driver and worker bootstrap.
    python: str = "python"
    # User and group (and fsGroup) the pods run as: the trainer image's own non-root user.
    run_as_user: int = 1000
    # Variables every job's pods get, before the job's own spec.pod.env (which may override
    # them): the cluster's download mirrors (docs/air-gapped.md), a proxy, ... (--pod-env).
    env: tuple[tuple[str, str], ...] = ()
    # A NetworkPolicy per job: its Ray ports answer only the job's own pods (--no-network-policy
    # turns it off where the cluster's own policies fence the namespaces).
    network_policy: bool = True
    # Who may scrape the metrics ports through that policy: a JSON list of NetworkPolicyPeer
    # objects. The default, any pod in any namespace, suits a Prometheus anywhere; the chart's
    # networkPolicy.metricsFrom narrows it (--metrics-from).
    metrics_from: str = '[{"namespaceSelector": {}}]'


@dataclass(frozen=True)
class PolicySettings:
    """Timing of the failure and restart policy."""

    # Seconds a pod may report ErrImagePull/ImagePullBackOff before the job fails. The failure
    # is named in the status at once; the grace covers a registry blip on a replacement worker.
    image_pull_grace_seconds: float = 30.0
    # Upper bound, in seconds, between two reconciles of a job with nothing due. Pod and job
    # events wake a job at once; this only catches what no event announces.
    resync_seconds: float = 60.0
    # Seconds between reconciles while pods are being deleted, so a restart resumes promptly.
    deleting_poll_seconds: float = 1.0
    # Worker pods replaced in a row for the same error, with no epoch in between, before the job
    # fails: a worker that fails the same way on every start (a Ray node that cannot start in
    # its memory, a broken image) is not healing.
    max_repeated_worker_failures: int = 3


@dataclass(frozen=True)
class ServerSettings:
    """Where the operator serves its metrics and health endpoints."""

    metrics_port: int = 8000  # Prometheus /metrics
    health_port: int = 8080  # /healthz (liveness) and /readyz (readiness)
    host: str = "0.0.0.0"  # probes and scrapes come from outside the pod


@dataclass(frozen=True)
class OperatorConfig:
    pods: PodSettings = field(default_factory=PodSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    # Threads doing blocking API calls; each job reconciles in one of them at a time. 16 keeps
    # 100 simultaneous new jobs within a second on two cores without flooding the API server.
    reconcile_threads: int = 16
    # Component name on Events the operator writes (`kubectl describe` shows it as From).
    event_source: str = "kubetrain-operator"
