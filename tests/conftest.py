"""Shared fixtures: paths, and a tiny spec builder so tests state only what they vary."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetrain.api import TrainingJob, parse_job

# The `cluster` and `kube` fixtures of the tests against a real API server (operator, chart),
# and `apiserver`: a private etcd and kube-apiserver alone, with the CRDs (tests/apiserver.py).
pytest_plugins = ["tests.kube_cluster", "tests.apiserver"]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

BASE_JOB: dict[str, Any] = {
    "apiVersion": "kubetrain.io/v1alpha1",
    "kind": "TrainingJob",
    "metadata": {"name": "t"},
    "spec": {
        "model": {"name": "mlp"},
        "dataset": {"source": "digits"},
        "distributed": {"workers": 1},
        "metrics": {"enabled": False},
    },
}


def _merge(into: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def job_dict(**spec_patch: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE_JOB)
    _merge(data["spec"], spec_patch)
    return data


def make_job(**spec_patch: Any) -> TrainingJob:
    return parse_job(job_dict(**spec_patch))


def named_job(name: str, **spec_patch: Any) -> TrainingJob:
    """`make_job` under metadata.name `name`: checkpoints, results and metric labels go by it."""
    data = job_dict(**spec_patch)
    data["metadata"]["name"] = name
    return parse_job(data)


def example_dict(filename: str) -> dict[str, Any]:
    """The TrainingJob document of examples/`filename` (an example may carry a claim too)."""
    docs = yaml.safe_load_all((EXAMPLES / filename).read_text())
    return next(d for d in docs if isinstance(d, dict) and d.get("kind") == "TrainingJob")


@pytest.fixture
def tmp_storage(tmp_path: Path) -> str:
    return str(tmp_path / "runs")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on the local control plane (`kube`) are slow too (root, a cluster build), so that
    `-m "not slow"` leaves them out: marked before pytest's -m deselects (tryfirst)."""
    for item in items:
        if item.get_closest_marker("kube"):
            item.add_marker(pytest.mark.slow)
