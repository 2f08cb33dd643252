"""Names, labels and annotations of the objects a TrainingJob owns.

Documented in docs/labels-and-annotations.md (tests/operator/test_labels_doc.py checks it).
"""

from __future__ import annotations

from enum import Enum

from kubetrain.api import API_VERSION, GROUP, KIND

LABEL_JOB = f"{GROUP}/job-name"
LABEL_ROLE = f"{GROUP}/role"
LABEL_RANK = f"{GROUP}/rank"
# Whole-job restart count the pod belongs to; pods of an older attempt are deleted on sight.
LABEL_ATTEMPT = f"{GROUP}/attempt"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "kubetrain-operator"
# Kueue reads the queue from the workload's pods; copied from the TrainingJob as it is.
LABEL_KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"
PASSED_THROUGH_LABELS = (LABEL_KUEUE_QUEUE,)

# On the ConfigMap: the job generation whose spec the running pods were started with.
ANNOTATION_GENERATION = f"{GROUP}/generation"


class Role(str, Enum):
    HEAD = "head"
    WORKER = "worker"


def head_pod_name(job: str) -> str:
    return f"{job}-head"


def worker_pod_name(job: str, rank: int) -> str:
    # Job names are at most 52 characters, so "-worker-1023" still fits in 63.
    return f"{job}-worker-{rank}"


def service_name(job: str) -> str:
    return f"{job}-head"


def config_map_name(job: str) -> str:
    return f"{job}-config"


def driver_rbac_name(job: str) -> str:
    """ServiceAccount, Role and RoleBinding that let the driver patch this job's status."""
    return f"{job}-driver"


def ray_token_secret_name(job: str) -> str:
    """The Secret holding the job's Ray token: every pod of the job, and nothing else, has it."""
    return f"{job}-ray-token"


def network_policy_name(job: str) -> str:
    return f"{job}-ray"


def pod_selector(job: str) -> str:
    return f"{LABEL_JOB}={job}"


def owner_reference(*, name: str, uid: str) -> dict[str, object]:
    """Makes the job the controller of an object, so deleting the job deletes the object."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
