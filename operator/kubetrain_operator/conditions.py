"""The job's status the Kubernetes way: metav1 conditions, set only when they change.

`next_status` turns a decision into the status the user reads. A condition's lastTransitionTime
moves only when its status flips; reason, message and observedGeneration follow the latest pass.
The phase is derived from the True conditions (`kubetrain.api.derive_phase`), never stored on its
own. `status_patch` keeps only what changed, so an unchanged job costs no write.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubetrain.api import Condition, ConditionType, Reason, TrainingJobStatus, derive_phase
from kubetrain.api.status import OperatorStatus, field_names
from kubetrain_operator.decide import (
    Action,
    Decision,
    PodKey,
    Situation,
    expected_pods,
)
from kubetrain_operator.observe import PodView
from kubetrain_operator.render.names import Role
from kubetrain_operator.timestamps import rfc3339

# The fields the operator owns in status. The head pod owns the progress fields (epoch, step,
# loss, metrics, ...: ProgressStatus), and a status patch from one never carries the other's.
OPERATOR_FIELDS = field_names(OperatorStatus)

# PodsReady=False with one of these reasons is a problem worth a Warning event; other False
# reasons (pods still starting, a suspension) are routine.
_ROUTINE_REASONS = {
    Reason.PODS_PENDING.value,
    Reason.OBJECTS_CREATED.value,
    Reason.SUSPENDED.value,
    Reason.TRAINING_COMPLETED.value,
    Reason.RETRYING.value,
    Reason.WORKER_REPLACED.value,
}
_WARNING_TYPES = {ConditionType.FAILED, ConditionType.RESTARTING, ConditionType.SPEC_CHANGE_REFUSED}


class ConditionBook:
    """A working copy of the conditions that records which ones changed."""

    def __init__(self, conditions: list[Condition], *, generation: int | None, now: datetime):
        self.items: dict[ConditionType, Condition] = {c.type: c for c in conditions}
        self.generation = generation
        self.now = rfc3339(now)
        self.changed: list[Condition] = []

    def get(self, ctype: ConditionType) -> Condition | None:
        return self.items.get(ctype)

    def is_true(self, ctype: ConditionType) -> bool:
        cond = self.items.get(ctype)
        return cond is not None and cond.status == "True"

    def set(self, ctype: ConditionType, status: bool, reason: str, message: str = "") -> None:
        value = "True" if status else "False"
        old = self.items.get(ctype)
        if old is not None and (old.status, old.reason, old.message) == (value, reason, message):
            if old.observed_generation != self.generation:
                self.items[ctype] = old.model_copy(update={"observed_generation": self.generation})
            return
        moved = old is None or old.status != value
        new = Condition(
            type=ctype,
            status=value,
            reason=reason,
            message=message,
            last_transition_time=self.now if moved or old is None else old.last_transition_time,
            observed_generation=self.generation,
        )
        self.items[ctype] = new
        if old is None or (old.status, old.reason) != (value, reason):
            self.changed.append(new)

    def set_if_present(self, ctype: ConditionType, status: bool, reason: str, msg: str) -> None:
        if ctype in self.items:
            self.set(ctype, status, reason, msg)

    def remove(self, ctype: ConditionType) -> None:
        self.items.pop(ctype, None)

    def conditions(self) -> list[Condition]:
        # Stable order: the order of ConditionType, not the order of arrival.
        return [self.items[t] for t in ConditionType if t in self.items]


def _end_attempt(book: ConditionBook, reason: str, message: str) -> None:
    """The pods of the attempt are gone or going: nothing is ready or running any more."""
    book.set_if_present(ConditionType.PODS_READY, False, reason, message)
    book.set_if_present(ConditionType.RUNNING, False, reason, message)


def _observe_pods(s: Situation, d: Decision, book: ConditionBook) -> None:
    current = {
        PodKey(p.role, p.rank if p.role is Role.WORKER else None): p
        for p in s.pods
        if not p.deleting and p.attempt == s.status.restarts and p.role is not None
    }
    expected = expected_pods(s.spec)
    waiting = [k.pod_name(s.name) for k in expected if k not in current or not current[k].running]
    head = current.get(PodKey(Role.HEAD))
    head_ready = head is not None and head.ready and not head.deleting
    if not waiting:
        book.set(ConditionType.PODS_READY, True, Reason.ALL_PODS_RUNNING.value, "all pods running")
    elif d.faults:
        fault = d.faults[0]
        message = "; ".join(f.message for f in d.faults)
        book.set(ConditionType.PODS_READY, False, fault.reason, message)
    elif not book.is_true(ConditionType.RESTARTING):
        message = f"waiting for {len(waiting)} pod(s) to run: {', '.join(waiting)}"
        book.set(ConditionType.PODS_READY, False, Reason.PODS_PENDING.value, message)
    _observe_queue(current.values(), book)
    if head_ready:
        # Sticky for the attempt: a flapping probe must not flap the phase.
        training = "the driver is training"
        book.set(ConditionType.RUNNING, True, Reason.TRAINING_STARTED.value, training)
        if not waiting and book.is_true(ConditionType.RESTARTING):
            book.set(
                ConditionType.RESTARTING, False, Reason.TRAINING_STARTED.value, "training resumed"
            )
    elif book.get(ConditionType.RUNNING) is None:
        book.set(ConditionType.RUNNING, False, Reason.PODS_PENDING.value, "training not started")


def _observe_queue(pods: Iterable[PodView], book: ConditionBook) -> None:
    """Queued while a pod of the attempt is gated (Kueue's admission); False once none is."""
    gated = [p for p in pods if p.gated]
    if gated:
        gates = sorted({g for p in gated for g in p.gates}) or ["a scheduling gate"]
        names = ", ".join(p.name for p in gated)
        message = f"waiting for admission: {names} held by {', '.join(gates)}"
        book.set(ConditionType.QUEUED, True, Reason.WAITING_FOR_ADMISSION.value, message)
    elif book.is_true(ConditionType.QUEUED):
        message = "admitted: the pods' scheduling gates are gone"
        book.set(ConditionType.QUEUED, False, Reason.ADMITTED.value, message)


def next_status(
    s: Situation, d: Decision, *, generation: int | None, now: datetime
) -> TrainingJobStatus:
    """The status after carrying out `d` (pure: the same inputs give the same status)."""
    status = s.status.model_copy(deep=True)
    book = ConditionBook(status.conditions, generation=generation, now=now)
    stamp = rfc3339(now)
    action = d.action
    if d.message and action is not Action.DELETE_JOB:
        status.message = d.message

    if action is Action.FAIL:
        book.set(ConditionType.FAILED, True, d.reason, d.message)
        book.set_if_present(ConditionType.RESTARTING, False, d.reason, "the job failed")
        _end_attempt(book, d.reason, "the job failed")
        status.completion_time = stamp
    elif action is Action.SUCCEED:
        book.set(ConditionType.SUCCEEDED, True, d.reason, d.message)
        book.set_if_present(ConditionType.RESTARTING, False, d.reason, d.message)
        _end_attempt(book, d.reason, d.message)
        status.completion_time = stamp
    elif action is Action.SUSPEND:
        book.set(ConditionType.SUSPENDED, True, d.reason, d.message)
        book.set_if_present(ConditionType.CREATED, False, d.reason, "pods deleted")
        book.set_if_present(ConditionType.RESTARTING, False, d.reason, "suspended")
        _end_attempt(book, d.reason, "suspended")
    elif action is Action.RESTART_JOB:
        status.restarts += 1
        status.preemptions += int(d.preempted)
        book.set(ConditionType.RESTARTING, True, d.reason, d.message)
        book.set(ConditionType.CREATED, False, d.reason, "pods deleted for a restart")
        _end_attempt(book, d.reason, "restarting")
    elif action is Action.REPLACE_WORKERS:
        book.set(ConditionType.RESTARTING, True, d.reason, d.message)
        book.set(ConditionType.PODS_READY, False, d.reason, d.message)
        if d.worker_failure_streak is not None:
            status.worker_failure_streak = d.worker_failure_streak
    elif not derive_phase(status.conditions).is_terminal and action in (Action.CREATE, Action.NOOP):
        if action is Action.CREATE:
            resuming = book.is_true(ConditionType.SUSPENDED)
            if resuming:
                book.set(ConditionType.SUSPENDED, False, Reason.RESUMED.value, "resumed")
            if status.start_time is None or resuming:
                # Like a Job's, the active deadline counts from the latest start or resume.
                status.start_time = stamp
            if d.replaced_workers:
                status.worker_restarts += d.replaced_workers
                book.set(ConditionType.RESTARTING, True, Reason.WORKER_REPLACED.value, d.message)
            book.set(ConditionType.CREATED, True, d.reason, "pods created")
        _observe_pods(s, d, book)

    if s.refused:
        book.set(
            ConditionType.SPEC_CHANGE_REFUSED, True, Reason.SPEC_CHANGE_REFUSED.value,
            s.refused_message,
        )  # fmt: skip
    else:
        book.remove(ConditionType.SPEC_CHANGE_REFUSED)

    status.conditions = book.conditions()
    status.phase = derive_phase(status.conditions)
    status.observed_generation = generation
    return status


# --------------------------------------------------------------------------- patches and events


def _dump(status: TrainingJobStatus) -> dict[str, Any]:
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)


def status_patch(old: TrainingJobStatus, new: TrainingJobStatus) -> dict[str, Any]:
    """A merge patch of the operator's fields that changed; {} when nothing did."""
    before, after = _dump(old), _dump(new)
    patch: dict[str, Any] = {}
    for key in OPERATOR_FIELDS:
        if before.get(key) != after.get(key):
            # None deletes a field in a merge patch.
            patch[key] = after.get(key)
    return patch


@dataclass(frozen=True)
class EventSpec:
    type: str  # Normal | Warning
    reason: str
    message: str


def events_for(old: TrainingJobStatus, new: TrainingJobStatus) -> list[EventSpec]:
    """One event per condition that turned True, or turned False for a reason worth reading."""
    before = {c.type: (c.status, c.reason) for c in old.conditions}
    events: list[EventSpec] = []
    for cond in new.conditions:
        if before.get(cond.type) == (cond.status, cond.reason):
            continue
        if cond.status == "True":
            kind = "Warning" if cond.type in _WARNING_TYPES else "Normal"
        elif cond.type is ConditionType.PODS_READY and cond.reason not in _ROUTINE_REASONS:
            kind = "Warning"
        elif cond.type is ConditionType.SUSPENDED and cond.reason == Reason.RESUMED.value:
            kind = "Normal"
        else:
            continue
        events.append(EventSpec(kind, cond.reason, cond.message or cond.type.value))
    return events
