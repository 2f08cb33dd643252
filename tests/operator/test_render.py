"""Golden dicts: the objects a TrainingJob owns, exactly as the operator creates them."""

from __future__ import annotations

import json
from typing import Any

from kubetrain.api.constants import RESERVED_MOUNT_PATHS, RESERVED_VOLUMES
from kubetrain_operator.config import PodSettings
from kubetrain_operator.render import (
    config_map,
    head_pod,
    head_service,
    support_objects,
    worker_pod,
)
from kubetrain_operator.render.objects import (
    driver_role,
    driver_role_binding,
    network_policy,
    ray_token_secret,
)
from tests.operator.helpers import OWNER, api_job, pods

SETTINGS = PodSettings()


SA = "/var/run/secrets/kubernetes.io/serviceaccount"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
# Last in every pod, where no variable of the user's or the cluster's can undo them.
RAY_AUTH_ENV: list[dict[str, Any]] = [
    {"name": "RAY_AUTH_MODE", "value": "token"},
    {"name": "RAY_AUTH_TOKEN",
     "valueFrom": {"secretKeyRef": {"name": "t-ray-token", "key": "token"}}},
]  # fmt: skip
BASE_ENV: list[dict[str, Any]] = [
    {"name": "KUBETRAIN_JOB_NAME", "value": "t"},
    {
        "name": "KUBETRAIN_NAMESPACE",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
    },
    {"name": "RAY_USAGE_STATS_ENABLED", "value": "0"},
    {"name": "HOME", "value": "/tmp"},
]
# Non-root with a read-only root filesystem: what pods write goes to the volumes below.
POD_SECURITY = {
    "runAsUser": 1000,
    "runAsGroup": 1000,
    "fsGroup": 1000,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}
# Without a checkpoint claim only /tmp is writable, and only up to the pod's scratch disk.
WRITABLE_VOLUMES = [{"name": "tmp", "emptyDir": {"sizeLimit": "10Gi"}}]  # a worker's default
HEAD_WRITABLE_VOLUMES = [{"name": "tmp", "emptyDir": {"sizeLimit": "4Gi"}}]
WRITABLE_MOUNTS = [{"name": "tmp", "mountPath": "/tmp"}]


def test_gpu_worker_pod_golden_runs_one_rank_per_gpu() -> None:
    job = api_job(
        pod={
            "image": "registry.example/trainer:1.2",
            "nodeSelector": {"pool": "gpu"},
            "tolerations": [GPU_TOLERATION],
            "priorityClassName": "high",
            "schedulerName": "volcano",
            "env": [{"name": "NCCL_DEBUG", "value": "INFO"}],
        },
        distributed={"workers": 2, "resourcesPerWorker": {"cpu": "4", "memory": "16Gi", "gpu": 4}},
        metrics={"enabled": True, "port": 9400},
    )
    resources = {
        "cpu": "4", "memory": "16Gi", "ephemeral-storage": "10Gi", "nvidia.com/gpu": "4"
    }  # fmt: skip
    assert worker_pod(job, 1, attempt=2, settings=SETTINGS) == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "t-worker-1",
            "namespace": "ml",
            "labels": {
                "kubetrain.io/job-name": "t",
                "app.kubernetes.io/managed-by": "kubetrain-operator",
                "kubetrain.io/role": "worker",
                "kubetrain.io/rank": "1",
                "kubetrain.io/attempt": "2",
            },
            "ownerReferences": [OWNER],
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9400"},
        },
        "spec": {
            "restartPolicy": "Never",
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 30,
            "securityContext": POD_SECURITY,
            "containers": [
                {
                    "name": "worker",
                    "image": "registry.example/trainer:1.2",
                    "imagePullPolicy": "IfNotPresent",
                    "command": [
                        "python",
                        "-m",
                        "kubetrain.pods",
                        "worker",
                        "--head-address",
                        "t-head.ml.svc:6379",
                        "--num-cpus",
                        "4",
                        "--num-gpus",
                        "4",
                        # No ranksPerPod: one rank per GPU.
                        "--ranks",
                        "4",
                    ],
                    "env": [
                        *BASE_ENV,
                        {"name": "KUBETRAIN_RANK", "value": "1"},
                        {"name": "KUBETRAIN_ATTEMPT", "value": "2"},
                        {"name": "NCCL_DEBUG", "value": "INFO"},
                        *RAY_AUTH_ENV,
                    ],
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                    "securityContext": CONTAINER_SECURITY,
                    "resources": {"requests": resources, "limits": resources},
                    "volumeMounts": [
                        {"name": "dshm", "mountPath": "/dev/shm"},
                        *WRITABLE_MOUNTS,
                    ],
                    # Each rank serves its metrics on the port + its local rank.
                    "ports": [
                        {"name": "metrics", "containerPort": 9400},
                        {"name": "metrics-1", "containerPort": 9401},
                        {"name": "metrics-2", "containerPort": 9402},
                        {"name": "metrics-3", "containerPort": 9403},
                    ],
                }
            ],
            "volumes": [
                # Bounded by the pod's memory, which it counts against.
                {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}},
                *WRITABLE_VOLUMES,
            ],
            "nodeSelector": {"pool": "gpu"},
            "tolerations": [GPU_TOLERATION],
            "priorityClassName": "high",
            "schedulerName": "volcano",
            "automountServiceAccountToken": False,
        },
    }


def test_head_pod_golden() -> None:
    job = api_job(checkpoint={"storagePath": "s3://bucket/runs"})
    head_resources = {"cpu": "1", "memory": "2Gi", "ephemeral-storage": "4Gi"}
    assert head_pod(job, attempt=0, settings=SETTINGS) == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "t-head",
            "namespace": "ml",
            "labels": {
                "kubetrain.io/job-name": "t",
                "app.kubernetes.io/managed-by": "kubetrain-operator",
                "kubetrain.io/role": "head",
                "kubetrain.io/attempt": "0",
            },
            "ownerReferences": [OWNER],
        },
        "spec": {
            "restartPolicy": "Never",
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 30,
            "securityContext": POD_SECURITY,
            "containers": [
                {
                    "name": "head",
                    "image": "kubetrain/trainer:0.1.0-cpu",
                    "imagePullPolicy": "IfNotPresent",
                    "command": [
                        "python",
                        "-m",
                        "kubetrain.pods",
                        "head",
                        "--job-file",
                        "/etc/kubetrain/trainingjob.json",
                        "--gcs-port",
                        "6379",
                        "--metrics-port",
                        "8080",
                        # Checkpoints on s3://: no --storage-path (that is for a claim).
                    ],
                    "env": [*BASE_ENV, {"name": "KUBETRAIN_ATTEMPT", "value": "0"}, *RAY_AUTH_ENV],
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                    "securityContext": CONTAINER_SECURITY,
                    # No CPU limit: the head bursts at start-up, then idles (see render).
                    "resources": {
                        "requests": head_resources,
                        "limits": {"memory": "2Gi", "ephemeral-storage": "4Gi"},
                    },
                    "ports": [
                        {"name": "gcs", "containerPort": 6379},
                        {"name": "metrics", "containerPort": 8080},
                    ],
                    "volumeMounts": [
                        {"name": "config", "mountPath": "/etc/kubetrain", "readOnly": True},
                        {"name": "api-token", "mountPath": SA, "readOnly": True},
                        *WRITABLE_MOUNTS,
                    ],
                    "readinessProbe": {
                        "exec": {"command": ["test", "-e", "/tmp/kubetrain/training"]},
                        "periodSeconds": 2,
                        "failureThreshold": 1,
                    },
                }
            ],
            "volumes": [
                {"name": "config", "configMap": {"name": "t-config"}},
                {
                    "name": "api-token",
                    "projected": {
                        "sources": [
                            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
                            {
                                "configMap": {
                                    "name": "kube-root-ca.crt",
                                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                                }
                            },
                            {
                                "downwardAPI": {
                                    "items": [
                                        {
                                            "path": "namespace",
                                            "fieldRef": {"fieldPath": "metadata.namespace"},
                                        }
                                    ]
                                }
                            },
                        ]
                    },
                },
                *HEAD_WRITABLE_VOLUMES,
            ],
            "serviceAccountName": "t-driver",
            "automountServiceAccountToken": False,
        },
    }


def test_head_pod_mounts_the_deepspeed_config_map_where_the_driver_reads_it() -> None:
    job = api_job(distributed={"backend": "deepspeed", "deepspeed": {"configMapRef": "ds-zero3"}})
    head = head_pod(job, attempt=0, settings=SETTINGS)
    (container,) = head["spec"]["containers"]
    assert container["volumeMounts"] == [
        {"name": "config", "mountPath": "/etc/kubetrain", "readOnly": True},
        {"name": "api-token", "mountPath": SA, "readOnly": True},
        {"name": "deepspeed-config", "mountPath": "/etc/kubetrain-deepspeed", "readOnly": True},
        *WRITABLE_MOUNTS,
    ]
    assert head["spec"]["volumes"][0] == {"name": "config", "configMap": {"name": "t-config"}}
    assert head["spec"]["volumes"][2:] == [
        {
            "name": "deepspeed-config",
            "configMap": {
                "name": "ds-zero3",
                "items": [{"key": "ds_config.json", "path": "ds_config.json"}],
                # A missing ConfigMap reaches the driver, which names configMapRef.
                "optional": True,
            },
        },
        *HEAD_WRITABLE_VOLUMES,
    ]
    # The workers get the config inside the spec from the driver: they mount nothing more.
    worker = worker_pod(job, 0, attempt=0, settings=SETTINGS)
    assert worker["spec"]["volumes"] == WRITABLE_VOLUMES
    assert worker["spec"]["containers"][0]["volumeMounts"] == WRITABLE_MOUNTS


def test_an_inline_deepspeed_config_reaches_the_driver_verbatim() -> None:
    raw = {
        "zero_optimization": {"stage": 3, "reduce_bucket_size": 5e6},
        "wall_clock_breakdown": True,
    }
    job = api_job(distributed={"backend": "deepspeed", "deepspeed": {"config": raw}})
    resolved = json.loads(config_map(job)["data"]["trainingjob.json"])
    assert resolved["spec"]["distributed"]["deepspeed"]["config"] == raw


def test_ddp_jobs_mount_no_deepspeed_config_map() -> None:
    job = api_job(distributed={"deepspeed": {"configMapRef": "ds-zero3"}})
    head = head_pod(job, attempt=0, settings=SETTINGS)
    assert [v["name"] for v in head["spec"]["volumes"]] == ["config", "api-token", "tmp"]


def test_head_service_is_headless_and_publishes_not_ready_addresses() -> None:
    assert head_service(api_job(), SETTINGS) == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "t-head",
            "namespace": "ml",
            "labels": {
                "kubetrain.io/job-name": "t",
                "app.kubernetes.io/managed-by": "kubetrain-operator",
            },
            "ownerReferences": [OWNER],
        },
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {"kubetrain.io/job-name": "t", "kubetrain.io/role": "head"},
            "ports": [
                {"name": "gcs", "port": 6379, "targetPort": 6379},
                {"name": "metrics", "port": 8080, "targetPort": 8080},
            ],
        },
    }


def test_config_map_holds_the_resolved_job_with_defaults() -> None:
    cm = config_map(api_job())
    assert cm["metadata"]["name"] == "t-config"
    assert cm["metadata"]["annotations"] == {"kubetrain.io/generation": "1"}
    assert cm["metadata"]["ownerReferences"] == [OWNER]
    resolved = json.loads(cm["data"]["trainingjob.json"])
    assert resolved["metadata"] == {"name": "t", "namespace": "ml"}
    # Defaults filled in: the driver never guesses.
    assert resolved["spec"]["training"]["epochs"] == 10
    assert resolved["spec"]["runPolicy"]["backoffLimit"] == 3


def test_driver_role_is_scoped_to_this_job_only() -> None:
    role = driver_role(api_job())
    assert role["rules"] == [
        {
            "apiGroups": ["kubetrain.io"],
            "resources": ["trainingjobs"],
            "resourceNames": ["t"],
            "verbs": ["get"],
        },
        {
            "apiGroups": ["kubetrain.io"],
            "resources": ["trainingjobs/status"],
            "resourceNames": ["t"],
            "verbs": ["get", "patch"],
        },
    ]
    binding = driver_role_binding(api_job())
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "t-driver",
    }
    subject = {"kind": "ServiceAccount", "name": "t-driver", "namespace": "ml"}
    assert binding["subjects"] == [subject]


def test_users_service_account_runs_both_roles_and_gets_the_binding() -> None:
    job = api_job(pod={"serviceAccountName": "trainer"})
    kinds = [o["kind"] for o in support_objects(job, SETTINGS, ray_token="t0ken")]
    # No ServiceAccount of ours.
    assert kinds == ["Secret", "ConfigMap", "Service", "Role", "RoleBinding", "NetworkPolicy"]
    assert driver_role_binding(job)["subjects"][0]["name"] == "trainer"
    head, worker = pods(job, attempt=0, settings=SETTINGS)[:2]
    assert head["spec"]["serviceAccountName"] == "trainer"
    assert head["spec"]["automountServiceAccountToken"] is False  # a projected token instead
    assert worker["spec"]["serviceAccountName"] == "trainer"
    assert "automountServiceAccountToken" not in worker["spec"]


def test_service_account_is_created_before_anything_that_needs_it() -> None:
    kinds = [o["kind"] for o in support_objects(api_job(), SETTINGS, ray_token="t0ken")]
    assert kinds == [
        "ServiceAccount", "Secret", "ConfigMap", "Service", "Role", "RoleBinding", "NetworkPolicy"
    ]  # fmt: skip


def test_every_object_is_owned_and_labelled() -> None:
    job = api_job(distributed={"workers": 3})
    objects = support_objects(job, SETTINGS, ray_token="t0ken") + pods(
        job, attempt=0, settings=SETTINGS
    )
    assert len(objects) == 7 + 4
    for obj in objects:
        assert obj["metadata"]["ownerReferences"] == [OWNER]
        assert obj["metadata"]["labels"]["kubetrain.io/job-name"] == "t"


def test_kueue_queue_label_passes_through_to_pods() -> None:
    data = api_job().model_dump(mode="json", by_alias=True)
    data["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": "team-a", "unrelated": "x"}
    from kubetrain.api import parse_job

    job = parse_job(data)
    for obj in pods(job, attempt=0, settings=SETTINGS):
        labels = obj["metadata"]["labels"]
        assert labels["kueue.x-k8s.io/queue-name"] == "team-a"
        assert "unrelated" not in labels


def test_cpu_pods_get_no_shm_and_fractional_cpus_round_up_for_ray() -> None:
    job = api_job(distributed={"workers": 1, "resourcesPerWorker": {"cpu": "500m"}})
    worker = worker_pod(job, 0, attempt=0, settings=SETTINGS)
    container = worker["spec"]["containers"][0]
    assert worker["spec"]["volumes"] == WRITABLE_VOLUMES  # no /dev/shm of its own
    assert container["volumeMounts"] == WRITABLE_MOUNTS
    assert container["command"][-6:] == ["--num-cpus", "1", "--num-gpus", "0", "--ranks", "1"]
    assert container["resources"]["limits"] == {
        "cpu": "500m", "memory": "2Gi", "ephemeral-storage": "10Gi"
    }  # fmt: skip


def test_rendering_without_a_uid_is_refused() -> None:
    job = api_job()
    job.metadata.uid = None
    try:
        head_pod(job, attempt=0, settings=SETTINGS)
    except ValueError as exc:
        assert "uid" in str(exc)
    else:
        raise AssertionError("a pod without an owner would never be garbage-collected")


def test_checkpoint_claim_is_mounted_at_the_storage_path_in_every_pod() -> None:
    job = api_job(checkpoint={"storagePath": "/mnt/ckpt", "claimName": "shared-ckpt"})
    claim = {"name": "checkpoints", "persistentVolumeClaim": {"claimName": "shared-ckpt"}}
    mount = {"name": "checkpoints", "mountPath": "/mnt/ckpt"}
    for pod in pods(job, attempt=0, settings=SETTINGS):
        assert claim in pod["spec"]["volumes"]
        assert mount in pod["spec"]["containers"][0]["volumeMounts"]
    head = head_pod(job, attempt=0, settings=SETTINGS)
    assert head["spec"]["containers"][0]["command"][-2:] == ["--storage-path", "/mnt/ckpt"]


def test_relative_storage_path_lives_under_kubetrain_in_pods() -> None:
    job = api_job(checkpoint={"storagePath": "out/../runs/exp1", "claimName": "c"})
    head = head_pod(job, attempt=0, settings=SETTINGS)
    assert head["spec"]["containers"][0]["command"][-2:] == [
        "--storage-path",
        "/kubetrain/runs/exp1",
    ]


def test_object_storage_needs_no_checkpoint_volume() -> None:
    job = api_job(checkpoint={"storagePath": "s3://bucket/runs"})
    for pod in pods(job, attempt=0, settings=SETTINGS):
        assert [v["name"] for v in pod["spec"]["volumes"]][-1] == "tmp"
        command = pod["spec"]["containers"][0]["command"]
        assert "--storage-path" not in command


GPU_CLUSTER_POD = {
    "env": [{"name": "AWS_SECRET_ACCESS_KEY",
             "valueFrom": {"secretKeyRef": {"name": "s3-creds", "key": "secret"}}}],
    "envFrom": [{"secretRef": {"name": "hf-token"}, "prefix": "HF_"}],
    "imagePullSecrets": [{"name": "registry-creds"}],
    "volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": "model-cache"}}],
    "volumeMounts": [{"name": "models", "mountPath": "/models", "readOnly": True}],
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "gpu.type", "operator": "In", "values": ["h100"]}]}]}}},
    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                   "whenUnsatisfiable": "ScheduleAnyway"}],
    "labels": {"team": "vision"},
    "annotations": {"sidecar.istio.io/inject": "false"},
}  # fmt: skip


def test_pod_settings_a_gpu_cluster_needs_reach_every_pod() -> None:
    job = api_job(
        pod=GPU_CLUSTER_POD,
        distributed={"resourcesPerWorker": {"gpu": 1, "extra": {"rdma/hca": "1"}}},
        dataset={"source": "cifar10", "path": "/data/cifar10", "claimName": "datasets"},
        model={"name": "cnn"},
        metrics={"enabled": True},
    )
    head = head_pod(job, attempt=0, settings=SETTINGS)
    worker = worker_pod(job, 0, attempt=0, settings=SETTINGS)
    for pod in (head, worker):
        spec, container = pod["spec"], pod["spec"]["containers"][0]
        assert spec["imagePullSecrets"] == [{"name": "registry-creds"}]
        assert spec["affinity"] == GPU_CLUSTER_POD["affinity"]
        assert {"name": "models", "persistentVolumeClaim": {"claimName": "model-cache"}} in (
            spec["volumes"]
        )
        assert {"name": "models", "mountPath": "/models", "readOnly": True} in (
            container["volumeMounts"]
        )
        # The dataset claim, at dataset.path, writable: cifar10's download cache fills it.
        assert {"name": "dataset", "persistentVolumeClaim": {"claimName": "datasets",
                "readOnly": False}} in spec["volumes"]  # fmt: skip
        assert {"name": "dataset", "mountPath": "/data/cifar10", "readOnly": False} in (
            container["volumeMounts"]
        )
        assert container["envFrom"] == [{"prefix": "HF_", "secretRef": {"name": "hf-token"}}]
        assert container["env"][-3] == {
            "name": "AWS_SECRET_ACCESS_KEY",
            "valueFrom": {"secretKeyRef": {"name": "s3-creds", "key": "secret"}},
        }
        labels = pod["metadata"]["labels"]
        assert labels["team"] == "vision" and labels["kubetrain.io/job-name"] == "t"
        assert pod["metadata"]["annotations"]["sidecar.istio.io/inject"] == "false"
    assert worker["spec"]["topologySpreadConstraints"] == [{
        "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
        "whenUnsatisfiable": "ScheduleAnyway",
        # No selector given: the job's own workers are spread.
        "labelSelector": {"matchLabels": {"kubetrain.io/job-name": "t",
                                          "kubetrain.io/role": "worker"}},
    }]  # fmt: skip
    assert "topologySpreadConstraints" not in head["spec"]
    resources = worker["spec"]["containers"][0]["resources"]
    assert resources["limits"]["rdma/hca"] == resources["requests"]["rdma/hca"] == "1"
    assert worker["metadata"]["annotations"]["prometheus.io/scrape"] == "true"


def test_a_csv_on_a_claim_is_mounted_read_only_at_its_folder() -> None:
    job = api_job(
        dataset={"source": "csv", "path": "/data/iris/train.csv", "claimName": "datasets"},
        model={"name": "mlp", "inputSize": 4, "numClasses": 3},
    )
    container = worker_pod(job, 0, attempt=0, settings=SETTINGS)["spec"]["containers"][0]
    assert {"name": "dataset", "mountPath": "/data/iris", "readOnly": True} in (
        container["volumeMounts"]
    )


def test_a_secret_reference_puts_no_value_in_the_config_map() -> None:
    job = api_job(pod=GPU_CLUSTER_POD)
    text = json.dumps(config_map(job))
    assert "s3-creds" in text  # the reference is there, for the pods' env
    assert '"value"' not in json.dumps(json.loads(config_map(job)["data"]["trainingjob.json"])[
        "spec"]["pod"]["env"])  # fmt: skip


def test_the_reserved_volumes_and_mount_paths_are_every_one_kubetrain_renders() -> None:
    # spec.pod.volumes and volumeMounts are checked against these lists: they must be complete.
    job = api_job(
        distributed={"backend": "deepspeed", "deepspeed": {"configMapRef": "ds"},
                     "resourcesPerWorker": {"gpu": 1}},
        checkpoint={"storagePath": "/ckpt", "claimName": "ckpt"},
        dataset={"source": "cifar10", "path": "/data/c", "claimName": "d"},
        model={"name": "cnn"},
    )  # fmt: skip
    pods_ = [head_pod(job, attempt=0, settings=SETTINGS), worker_pod(job, 0, attempt=0,
             settings=SETTINGS)]  # fmt: skip
    names = {v["name"] for p in pods_ for v in p["spec"]["volumes"]}
    paths = {m["mountPath"] for p in pods_ for m in p["spec"]["containers"][0]["volumeMounts"]}
    assert names <= set(RESERVED_VOLUMES)
    assert paths - {"/ckpt", "/data/c"} <= set(RESERVED_MOUNT_PATHS)


def test_the_clusters_pod_env_comes_before_the_jobs_own_which_overrides_it() -> None:
    settings = PodSettings(env=(("KUBETRAIN_DATASETS_MIRROR", "http://mirror/"), ("A", "1")))
    job = api_job(pod={"env": [{"name": "A", "value": "2"}]})
    env = worker_pod(job, 0, attempt=0, settings=settings)["spec"]["containers"][0]["env"]
    names = [e["name"] for e in env]
    # Kubernetes keeps the last A; Ray's authentication comes after everything.
    assert names[-5:] == ["KUBETRAIN_DATASETS_MIRROR", "A", "A", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN"]
    assert env[-3] == {"name": "A", "value": "2"}
    assert {"name": "KUBETRAIN_DATASETS_MIRROR", "value": "http://mirror/"} in (
        head_pod(job, attempt=0, settings=settings)["spec"]["containers"][0]["env"]
    )


def test_scratch_disk_is_asked_limited_and_caps_tmp_as_the_spec_says() -> None:
    job = api_job(distributed={"resourcesPerWorker": {"ephemeralStorage": "50Gi"}})
    worker = worker_pod(job, 0, attempt=0, settings=SETTINGS)
    resources = worker["spec"]["containers"][0]["resources"]
    assert resources["requests"]["ephemeral-storage"] == "50Gi"
    assert resources["limits"]["ephemeral-storage"] == "50Gi"
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "50Gi"}} in worker["spec"]["volumes"]
    head = head_pod(job, attempt=0, settings=PodSettings(head_ephemeral_storage="1Gi"))
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}} in head["spec"]["volumes"]
    # Every writable emptyDir of every pod is bounded.
    gpu = api_job(distributed={"resourcesPerWorker": {"gpu": 1}})
    for pod in (head, worker, worker_pod(gpu, 0, attempt=0, settings=SETTINGS)):
        for volume in pod["spec"]["volumes"]:
            if "emptyDir" in volume:
                assert volume["emptyDir"].get("sizeLimit"), volume


def test_a_users_env_cannot_turn_rays_authentication_off() -> None:
    job = api_job(pod={"env": [{"name": "RAY_AUTH_MODE", "value": "disabled"}]})
    settings = PodSettings(env=(("RAY_AUTH_MODE", "disabled"),))
    for pod in (head_pod(job, attempt=0, settings=settings),
                worker_pod(job, 0, attempt=0, settings=settings)):  # fmt: skip
        env = pod["spec"]["containers"][0]["env"]
        last = {e["name"]: e for e in env}  # the kubelet keeps the last of a name
        assert last["RAY_AUTH_MODE"] == {"name": "RAY_AUTH_MODE", "value": "token"}
        assert last["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "t-ray-token"


def test_the_ray_token_secret_is_the_jobs_and_holds_the_token_given() -> None:
    secret = ray_token_secret(api_job(), "s3cr3t")
    assert secret["metadata"]["name"] == "t-ray-token"
    assert secret["metadata"]["ownerReferences"] == [OWNER]  # deleted with the job
    assert secret["stringData"] == {"token": "s3cr3t"}


def test_the_dashboard_runs_and_is_published_only_when_the_spec_asks() -> None:
    off = head_pod(api_job(), attempt=0, settings=SETTINGS)
    assert "--dashboard-port" not in off["spec"]["containers"][0]["command"]
    on_job = api_job(distributed={"rayDashboard": True})
    on = head_pod(on_job, attempt=0, settings=SETTINGS)
    command = on["spec"]["containers"][0]["command"]
    assert command[command.index("--dashboard-port") + 1] == "8265"
    assert {"name": "dashboard", "containerPort": 8265} in on["spec"]["containers"][0]["ports"]
    service_ports = {p["name"] for p in head_service(on_job, SETTINGS)["spec"]["ports"]}
    assert service_ports == {"gcs", "dashboard", "metrics"}


def test_the_network_policy_lets_in_only_the_jobs_pods_and_the_scrapers_golden() -> None:
    job = api_job(metrics={"enabled": True, "port": 9400})
    settings = PodSettings(metrics_from='[{"namespaceSelector": {"matchLabels": {"team": "obs"}}}]')
    own = {"matchLabels": {"kubetrain.io/job-name": "t"}}
    assert network_policy(job, settings) == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": "t-ray",
            "namespace": "ml",
            "labels": {"kubetrain.io/job-name": "t", "app.kubernetes.io/managed-by":
                       "kubetrain-operator"},
            "ownerReferences": [OWNER],
        },
        "spec": {
            "podSelector": own,
            "policyTypes": ["Ingress"],
            "ingress": [
                # Ray's GCS, raylets, object stores and collectives: the job's own pods only.
                {"from": [{"podSelector": own}]},
                # The metrics ports (Ray's on the head, the trainer's on the workers): scrapers.
                {"from": [{"namespaceSelector": {"matchLabels": {"team": "obs"}}}],
                 "ports": [{"port": 8080, "protocol": "TCP"}, {"port": 9400, "protocol": "TCP"}]},
            ],
        },
    }  # fmt: skip
    kinds = [o["kind"] for o in support_objects(job, PodSettings(network_policy=False),
             ray_token="x")]  # fmt: skip
    assert "NetworkPolicy" not in kinds
