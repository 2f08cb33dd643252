"""The committed CRD is exactly what the spec models generate, and it is a usable CRD."""

from __future__ import annotations

import yaml

from kubetrain.api import build_crd, render_crd_yaml
from tests.conftest import ROOT


def test_committed_crd_matches_the_models() -> None:
    committed = (ROOT / "crds" / "trainingjob.yaml").read_text()
    assert committed == render_crd_yaml(), (
        "crds/trainingjob.yaml is stale: run `kubetrain crd -o crds/trainingjob.yaml`"
    )


def _schema() -> dict:  # type: ignore[type-arg]
    version = build_crd()["spec"]["versions"][0]
    return version["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def _walk(node: object) -> list[dict]:  # type: ignore[type-arg]
    found = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found += _walk(value)
    elif isinstance(node, list):
        for value in node:
            found += _walk(value)
    return found


def test_schema_is_structural() -> None:
    for node in _walk(_schema()):
        assert "$ref" not in node and "anyOf" not in node and "allOf" not in node
        assert "title" not in node
        for key in ("exclusiveMinimum", "exclusiveMaximum"):
            assert node.get(key) in (None, True), f"{key} must be boolean in OpenAPI v3.0"


def test_crd_has_validation_defaults_status_and_columns() -> None:
    crd = build_crd()
    version = crd["spec"]["versions"][0]
    assert crd["spec"]["names"]["shortNames"] == ["tj"]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Model", "Backend", "Workers", "Ranks", "Phase", "Epoch", "Metric", "Age"]
    spec = _schema()["properties"]["spec"]
    assert set(spec["required"]) == {"model", "dataset"}
    model_name = spec["properties"]["model"]["properties"]["name"]
    assert "mlp" in model_name["enum"] and "bert" in model_name["enum"]
    workers = spec["properties"]["distributed"]["properties"]["workers"]
    assert workers["minimum"] == 1 and workers["default"] == 2
    # Absent sections default to {} so the API server fills in their children's defaults.
    assert spec["properties"]["training"]["default"] == {}
    ds_config = spec["properties"]["distributed"]["properties"]["deepspeed"]["properties"]["config"]
    assert ds_config["x-kubernetes-preserve-unknown-fields"] is True


def test_crd_yaml_round_trips() -> None:
    assert yaml.safe_load(render_crd_yaml()) == build_crd()
