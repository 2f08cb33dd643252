"""helm, and the chart rendered by `helm template` as parsed objects."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetrain_operator.kubeobj import Obj
from tests.conftest import ROOT

CHART = ROOT / "charts" / "kubetrain"
RELEASE = "kt"
NAMESPACE = "kubetrain-system"


def find_helm() -> str | None:
    own = ROOT / ".venv" / "bin" / "helm"  # scripts/get-helm.sh puts it there
    return str(own) if own.exists() else shutil.which("helm")


@pytest.fixture(scope="session")
def helm() -> str:
    found = find_helm()
    if found is None:
        message = (
            "HELM IS NOT INSTALLED: the Helm chart's tests did not run. "
            "Install it with scripts/get-helm.sh (scripts/setup.sh does)."
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=120)


def set_args(values: dict[str, str]) -> list[str]:
    """`--set-json key=value` for each value (JSON, so lists and numbers keep their type)."""
    return [arg for key, value in values.items() for arg in ("--set-json", f"{key}={value}")]


@functools.cache
def _template(helm: str, values: tuple[tuple[str, str], ...], show: str | None) -> str:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE, *set_args(dict(values))]
    if show:
        args += ["--show-only", show]
    done = run_helm(helm, *args)
    if done.returncode != 0:
        raise AssertionError(f"helm template failed:\n{done.stderr}")
    return done.stdout


def render(helm: str, values: dict[str, str] | None = None, show: str | None = None) -> list[Obj]:
    """The chart's objects for these values ({"dotted.key": "JSON text"}, as `--set-json`)."""
    text = _template(helm, tuple(sorted((values or {}).items())), show)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def by_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[Obj], kind: str) -> Obj:
    found = by_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, got {[o['metadata']['name'] for o in found]}"
    return found[0]


def read_yaml_docs(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
