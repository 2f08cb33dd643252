"""A Kubernetes object as JSON: what the API server sends and takes, and what render builds."""

from typing import Any

Obj = dict[str, Any]
