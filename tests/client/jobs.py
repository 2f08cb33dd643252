"""TrainingJobs as the cluster returns them (metadata filled in, a status), for the client's
tests."""

from __future__ import annotations

from typing import Any

from kubetrain.api import TrainingJob, parse_job
from tests.conftest import job_dict

CREATED = "2024-05-01T12:00:00Z"


def condition(ctype: str, status: str = "True", reason: str = "R", message: str | None = None,
              at: str = CREATED) -> dict[str, Any]:  # fmt: skip
    """A status condition; its message says its type and reason unless given: the v1.20 API
    server refuses an empty string in this status ("must be of type string: null"), through a
    merge patch and a JSON patch alike."""
    return {"type": ctype, "status": status, "reason": reason,
            "message": f"{ctype} {reason}" if message is None else message,
            "lastTransitionTime": at}  # fmt: skip


def running(epoch: int = 3, total: int = 10, **extra: Any) -> dict[str, Any]:
    """The status of a job training epoch `epoch` of `total`, as the operator and head write it."""
    return {
        "phase": "Running",
        "conditions": [
            condition("Created", reason="ObjectsCreated"),
            condition("Running", reason="TrainingStarted"),
        ],
        "epoch": epoch,
        "totalEpochs": total,
        "progress": f"{epoch}/{total}",
        "loss": 0.4,
        "metrics": {"val_accuracy": 0.9, "val_loss": 0.4},
        "metricSummary": "accuracy=0.9000",
        "samplesPerSecond": 812.0,
        "etaSeconds": 7.0,
        "checkpoint": "/ckpt/t/checkpoint_000002",
        **extra,
    }


def failed(reason: str, message: str, **extra: Any) -> dict[str, Any]:
    base = running()
    base["phase"] = "Failed"
    base["conditions"] = [*base["conditions"], condition("Failed", reason=reason, message=message)]
    return base | extra


def cluster_job(
    name: str = "t", *, status: dict[str, Any] | None = None, namespace: str = "default",
    created: str = CREATED, **spec: Any,
) -> TrainingJob:  # fmt: skip
    data = job_dict(**spec)
    data["metadata"] = {"name": name, "namespace": namespace, "uid": f"uid-{name}",
                        "creationTimestamp": created, "resourceVersion": "1"}  # fmt: skip
    if status is not None:
        data["status"] = status
    return parse_job(data)
