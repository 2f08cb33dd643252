"""Bad input is refused with the field path and what would be accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubetrain.api import InvalidTrainingJob, Phase, load_job, parse_job
from kubetrain.api.status import Condition, ConditionType, derive_phase
from tests.conftest import EXAMPLES, job_dict


def problems(**spec_patch: object) -> list[str]:
    with pytest.raises(InvalidTrainingJob) as err:
        parse_job(job_dict(**spec_patch))
    return err.value.problems


def test_unknown_model_names_field_and_choices() -> None:
    (msg,) = problems(model={"name": "resnet"})
    assert msg.startswith("spec.model.name:")
    assert "'mlp'" in msg and "'bert'" in msg and "'resnet'" in msg


def test_negative_workers() -> None:
    (msg,) = problems(distributed={"workers": -2})
    assert msg.startswith("spec.distributed.workers:") and "greater than or equal to 1" in msg


def test_misspelt_field_is_refused_not_ignored() -> None:
    (msg,) = problems(training={"epocs": 3})
    assert msg.startswith("spec.training.epocs: unknown field")


def test_every_problem_is_listed_at_once() -> None:
    found = problems(distributed={"workers": 0}, training={"epochs": 0})
    assert {m.split(":")[0] for m in found} == {"spec.distributed.workers", "spec.training.epochs"}


def test_unreadable_yaml_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidTrainingJob, match="cannot read the file"):
        load_job(tmp_path / "missing.yaml")


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_are_valid(path: Path) -> None:
    assert load_job(path).spec.model.name


def test_phase_comes_from_true_conditions_not_list_order() -> None:
    def cond(t: ConditionType, status: str = "True") -> Condition:
        return Condition(
            type=t, status=status, reason="R", lastTransitionTime="2026-01-01T00:00:00Z"
        )

    # A stale Running condition listed last must not hide Failed.
    assert derive_phase([cond(ConditionType.FAILED), cond(ConditionType.RUNNING)]) is Phase.FAILED
    assert derive_phase([cond(ConditionType.CREATED), cond(ConditionType.RUNNING, "False")]) is (
        Phase.STARTING
    )
    assert derive_phase([]) is Phase.PENDING
