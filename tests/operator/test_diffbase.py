"""kopf's diff base is switched off: nothing is copied, and a change handler cannot sneak in."""

from __future__ import annotations

import kopf
import pytest

from kubetrain_operator import handlers
from kubetrain_operator._kopf.diffbase import NoDiffBase


def test_the_operators_own_handlers_need_no_diff_base() -> None:
    assert handlers.keep_job_reconciled  # registered on import
    NoDiffBase.guard(kopf.get_default_registry())


def test_a_change_handler_stops_the_operator_from_starting() -> None:
    registry = kopf.OperatorRegistry()

    @kopf.on.update("kubetrain.io", "v1alpha1", "trainingjobs", registry=registry)
    def on_update(**_: object) -> None: ...

    with pytest.raises(RuntimeError, match=r"change handlers.*on_update"):
        NoDiffBase.guard(registry)


def test_no_event_body_is_copied() -> None:
    pod = kopf.Body({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "labels": {"a": "b"}, "managedFields": [{"f": 1}] * 100},
        "spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Running"},
    })  # fmt: skip
    storage = NoDiffBase(prefix="kopf.kubetrain.io", key="last-handled-configuration")
    assert storage.build(body=pod) == {}
