"""Names, labels and annotations of the objects a TrainingJob owns.

Documented in docs/labels-and-annotations.md (tests/operator/test_labels_doc.py checks it). The
pods' names and labels live in `kubetrain.api.names`, where the `kubetrain` client finds them too.
"""

from __future__ import annotations

from kubetrain.api import API_VERSION, GROUP, KIND
from kubetrain.api.names import (
    LABEL_ATTEMPT,
    LABEL_JOB,
    LABEL_RANK,
    LABEL_ROLE,
    Role,
    head_pod_name,
    pod_selector,
    worker_pod_name,
)

__all__ = [
    "ANNOTATION_GENERATION",
    "LABEL_ATTEMPT",
    "LABEL_JOB",
    "LABEL_KUEUE_QUEUE",
    "LABEL_MANAGED_BY",
    "LABEL_RANK",
    "LABEL_ROLE",
    "MANAGED_BY",
    "PASSED_THROUGH_LABELS",
    "Role",
    "config_map_name",
    "driver_rbac_name",
    "head_pod_name",
    "network_policy_name",
    "owner_reference",
    "pod_selector",
    "ray_token_secret_name",
    "service_name",
    "worker_pod_name",
]

LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "kubetrain-operator"
# Kueue reads the queue from the workload's pods; copied from the TrainingJob as it is.
LABEL_KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"
PASSED_THROUGH_LABELS = (LABEL_KUEUE_QUEUE,)

# On the ConfigMap: the job generation whose spec the running pods were started with.
ANNOTATION_GENERATION = f"{GROUP}/generation"


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
