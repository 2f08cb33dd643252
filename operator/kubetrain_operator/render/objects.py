"""Pure builders for everything a TrainingJob owns: dicts in, dicts out, no client.

Each builder takes the job whose spec the pods run with (the operator freezes it in the ConfigMap
when the job starts) and returns the object exactly as it is created, owner reference included.
"""

from __future__ import annotations

import json
import math
import posixpath

from kubetrain.api import GROUP, PLURAL, Backend, TrainingJob
from kubetrain.api.constants import DEEPSPEED_CONFIG_DIR, DEEPSPEED_CONFIG_KEY
from kubetrain.api.pod_rules import dataset_mount_path
from kubetrain.api.quantities import cpu_cores
from kubetrain.api.sources import SOURCES
from kubetrain.pods import contract
from kubetrain_operator.config import PodSettings
from kubetrain_operator.kubeobj import Obj
from kubetrain_operator.render import gang
from kubetrain_operator.render.names import (
    ANNOTATION_GENERATION,
    LABEL_ATTEMPT,
    LABEL_JOB,
    LABEL_MANAGED_BY,
    LABEL_RANK,
    LABEL_ROLE,
    MANAGED_BY,
    PASSED_THROUGH_LABELS,
    Role,
    config_map_name,
    driver_rbac_name,
    head_pod_name,
    network_policy_name,
    owner_reference,
    ray_token_secret_name,
    service_name,
    worker_pod_name,
)

SA_TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# Pods run with a read-only root filesystem. What they write goes to volumes: /tmp (HOME, Ray's
# session dir, the readiness marker) is an emptyDir, and a local checkpoint dir is the job's
# claim (checkpoint.claimName).
TMP_DIR = "/tmp"
# A relative checkpoint.storagePath lives under this directory in pods.
STORAGE_ROOT = "/kubetrain"
RAY_TOKEN_KEY = "token"


# --------------------------------------------------------------------------- metadata


def job_labels(job: TrainingJob) -> dict[str, str]:
    labels = {LABEL_JOB: job.name, LABEL_MANAGED_BY: MANAGED_BY}
    for key in PASSED_THROUGH_LABELS:
        if key in job.metadata.labels:
            labels[key] = job.metadata.labels[key]
    return labels


def _pod_metadata(job: TrainingJob, name: str, labels: dict[str, str]) -> Obj:
    """A pod's metadata: the user's pod labels and annotations, then kubetrain's (which win)."""
    meta = _metadata(job, name, labels)
    # The gang's and Kueue's marks: the pod's PodGroup, or its attempt's Kueue pod group.
    group_labels, group_annotations = gang.pod_marks(job, labels[LABEL_ATTEMPT])
    meta["labels"] = {**job.spec.pod.labels, **meta["labels"], **group_labels}
    annotations = {**job.spec.pod.annotations, **group_annotations}
    if annotations:
        meta["annotations"] = annotations
    return meta


def _worker_spread(job: TrainingJob) -> list[Obj]:
    """The user's spread constraints; one without a labelSelector spreads this job's workers."""
    selector = {"matchLabels": {LABEL_JOB: job.name, LABEL_ROLE: Role.WORKER.value}}
    return [
        {"labelSelector": selector} | constraint
        for constraint in job.spec.pod.topology_spread_constraints
    ]


def _metadata(job: TrainingJob, name: str, labels: dict[str, str] | None = None) -> Obj:
    if job.metadata.uid is None:
        raise ValueError(f"TrainingJob {job.name!r} has no uid; render it from the API object")
    return {
        "name": name,
        "namespace": job.namespace,
        "labels": {**job_labels(job), **(labels or {})},
        "ownerReferences": [owner_reference(name=job.name, uid=job.metadata.uid)],
    }


# --------------------------------------------------------------------------- config and service


def resolved_job(job: TrainingJob) -> Obj:
    """The TrainingJob as the driver reads it: the spec with every default filled in."""
    return {
        "apiVersion": job.api_version,
        "kind": job.kind,
        "metadata": {"name": job.name, "namespace": job.namespace},
        "spec": job.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
    }


def config_map(job: TrainingJob) -> Obj:
    meta = _metadata(job, config_map_name(job.name))
    meta["annotations"] = {ANNOTATION_GENERATION: str(job.metadata.generation or 0)}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {contract.CONFIG_KEY: json.dumps(resolved_job(job), indent=2, sort_keys=True)},
    }


def head_service(job: TrainingJob, settings: PodSettings) -> Obj:
    ports = settings.ports
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(job, service_name(job.name)),
        "spec": {
            # Headless: workers resolve the head pod's own IP, no kube-proxy hop for GCS traffic.
            "clusterIP": "None",
            # The head turns Ready only once workers have joined; they must resolve it before.
            "publishNotReadyAddresses": True,
            "selector": {LABEL_JOB: job.name, LABEL_ROLE: Role.HEAD.value},
            "ports": [
                {"name": "gcs", "port": ports.gcs, "targetPort": ports.gcs},
                *(
                    [{"name": "dashboard", "port": ports.dashboard, "targetPort": ports.dashboard}]
                    if job.spec.distributed.ray_dashboard
                    else []
                ),
                {"name": "metrics", "port": ports.metrics, "targetPort": ports.metrics},
            ],
        },
    }


def head_address(job: TrainingJob, settings: PodSettings) -> str:
    return f"{service_name(job.name)}.{job.namespace}.svc:{settings.ports.gcs}"


# --------------------------------------------------------------------------- driver RBAC


def driver_service_account_name(job: TrainingJob) -> str:
    """The head runs as the user's ServiceAccount if one is set, else as a per-job one."""
    return job.spec.pod.service_account_name or driver_rbac_name(job.name)


def driver_service_account(job: TrainingJob) -> Obj | None:
    if job.spec.pod.service_account_name:
        return None
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(job, driver_rbac_name(job.name)),
    }


def driver_role(job: TrainingJob) -> Obj:
    """The driver may read its own TrainingJob and patch its status, and nothing else."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _metadata(job, driver_rbac_name(job.name)),
        "rules": [
            {
                "apiGroups": [GROUP],
                "resources": [PLURAL],
                "resourceNames": [job.name],
                "verbs": ["get"],
            },
            {
                "apiGroups": [GROUP],
                "resources": [f"{PLURAL}/status"],
                "resourceNames": [job.name],
                "verbs": ["get", "patch"],
            },
        ],
    }


def driver_role_binding(job: TrainingJob) -> Obj:
    name = driver_rbac_name(job.name)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _metadata(job, name),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [
            {
                "kind": "ServiceAccount",
                "name": driver_service_account_name(job),
                "namespace": job.namespace,
            }
        ],
    }


def support_objects(job: TrainingJob, settings: PodSettings, *, ray_token: str) -> list[Obj]:
    """Everything but the pods. The ServiceAccount and the token Secret come first: pod
    admission checks the one, and the pods' containers wait for the other."""
    objects: list[Obj] = []
    account = driver_service_account(job)
    if account is not None:
        objects.append(account)
    objects += [ray_token_secret(job, ray_token), config_map(job), head_service(job, settings)]
    objects += [driver_role(job), driver_role_binding(job)]
    if settings.network_policy:
        objects.append(network_policy(job, settings))
    group = pod_group(job, settings)
    if group is not None:
        objects.append(group)
    return objects


def pod_group(job: TrainingJob, settings: PodSettings) -> Obj | None:
    """The gang scheduler's PodGroup (spec.scheduling.gang), sized from the pods as rendered."""
    if gang.gang_api(job) is None:
        return None
    shapes = [(head_pod(job, attempt=0, settings=settings), 1)]
    if job.spec.distributed.workers:
        worker = worker_pod(job, 0, attempt=0, settings=settings)
        shapes.append((worker, gang.pod_count(job) - 1))
    return gang.pod_group(job, _metadata(job, gang.pod_group_name(job.name)), shapes)


# --------------------------------------------------------------------------- Ray's fence


def ray_token_secret(job: TrainingJob, token: str) -> Obj:
    """The token every Ray process of the job presents (RAY_AUTH_MODE=token): a process without
    it cannot join the job's Ray cluster nor call its GCS. Random per job (the caller draws it);
    the operator creates it and never reads it back."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(job, ray_token_secret_name(job.name)),
        "type": "Opaque",
        "stringData": {RAY_TOKEN_KEY: token},
    }


def network_policy(job: TrainingJob, settings: PodSettings) -> Obj:
    """The job's pods accept connections from each other (Ray's GCS, raylets, object stores
    and collectives use many ports), and on the metrics ports from `settings.metrics_from`;
    nothing else reaches them. Egress is left alone: data, checkpoints and mirrors are outside."""
    own = {"podSelector": {"matchLabels": {LABEL_JOB: job.name}}}
    metrics = [{"port": settings.ports.metrics, "protocol": "TCP"}]
    metrics += [{"port": port, "protocol": "TCP"} for _, port in worker_metrics_ports(job)]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(job, network_policy_name(job.name)),
        "spec": {
            "podSelector": {"matchLabels": {LABEL_JOB: job.name}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": [own]},
                {"from": json.loads(settings.metrics_from), "ports": metrics},
            ],
        },
    }


# --------------------------------------------------------------------------- pods


def _env(job: TrainingJob, settings: PodSettings, extra: dict[str, str]) -> list[Obj]:
    env: list[Obj] = [
        {"name": "KUBETRAIN_JOB_NAME", "value": job.name},
        {
            "name": "KUBETRAIN_NAMESPACE",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
        },
        {"name": "RAY_USAGE_STATS_ENABLED", "value": "0"},
        # Any image's home may be read-only here; /tmp is not.
        {"name": "HOME", "value": TMP_DIR},
    ]
    env += [{"name": k, "value": v} for k, v in extra.items()]
    # The cluster's settings (the operator's --pod-env: download mirrors, ...), then the job's.
    env += [{"name": k, "value": v} for k, v in settings.env]
    # The user's variables come last so they can override ours (Kubernetes keeps the last one).
    # A valueFrom (a Secret's key) is passed as a reference: its value is in no object of ours.
    env += [e.model_dump(mode="json", by_alias=True, exclude_none=True) for e in job.spec.pod.env]
    # Ray's authentication last, where no variable of the user's or the cluster's can undo it.
    secret = {"name": ray_token_secret_name(job.name), "key": RAY_TOKEN_KEY}
    env += [
        {"name": "RAY_AUTH_MODE", "value": "token"},
        {"name": "RAY_AUTH_TOKEN", "valueFrom": {"secretKeyRef": secret}},
    ]
    return env


def _pod_spec(
    job: TrainingJob, settings: PodSettings, container: Obj, volumes: list[Obj], *, scratch: str
) -> Obj:
    """The pod around `container`, with the volumes it brings and those every pod writes to."""
    pod = job.spec.pod
    writable = _writable_volumes(job, scratch)
    container["volumeMounts"] = [
        *container.get("volumeMounts", []),
        *(m for _, m in writable),
        *(m.model_dump(mode="json", by_alias=True, exclude_none=True) for m in pod.volume_mounts),
    ]
    if pod.env_from:
        container["envFrom"] = [
            e.model_dump(mode="json", by_alias=True, exclude_none=True) for e in pod.env_from
        ]
    spec: Obj = {
        # The operator decides about every failure (exit code, OOM, backoffLimit), not the kubelet.
        "restartPolicy": "Never",
        # A namespace with many Services would otherwise give every pod thousands of variables.
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": settings.termination_grace_seconds,
        # A fixed non-root user; fsGroup makes the checkpoint claim writable by it.
        "securityContext": {
            "runAsUser": settings.run_as_user,
            "runAsGroup": settings.run_as_user,
            "fsGroup": settings.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [*volumes, *(v for v, _ in writable), *pod.volumes],
    }
    if pod.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": ref.name} for ref in pod.image_pull_secrets]
    if pod.affinity:
        spec["affinity"] = pod.affinity
    if pod.node_selector:
        spec["nodeSelector"] = dict(pod.node_selector)
    if pod.tolerations:
        spec["tolerations"] = [
            t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in pod.tolerations
        ]
    if pod.priority_class_name:
        spec["priorityClassName"] = pod.priority_class_name
    scheduler = gang.scheduler_name(job)  # the user's, else the gang scheduler's
    if scheduler:
        spec["schedulerName"] = scheduler
    return spec


def _container(job: TrainingJob, name: str, command: list[str], env: list[Obj]) -> Obj:
    return {
        "name": name,
        "image": job.spec.pod.image,
        "imagePullPolicy": job.spec.pod.image_pull_policy,
        "command": command,
        "env": env,
        # Puts the last log lines into status.containerStatuses[].state.terminated.message when
        # the container fails without a message of its own: the operator quotes them.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def storage_mount_path(job: TrainingJob) -> str | None:
    """Where the checkpoint claim is mounted in pods: at checkpoint.storagePath (a relative one
    under STORAGE_ROOT). None without a claim."""
    if not job.spec.checkpoint.claim_name:
        return None
    return posixpath.normpath(posixpath.join(STORAGE_ROOT, job.spec.checkpoint.storage_path))


def _writable_volumes(job: TrainingJob, scratch: str) -> list[tuple[Obj, Obj]]:
    """(volume, mount) pairs every pod gets: /tmp (at most `scratch`), the dataset claim and the
    checkpoint claim if there are.

    The head and every worker mount the same claim: Ray Train's workers write checkpoints
    there and the head keeps track of them, so a replaced pod resumes from them.
    """
    pairs: list[tuple[Obj, Obj]] = [
        ({"name": "tmp", "emptyDir": {"sizeLimit": scratch}}, {"name": "tmp", "mountPath": TMP_DIR})
    ]
    data = dataset_mount_path(job.spec)
    if data is not None:
        # The download cache of mnist/cifar10/imdb is filled by the job; a user's data is only read.
        read_only = SOURCES[job.spec.dataset.source].needs_path
        data_claim = {"claimName": job.spec.dataset.claim_name, "readOnly": read_only}
        pairs.append((
            {"name": "dataset", "persistentVolumeClaim": data_claim},
            {"name": "dataset", "mountPath": data, "readOnly": read_only},
        ))  # fmt: skip
    mount = storage_mount_path(job)
    if mount is not None:
        claim = {"claimName": job.spec.checkpoint.claim_name}
        pairs.append((
            {"name": "checkpoints", "persistentVolumeClaim": claim},
            {"name": "checkpoints", "mountPath": mount},
        ))  # fmt: skip
    return pairs


def _api_token_volume() -> Obj:
    """A bound, expiring ServiceAccount token, as Kubernetes 1.21+ mounts by default.

    Before 1.24 the default mount needs a token Secret that the token controller creates after
    the ServiceAccount, and pod admission waits for it: with a projected token, a new job's head
    pod is admitted at once. The kubelet refreshes the token; the driver rereads it every time.
    """
    return {
        "name": "api-token",
        "projected": {
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
                {"configMap": {"name": "kube-root-ca.crt",
                               "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [
                    {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}
                ]}},
            ]
        },
    }  # fmt: skip


def _deepspeed_config_volume(job: TrainingJob) -> Obj | None:
    """The user's ConfigMap holding a raw DeepSpeed config, for the driver to read.

    Only the head needs it: the driver checks it and hands it to the workers inside the spec.
    Optional, so that a missing ConfigMap or key reaches the driver, which fails the job naming
    spec.distributed.deepspeed.configMapRef, instead of leaving the pod stuck creating.
    """
    distributed = job.spec.distributed
    ref = distributed.deepspeed.config_map_ref
    if ref is None or distributed.backend is not Backend.DEEPSPEED:
        return None
    return {
        "name": "deepspeed-config",
        "configMap": {
            "name": ref,
            "items": [{"key": DEEPSPEED_CONFIG_KEY, "path": DEEPSPEED_CONFIG_KEY}],
            "optional": True,
        },
    }


def head_pod(job: TrainingJob, *, attempt: int, settings: PodSettings) -> Obj:
    ports = settings.ports
    container = _container(
        job,
        Role.HEAD.value,
        [
            settings.python,
            "-m",
            contract.MODULE,
            *contract.head_args(
                gcs_port=ports.gcs,
                dashboard_port=ports.dashboard if job.spec.distributed.ray_dashboard else None,
                metrics_port=ports.metrics,
                # Checkpoints on a claim: where the pod has it mounted (else s3://, as written).
                storage_path=storage_mount_path(job),
            ),
        ],
        _env(job, settings, {"KUBETRAIN_ATTEMPT": str(attempt)}),
    )
    # No CPU limit: the head needs CPU in bursts at start-up (imports, Ray's daemons, Ray Train's
    # controller), and is idle while the workers train. Capped at its request, it started ~4x
    # slower on a 250m head (bench/RESULTS.md); it may use what the node has free instead.
    scratch = settings.head_ephemeral_storage
    container["resources"] = {
        "requests": {
            "cpu": settings.head_cpu,
            "memory": settings.head_memory,
            "ephemeral-storage": scratch,
        },
        "limits": {"memory": settings.head_memory, "ephemeral-storage": scratch},
    }
    container["ports"] = [
        {"name": "gcs", "containerPort": ports.gcs},
        {"name": "metrics", "containerPort": ports.metrics},
    ]
    if job.spec.distributed.ray_dashboard:
        container["ports"].insert(1, {"name": "dashboard", "containerPort": ports.dashboard})
    container["volumeMounts"] = [
        {"name": "config", "mountPath": contract.CONFIG_DIR, "readOnly": True},
        {"name": "api-token", "mountPath": SA_TOKEN_DIR, "readOnly": True},
    ]
    # Ready means "the driver is training": the Running condition follows it.
    container["readinessProbe"] = {
        "exec": {"command": ["test", "-e", contract.TRAINING_MARKER]},
        "periodSeconds": settings.readiness_period_seconds,
        "failureThreshold": 1,
    }
    volumes: list[Obj] = [
        {"name": "config", "configMap": {"name": config_map_name(job.name)}},
        _api_token_volume(),
    ]
    deepspeed = _deepspeed_config_volume(job)
    if deepspeed is not None:
        container["volumeMounts"].append(
            {"name": deepspeed["name"], "mountPath": DEEPSPEED_CONFIG_DIR, "readOnly": True}
        )
        volumes.append(deepspeed)
    spec = _pod_spec(job, settings, container, volumes, scratch=scratch)
    spec["serviceAccountName"] = driver_service_account_name(job)
    # The token comes from the projected volume above, not from a token Secret.
    spec["automountServiceAccountToken"] = False
    meta = _pod_metadata(
        job, head_pod_name(job.name), {LABEL_ROLE: Role.HEAD.value, LABEL_ATTEMPT: str(attempt)}
    )
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def worker_metrics_ports(job: TrainingJob) -> list[tuple[str, int]]:
    """A worker pod's metrics ports, named: each of its ranks serves on the spec's port plus its
    local rank ("metrics", "metrics-1", ...). None when metrics are off."""
    metrics = job.spec.metrics
    if not metrics.enabled:
        return []
    ranks = range(job.spec.distributed.ranks_in_pod)
    return [("metrics" if r == 0 else f"metrics-{r}", metrics.port + r) for r in ranks]


def worker_pod(job: TrainingJob, rank: int, *, attempt: int, settings: PodSettings) -> Obj:
    dist = job.spec.distributed
    res = dist.resources_per_worker
    # Ray counts whole CPUs; the pod's ranks ask for the spec's CPUs between them, so they fit.
    ray_cpus = max(1, math.ceil(cpu_cores(res.cpu)))
    container = _container(
        job,
        Role.WORKER.value,
        [
            settings.python,
            "-m",
            contract.MODULE,
            *contract.worker_args(
                head_address=head_address(job, settings),
                num_cpus=ray_cpus,
                num_gpus=res.gpu,
                ranks=dist.ranks_in_pod,
            ),
        ],
        _env(job, settings, {"KUBETRAIN_RANK": str(rank), "KUBETRAIN_ATTEMPT": str(attempt)}),
    )
    limits: dict[str, str] = {
        "cpu": res.cpu,
        "memory": res.memory,
        "ephemeral-storage": res.ephemeral_storage,
    }
    if res.gpu:
        limits["nvidia.com/gpu"] = str(res.gpu)
    limits |= res.extra  # RDMA devices, hugepages: asked and limited alike, as GPUs are
    container["resources"] = {"requests": dict(limits), "limits": dict(limits)}
    volumes: list[Obj] = []
    if res.gpu:
        # NCCL and Ray's object store need more shared memory than a container's 64 MiB.
        # Memory-backed: it counts against the pod's memory limit, which also bounds it.
        volumes.append({"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": res.memory}})
        container["volumeMounts"] = [{"name": "dshm", "mountPath": "/dev/shm"}]
    meta = _pod_metadata(
        job,
        worker_pod_name(job.name, rank),
        {LABEL_ROLE: Role.WORKER.value, LABEL_RANK: str(rank), LABEL_ATTEMPT: str(attempt)},
    )
    ports = worker_metrics_ports(job)
    if ports:
        container["ports"] = [{"name": name, "containerPort": port} for name, port in ports]
        # Scrapers that read these annotations take one port: local rank 0's.
        meta["annotations"] = {
            **meta.get("annotations", {}),
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(job.spec.metrics.port),
        }
    spec = _pod_spec(job, settings, container, volumes, scratch=res.ephemeral_storage)
    if job.spec.pod.topology_spread_constraints:
        spec["topologySpreadConstraints"] = _worker_spread(job)
    if job.spec.pod.service_account_name:
        spec["serviceAccountName"] = job.spec.pod.service_account_name
    else:
        # Workers never call the API server: no token in their filesystem.
        spec["automountServiceAccountToken"] = False
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
