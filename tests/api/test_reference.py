"""The spec reference in docs/ is generated from the models and must not drift from them."""

from __future__ import annotations

from kubetrain.api.reference import render_reference
from kubetrain.api.spec import DistributedSpec, TrainingJobSpec
from tests.conftest import ROOT

REFERENCE = ROOT / "docs" / "spec-reference.md"


def test_committed_reference_matches_the_models() -> None:
    assert REFERENCE.read_text() == render_reference(), (
        "docs/spec-reference.md is stale: run 'kubetrain reference -o docs/spec-reference.md'"
    )


def test_every_top_level_field_has_a_row() -> None:
    text = render_reference()
    for field in TrainingJobSpec.model_fields.values():
        assert f"| `{field.alias}` |" in text


def test_a_row_says_type_default_bounds_and_allowed_values() -> None:
    rows = {line.split(" | ")[0]: line for line in render_reference().splitlines()}
    default = DistributedSpec.model_fields["workers"].default
    assert f"| integer | `{default}` | ≥ 1; ≤ 1024 |" in rows["| `distributed.workers`"]
    assert "`ddp`, `deepspeed`" in rows["| `distributed.backend`"]
    assert "**required.**" in rows["| `model.name`"]
