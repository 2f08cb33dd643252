"""metav1 conditions: transition times move only on a status flip; patches carry only changes."""

from __future__ import annotations

from kubetrain.api import Condition, ConditionType, Phase, TrainingJobStatus
from kubetrain_operator.conditions import (
    ConditionBook,
    EventSpec,
    events_for,
    status_patch,
)
from kubetrain_operator.timestamps import rfc3339
from tests.operator.helpers import at


def _book(*conds: Condition, generation: int = 1, t: float = 0) -> ConditionBook:
    return ConditionBook(list(conds), generation=generation, now=at(t))


def test_new_condition_gets_now_and_generation() -> None:
    book = _book(generation=3, t=5)
    book.set(ConditionType.CREATED, True, "ObjectsCreated", "pods created")
    (cond,) = book.conditions()
    assert cond.last_transition_time == rfc3339(at(5)) == "2026-01-01T12:00:05Z"
    assert cond.observed_generation == 3
    assert [c.type for c in book.changed] == [ConditionType.CREATED]


def test_reason_change_keeps_the_transition_time() -> None:
    book = _book(t=0)
    book.set(ConditionType.PODS_READY, False, "PodsPending", "waiting")
    first = book.conditions()[0]
    later = _book(first, t=30)
    later.set(ConditionType.PODS_READY, False, "Unschedulable", "pod x: unschedulable")
    cond = later.conditions()[0]
    assert cond.reason == "Unschedulable"
    assert cond.last_transition_time == first.last_transition_time
    assert later.changed  # a new reason is news (an event), even without a flip


def test_status_flip_moves_the_transition_time() -> None:
    book = _book(t=0)
    book.set(ConditionType.PODS_READY, False, "PodsPending")
    later = _book(*book.conditions(), t=9)
    later.set(ConditionType.PODS_READY, True, "AllPodsRunning")
    assert later.conditions()[0].last_transition_time == "2026-01-01T12:00:09Z"


def test_setting_the_same_value_again_changes_nothing() -> None:
    book = _book(t=0)
    book.set(ConditionType.RUNNING, True, "TrainingStarted", "training")
    again = _book(*book.conditions(), t=50)
    again.set(ConditionType.RUNNING, True, "TrainingStarted", "training")
    assert again.conditions() == book.conditions() and again.changed == []


def test_message_only_change_is_not_an_event() -> None:
    book = _book(t=0)
    book.set(ConditionType.PODS_READY, False, "PodsPending", "waiting for 3 pods")
    again = _book(*book.conditions(), t=1)
    again.set(ConditionType.PODS_READY, False, "PodsPending", "waiting for 2 pods")
    assert again.conditions()[0].message == "waiting for 2 pods" and again.changed == []


def test_conditions_come_out_in_a_stable_order() -> None:
    book = _book()
    book.set(ConditionType.FAILED, True, "OOMKilled")
    book.set(ConditionType.CREATED, True, "ObjectsCreated")
    assert [c.type for c in book.conditions()] == [ConditionType.CREATED, ConditionType.FAILED]


def _cond(ctype: ConditionType, status: str, reason: str, message: str = "") -> Condition:
    return Condition(
        type=ctype, status=status, reason=reason, message=message,
        last_transition_time="2026-01-01T12:00:00Z", observed_generation=1,
    )  # fmt: skip


def test_status_patch_holds_only_changed_operator_fields() -> None:
    old = TrainingJobStatus(epoch=3, progress="3/10", restarts=0)
    new = old.model_copy(update={"restarts": 1, "phase": Phase.RESTARTING})
    assert status_patch(old, new) == {"phase": "Restarting", "restarts": 1}
    assert status_patch(old, old) == {}


def test_status_patch_never_touches_the_drivers_fields() -> None:
    old = TrainingJobStatus(epoch=3, loss=0.5)
    new = old.model_copy(update={"epoch": None, "loss": None})  # a stale view of progress
    assert status_patch(old, new) == {}


def test_status_patch_deletes_a_removed_condition_list_entry() -> None:
    refused = _cond(ConditionType.SPEC_CHANGE_REFUSED, "True", "SpecChangeRefused")
    old = TrainingJobStatus(conditions=[refused])
    new = TrainingJobStatus(conditions=[])
    assert status_patch(old, new) == {"conditions": []}


def test_events_for_failures_are_warnings_and_routine_pending_is_silent() -> None:
    old = TrainingJobStatus()
    new = TrainingJobStatus(
        conditions=[
            _cond(ConditionType.CREATED, "True", "ObjectsCreated", "pods created"),
            _cond(ConditionType.PODS_READY, "False", "PodsPending", "waiting"),
            _cond(ConditionType.RUNNING, "False", "PodsPending", "not yet"),
        ]
    )
    assert events_for(old, new) == [EventSpec("Normal", "ObjectsCreated", "pods created")]
    failing = new.model_copy(
        update={
            "conditions": [
                *new.conditions[:1],
                _cond(ConditionType.PODS_READY, "False", "ErrImagePull", "pod t-head: cannot pull"),
                _cond(ConditionType.FAILED, "True", "ErrImagePull", "pod t-head: cannot pull"),
            ]
        }
    )
    assert events_for(new, failing) == [
        EventSpec("Warning", "ErrImagePull", "pod t-head: cannot pull"),
        EventSpec("Warning", "ErrImagePull", "pod t-head: cannot pull"),
    ]
    assert events_for(failing, failing) == []


def test_resume_is_announced() -> None:
    old = TrainingJobStatus(conditions=[_cond(ConditionType.SUSPENDED, "True", "JobSuspended")])
    resumed = _cond(ConditionType.SUSPENDED, "False", "JobResumed", "resumed")
    new = TrainingJobStatus(conditions=[resumed])
    assert events_for(old, new) == [EventSpec("Normal", "JobResumed", "resumed")]


def test_the_operator_and_the_head_own_disjoint_status_fields_that_cover_the_crd() -> None:
    # A field in neither would never be written; a field in both would be overwritten by turns.
    from kubetrain.api.status import ProgressStatus, TrainingJobStatus, field_names
    from kubetrain_operator.conditions import OPERATOR_FIELDS

    progress = set(field_names(ProgressStatus))
    assert not progress & set(OPERATOR_FIELDS)
    assert progress | set(OPERATOR_FIELDS) == set(field_names(TrainingJobStatus))
    assert "workerFailureStreak" in OPERATOR_FIELDS and "epoch" in progress
