"""Job loops run without kopf's finalizer, and the status writes that replace it are guarded."""

from __future__ import annotations

from typing import Any

import kopf

import kubetrain_operator.handlers  # noqa: F401  (registers the operator's handlers)
from kubetrain.api import GROUP, PLURAL, VERSION
from kubetrain_operator._kopf.daemons import daemons, release_daemons
from kubetrain_operator.kube import guarded_status_patch


def test_a_daemon_is_released_from_its_finalizer() -> None:
    registry = kopf.OperatorRegistry()

    @kopf.daemon(GROUP, VERSION, PLURAL, registry=registry)
    async def loop(**_: Any) -> None: ...

    (before,) = daemons(registry)
    assert before.requires_finalizer  # kopf's default: a finalizer on every job
    assert release_daemons(registry) == [before.id]
    (after,) = daemons(registry)
    assert after.requires_finalizer is False
    assert (after.id, after.fn, after.cancellation_timeout) == (
        before.id, before.fn, before.cancellation_timeout
    )  # fmt: skip
    assert release_daemons(registry) == []  # once is enough


def test_the_operators_job_loop_is_a_daemon_kopf_can_find() -> None:
    # If kopf moves its internals, release_daemons would find nothing and jobs would carry a
    # finalizer again: this fails first.
    ids = [h.id for h in daemons(kopf.get_default_registry())]
    assert any(i.endswith("keep_job_reconciled") for i in ids), ids


def test_a_guarded_status_patch_tests_the_uid_then_sets_and_removes_keys() -> None:
    assert guarded_status_patch("u1", {"phase": "Running", "message": None}, has_status=True) == [
        {"op": "test", "path": "/metadata/uid", "value": "u1"},
        {"op": "add", "path": "/status/phase", "value": "Running"},
        {"op": "remove", "path": "/status/message"},
    ]


def test_a_guarded_status_patch_adds_a_missing_status_whole() -> None:
    patch = {"phase": "Starting", "conditions": [{"type": "Created"}], "message": None}
    assert guarded_status_patch("u1", patch, has_status=False) == [
        {"op": "test", "path": "/metadata/uid", "value": "u1"},
        {"op": "add", "path": "/status",
         "value": {"phase": "Starting", "conditions": [{"type": "Created"}]}},
    ]  # fmt: skip
