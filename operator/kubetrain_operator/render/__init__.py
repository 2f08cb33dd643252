"""Pure builders of the objects a TrainingJob owns. Imports neither kopf nor a Kubernetes client."""

from kubetrain.pods.contract import CONFIG_KEY
from kubetrain_operator.render.names import (
    ANNOTATION_GENERATION,
    LABEL_ATTEMPT,
    LABEL_JOB,
    LABEL_KUEUE_QUEUE,
    LABEL_RANK,
    LABEL_ROLE,
    Role,
    config_map_name,
    head_pod_name,
    pod_selector,
    worker_pod_name,
)
from kubetrain_operator.render.objects import (
    config_map,
    head_pod,
    head_service,
    resolved_job,
    support_objects,
    worker_pod,
)

__all__ = [
    "ANNOTATION_GENERATION",
    "CONFIG_KEY",
    "LABEL_ATTEMPT",
    "LABEL_JOB",
    "LABEL_KUEUE_QUEUE",
    "LABEL_RANK",
    "LABEL_ROLE",
    "Role",
    "config_map",
    "config_map_name",
    "head_pod",
    "head_pod_name",
    "head_service",
    "pod_selector",
    "resolved_job",
    "support_objects",
    "worker_pod",
    "worker_pod_name",
]
