"""Kubernetes Events about a TrainingJob, as `kubectl describe tj` shows them."""

from __future__ import annotations

from typing import Any

from kubetrain.api import API_VERSION, KIND

_MAX_MESSAGE = 1024  # the API server rejects event messages over 1 KiB in newer versions


def job_event(
    *,
    name: str,
    namespace: str,
    uid: str,
    type: str,  # the Event field's own name
    reason: str,
    message: str,
    source: str,
    at: str,
) -> dict[str, Any]:
    text = message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 1] + "…"
    return {
        "apiVersion": "v1",
        "kind": "Event",
        # The API server appends a random suffix: one object per event, never a conflict.
        "metadata": {"generateName": f"{name}.", "namespace": namespace},
        "involvedObject": {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": name,
            "namespace": namespace,
            "uid": uid,
        },
        "type": type,
        "reason": reason,
        "message": text,
        "source": {"component": source},
        "reportingComponent": source,
        "firstTimestamp": at,
        "lastTimestamp": at,
        "count": 1,
    }
