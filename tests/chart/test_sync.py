"""What the chart copies from the code is the same as the code: the CRDs and the RBAC rules."""

from __future__ import annotations

import json
import re
from typing import Any

from kubetrain_operator.render.install import operator_rules, peering_crds
from tests.chart.conftest import CHART, read_yaml_docs
from tests.conftest import ROOT

FIX = "run `.venv/bin/python scripts/sync-chart.py` and commit what it writes"


def test_the_chart_crd_is_byte_identical_to_crds_dir() -> None:
    chart = (CHART / "crds" / "trainingjob.yaml").read_bytes()
    source = (ROOT / "crds" / "trainingjob.yaml").read_bytes()
    assert chart == source, f"charts/kubetrain/crds/trainingjob.yaml is stale: {FIX}"


def test_the_chart_installs_kopfs_peering_crds_as_the_operator_defines_them() -> None:
    assert read_yaml_docs(CHART / "crds" / "kopf-peerings.yaml") == peering_crds(), FIX


def test_the_charts_rbac_rules_are_operator_rules() -> None:
    (rules,) = read_yaml_docs(CHART / "files" / "operator-rules.yaml")
    assert rules == operator_rules(), FIX


def test_the_crds_dir_holds_only_the_crds_the_cleanup_command_names() -> None:
    """NOTES.txt and the READMEs tell users to delete these CRDs by hand after uninstalling."""
    in_chart = {
        doc["metadata"]["name"]
        for path in (CHART / "crds").glob("*.yaml")
        for doc in read_yaml_docs(path)
    }
    for doc in (CHART / "templates" / "NOTES.txt", CHART / "README.md", ROOT / "README.md"):
        commands = re.findall(r"kubectl delete crd ([a-z0-9. -]+)", doc.read_text())
        assert commands, f"{doc.relative_to(ROOT)} does not say how to delete the CRDs"
        for command in commands:
            assert set(command.split()) == in_chart, (doc, command)


def _schema_leaves(node: dict[str, Any], path: str = "") -> list[str]:
    """Dotted paths of the schema's values that have no further properties."""
    if node.get("type") == "object" and "properties" in node:
        return [
            leaf
            for key, sub in node["properties"].items()
            if key != "global"  # Helm's own, for parent charts
            for leaf in _schema_leaves(sub, f"{path}.{key}" if path else key)
        ]
    return [path]


def _default(values: dict[str, Any], path: str) -> Any:
    for key in path.split("."):
        values = values[key]
    return values


def test_the_chart_readme_lists_every_value_with_its_default() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    (values,) = read_yaml_docs(CHART / "values.yaml")
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]*)` \|", (CHART / "README.md").read_text(), re.M)
    table = dict(rows)
    assert len(table) == len(rows), "a value is listed twice"
    assert list(table) == _schema_leaves(schema), "README.md's table and values.schema.json differ"
    for key, default in table.items():
        assert json.loads(default) == _default(values, key), f"README.md: default of {key}"
