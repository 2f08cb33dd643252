"""The names and labels of a TrainingJob's pods: what the operator gives them and what the
`kubetrain` client finds them by (`kubetrain logs`, `kubetrain status`).

Documented in docs/labels-and-annotations.md. The operator's other names (Service, ConfigMap,
RBAC) stay in `kubetrain_operator.render.names`: only the operator uses them.
"""

from __future__ import annotations

from enum import Enum

from kubetrain.api.constants import GROUP

LABEL_JOB = f"{GROUP}/job-name"
LABEL_ROLE = f"{GROUP}/role"
LABEL_RANK = f"{GROUP}/rank"
# Whole-job restart count the pod belongs to; pods of an older attempt are deleted on sight.
LABEL_ATTEMPT = f"{GROUP}/attempt"


class Role(str, Enum):
    """A pod's role; its one container is named after it too."""

    HEAD = "head"
    WORKER = "worker"


def head_pod_name(job: str) -> str:
    return f"{job}-head"


def worker_pod_name(job: str, rank: int) -> str:
    # Job names are at most 52 characters, so "-worker-1023" still fits in 63.
    return f"{job}-worker-{rank}"


def pod_selector(job: str) -> str:
    """The label selector of every pod (and other object) the job owns."""
    return f"{LABEL_JOB}={job}"
