"""Builders for operator tests: jobs as the API server returns them, pods as the kubelet
and the scheduler leave them."""

from __future__ import annotations

import copy
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from typing import Any

from kubetrain.api import TrainingJob, parse_job
from kubetrain_operator.config import PodSettings
from kubetrain_operator.render import head_pod, worker_pod
from kubetrain_operator.render.names import LABEL_ATTEMPT, LABEL_JOB, LABEL_RANK, LABEL_ROLE
from tests.conftest import job_dict

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
UID = "0b9c5a1e-0000-4000-8000-000000000001"
# The ownerReference every object of job "t" carries.
OWNER = {
    "apiVersion": "kubetrain.io/v1alpha1",
    "kind": "TrainingJob",
    "name": "t",
    "uid": UID,
    "controller": True,
    "blockOwnerDeletion": True,
}


def ts(seconds: float = 0.0) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def api_job_dict(name: str = "t", namespace: str = "ml", **spec_patch: Any) -> dict[str, Any]:
    """A job as the API server holds it, with checkpoints on an s3:// path (the operator refuses
    a local storagePath with no claim: no other pod would see it)."""
    data = job_dict(**({"checkpoint": {"storagePath": "s3://bucket/runs"}} | spec_patch))
    data["metadata"] = {
        "name": name,
        "namespace": namespace,
        "uid": UID,
        "generation": 1,
        "creationTimestamp": ts(0),
        "resourceVersion": "100",
    }
    return data


def api_job(name: str = "t", namespace: str = "ml", **spec_patch: Any) -> TrainingJob:
    """The job the render functions get (the spec's own checkpoint path, ./runs, by default)."""
    return parse_job(api_job_dict(name, namespace, **({"checkpoint": {}} | spec_patch)))


def pod(
    name: str,
    role: str,
    *,
    rank: int | None = None,
    attempt: int = 0,
    job: str = "t",
    uid: str = UID,
    created: float = 0.0,
    phase: str = "Pending",
    ready: bool = False,
    containers: list[dict[str, Any]] | None = None,
    conditions: list[dict[str, Any]] | None = None,
    deleting: bool = False,
    reason: str | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    labels = {LABEL_JOB: job, LABEL_ROLE: role, LABEL_ATTEMPT: str(attempt)}
    if rank is not None:
        labels[LABEL_RANK] = str(rank)
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "ml",
        "uid": f"pod-{name}-{attempt}",
        "labels": labels,
        "creationTimestamp": ts(created),
        "ownerReferences": [{"uid": uid, "kind": "TrainingJob", "name": job}],
    }
    if deleting:
        meta["deletionTimestamp"] = ts(created + 1)
    conds = list(conditions or [])
    if phase == "Running":
        conds.append({"type": "Ready", "status": "True" if ready else "False"})
    status: dict[str, Any] = {"phase": phase, "conditions": conds}
    if containers is not None:
        status["containerStatuses"] = containers
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    return {"metadata": meta, "status": status}


def head(**kw: Any) -> dict[str, Any]:
    return pod("t-head", "head", **kw)


def worker(rank: int, **kw: Any) -> dict[str, Any]:
    return pod(f"t-worker-{rank}", "worker", rank=rank, **kw)


def terminated(
    code: int, *, reason: str = "Error", message: str = "", name: str = "worker"
) -> list[dict[str, Any]]:
    state = {"terminated": {"exitCode": code, "reason": reason, "message": message}}
    return [{"name": name, "image": "img", "state": state}]


def waiting(
    reason: str, message: str = "", *, name: str = "worker", last: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    cs: dict[str, Any] = {
        "name": name,
        "image": "kubetrain/trainer:bad",
        "state": {"waiting": {"reason": reason, "message": message}},
    }
    if last is not None:
        cs["lastState"] = {"terminated": last}
    return [cs]


def unschedulable(
    message: str = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
) -> list[dict[str, Any]]:
    return [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}
    ]


def with_(obj: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out.update(changes)
    return out


def pods(job: TrainingJob, *, attempt: int, settings: PodSettings) -> list[dict[str, Any]]:
    """Every pod of `job`: its head, then its workers."""
    workers = range(job.spec.distributed.workers)
    return [head_pod(job, attempt=attempt, settings=settings)] + [
        worker_pod(job, rank, attempt=attempt, settings=settings) for rank in workers
    ]


def http_get(url: str) -> tuple[int, str]:
    """(status, body) of a GET; an HTTP error status is an answer too."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
