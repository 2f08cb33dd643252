"""Which spec edits a started job honours, and which it refuses."""

from __future__ import annotations

from typing import Any

from kubetrain_operator.specdiff import changed_paths, resolve_spec
from tests.operator.helpers import api_job


def _spec(**patch: Any) -> dict[str, Any]:
    return api_job(**patch).spec.model_dump(mode="json", by_alias=True, exclude_none=True)


def test_changed_paths_are_leaves() -> None:
    a = {"model": {"name": "mlp", "hiddenSizes": [128]}, "runPolicy": {"suspend": False}}
    b = {"model": {"name": "cnn", "hiddenSizes": [64]}, "runPolicy": {"suspend": False}, "x": 1}
    assert changed_paths(a, b) == ["model.hiddenSizes", "model.name", "x"]


def test_before_the_start_everything_goes() -> None:
    out = resolve_spec(None, _spec(model={"name": "cnn"}), pods_exist=False)
    assert out.refused == () and out.effective["model"]["name"] == "cnn"


def test_run_policy_is_always_live() -> None:
    frozen = _spec()
    current = _spec(runPolicy={"activeDeadlineSeconds": 60, "suspend": True})
    out = resolve_spec(frozen, current, pods_exist=True)
    assert out.refused == ()
    assert out.effective["runPolicy"]["activeDeadlineSeconds"] == 60
    assert out.effective["runPolicy"]["suspend"] is True


def test_model_and_backend_edits_are_refused_and_change_nothing() -> None:
    frozen = _spec()
    current = _spec(model={"name": "cnn"}, distributed={"backend": "deepspeed"})
    for pods_exist in (True, False):
        out = resolve_spec(frozen, current, pods_exist=pods_exist)
        assert out.refused == ("distributed.backend", "model.name")
        assert out.effective == frozen
        assert "spec.model.name" in out.message and "spec.distributed.backend" in out.message


def test_workers_change_is_refused_while_running_and_taken_while_suspended() -> None:
    frozen = _spec(distributed={"workers": 2})
    current = _spec(
        distributed={"workers": 4, "ranksPerPod": 2}, pod={"nodeSelector": {"pool": "b"}}
    )
    running = resolve_spec(frozen, current, pods_exist=True)
    assert running.refused == (
        "distributed.ranksPerPod",
        "distributed.workers",
        "pod.nodeSelector.pool",
    )
    assert running.effective["distributed"]["workers"] == 2
    stopped = resolve_spec(frozen, current, pods_exist=False)
    assert stopped.refused == ()
    assert stopped.effective["distributed"]["workers"] == 4
    assert stopped.effective["distributed"]["ranksPerPod"] == 2
    assert stopped.effective["pod"]["nodeSelector"] == {"pool": "b"}


def test_a_removed_optional_field_is_removed() -> None:
    frozen = _spec(runPolicy={"activeDeadlineSeconds": 60})
    current = _spec()
    out = resolve_spec(frozen, current, pods_exist=True)
    assert "activeDeadlineSeconds" not in out.effective["runPolicy"]
