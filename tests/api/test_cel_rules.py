"""The CRD's `x-kubernetes-validations`, evaluated by a real CEL implementation (cel-python).

An API server of 1.25 or later refuses at `kubectl apply` what these rules refuse; older ones
ignore them and the operator's semantic check refuses the job instead. Each rule must pass every
valid job (the examples among them) and catch the mistakes it claims, with the same field.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import celpy
import pytest
import yaml

from kubetrain.api import build_crd, parse_job
from tests.conftest import EXAMPLES, job_dict
from tests.mistakes import MISTAKES

Schema = dict[str, Any]
CEL = celpy.Environment()

# The shared mistakes (tests/mistakes.py) that the API server refuses by itself, with these rules.
CAUGHT_BY_CEL = {
    "custom-without-entrypoint",
    "entrypoint-not-custom",
    "fp16-on-cpu",
    "ranks-split-a-gpu",
    "claim-with-s3",
    "s3-endpoint-local-path",
    "env-value-and-secret",
    "env-from-both",
    "data-claim-relative-path",
    "volcano-queue-with-coscheduling",
    "volcano-queue-without-gang",
    "schedule-timeout-with-volcano",
    "static-int8-lstm",
    "static-int8-bert",
    "huggingface-for-mlp",
    "torchscript-for-bert",
}


def _schema() -> Schema:
    return build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def broken_rules(schema: Schema, value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, message) of every rule that `value` breaks, walking the schema as the API
    server does: each object's rules with `self` bound to it, then its properties and items."""
    for check in schema.get("x-kubernetes-validations", []):
        program = CEL.program(CEL.compile(check["rule"]))
        if not program.evaluate({"self": celpy.json_to_cel(value)}):
            yield path, check["message"]
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                yield from broken_rules(sub, value[name], f"{path}.{name}".lstrip("."))
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            yield from broken_rules(schema["items"], item, f"{path}[{i}]")


def stored(data: dict[str, Any]) -> dict[str, Any]:
    """The job as the API server validates it: every default filled in (the CRD's defaults are
    the models'), nothing that is unset."""
    job = parse_job(data)
    return {
        "apiVersion": job.api_version,
        "kind": job.kind,
        "metadata": {"name": job.name, "namespace": job.namespace},
        "spec": job.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
    }


def cluster_job(**patch: Any) -> dict[str, Any]:
    """A job that runs on a cluster as written: checkpoints on s3 (a local path needs a claim)."""
    return job_dict(**({"checkpoint": {"storagePath": "s3://bucket/runs"}} | patch))


def example_jobs() -> list[Any]:
    return [
        pytest.param(doc, id=f"{path.stem}:{doc['metadata']['name']}")
        for path in sorted(EXAMPLES.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc.get("kind") == "TrainingJob"
    ]


def test_every_rule_compiles_and_says_which_field_to_fix() -> None:
    def rules(schema: Schema) -> Iterator[dict[str, str]]:
        yield from schema.get("x-kubernetes-validations", [])
        for sub in schema.get("properties", {}).values():
            yield from rules(sub)
        if "items" in schema:
            yield from rules(schema["items"])

    found = list(rules(_schema()))
    assert len(found) >= 10
    for check in found:
        CEL.compile(check["rule"])
        assert check["message"].startswith(("spec.", "metadata.")), check


@pytest.mark.parametrize("data", example_jobs())
def test_every_example_passes_every_rule(data: dict[str, Any]) -> None:
    assert list(broken_rules(_schema(), stored(data))) == []


def test_a_job_using_every_optional_section_passes() -> None:
    data = cluster_job(
        model={"name": "custom", "entrypoint": "pkg.models:build"},
        dataset={"source": "csv", "path": "/data/t.csv", "claimName": "data"},
        pod={"env": [{"name": "A", "value": "1"},
                     {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
             "envFrom": [{"configMapRef": {"name": "cm"}}]},
    )  # fmt: skip
    assert list(broken_rules(_schema(), stored(data))) == []


@pytest.mark.parametrize(
    ("patch", "field"),
    [pytest.param(patch, field, id=name) for name, patch, field, _ in MISTAKES if name in
     CAUGHT_BY_CEL],
)  # fmt: skip
def test_the_api_server_refuses_the_mistakes_it_can_naming_the_field(
    patch: dict[str, Any], field: str
) -> None:
    broken = [message for _, message in broken_rules(_schema(), stored(cluster_job(**patch)))]
    # The s3 default above must not hide a local-path mistake: patch wins over it.
    assert broken, f"no rule caught {patch}"
    assert any(message.startswith(field.split("[")[0]) for message in broken), broken


def test_a_local_checkpoint_path_without_a_claim_is_refused() -> None:
    broken = [m for _, m in broken_rules(_schema(), stored(job_dict()))]  # ./runs, no claim
    assert broken == [
        "spec.checkpoint.claimName: a local storagePath needs a PersistentVolumeClaim that every"
        " pod mounts (or set storagePath to s3://bucket/prefix)"
    ]


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("mnist-mlp", True),
        ("a" * 52, True),
        ("a" * 53, False),  # "-worker-1023" would not fit in a pod name
        ("a" * 60, False),
        ("1job", False),  # a Service name must start with a letter
        ("job-", False),
        ("Job", False),
    ],
)
def test_the_jobs_name_is_checked_by_the_api_server(name: str, ok: bool) -> None:
    value = {"metadata": {"name": name}, "spec": {}}
    root = {"x-kubernetes-validations": _schema()["x-kubernetes-validations"]}
    broken = [m for _, m in broken_rules(root, value)]
    assert (broken == []) is ok, broken
    assert all(m.startswith("metadata.name:") for m in broken)
