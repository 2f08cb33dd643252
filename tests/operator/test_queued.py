"""A job queued by Kueue's pod integration, stepped with decide() and next_status(): while its
pods are gated it is Queued, not stuck, and its startup deadline counts from the admission, so a
job that waited an hour in the queue is not failed the moment it is admitted."""

from __future__ import annotations

from typing import Any

from kubetrain.api import ConditionType, Phase, Reason
from kubetrain_operator.decide import Action
from tests.operator.helpers import head, worker
from tests.operator.test_decide import Sim

GATE = [{"name": "kueue.x-k8s.io/admission"}]
SCHEDULING_GATED = [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]
DEADLINE = 600  # runPolicy.startupDeadlineSeconds, the default


def gated(pod: dict[str, Any]) -> dict[str, Any]:
    """A pod as Kueue's webhook leaves it: gated, and the scheduler says so."""
    pod["spec"] = {"schedulingGates": GATE}
    pod["status"]["conditions"] = SCHEDULING_GATED
    return pod


def attempt_pods(*, queued: bool, phase: str = "Pending") -> list[dict[str, Any]]:
    pods = [head(phase=phase), worker(0, phase=phase), worker(1, phase=phase)]
    return [gated(p) for p in pods] if queued else pods


def test_gated_pods_make_the_job_queued_and_name_the_gate() -> None:
    sim = Sim()
    assert sim.step(0).action is Action.CREATE
    sim.step(1, *attempt_pods(queued=True))
    assert sim.phase() is Phase.QUEUED
    assert sim.cond(ConditionType.QUEUED) == ("True", Reason.WAITING_FOR_ADMISSION.value)
    (queued,) = [c for c in sim.status.conditions if c.type is ConditionType.QUEUED]
    assert "kueue.x-k8s.io/admission" in queued.message and "t-worker-1" in queued.message


def test_an_hour_in_the_queue_does_not_use_up_the_startup_deadline() -> None:
    sim = Sim()
    sim.step(0)
    for t in (1, DEADLINE + 1, 3600):  # queued well past the deadline: still waiting
        d = sim.step(t, *attempt_pods(queued=True))
        assert d.action is Action.NOOP, d
    # Admitted at 3600: the gates go, the pods are Pending (pulling, scheduling).
    assert sim.step(3601, *attempt_pods(queued=False)).action is Action.NOOP
    assert sim.cond(ConditionType.QUEUED) == ("False", Reason.ADMITTED.value)
    assert sim.phase() is Phase.STARTING
    # The deadline counts from the admission: not failed before 3601 + 600 ...
    assert sim.step(3601 + DEADLINE - 1, *attempt_pods(queued=False)).action is Action.NOOP
    # ... and failed after it, as any job whose pods do not start.
    d = sim.step(3601 + DEADLINE + 1, *attempt_pods(queued=False))
    assert d.action is Action.FAIL
    assert d.reason == Reason.STARTUP_DEADLINE_EXCEEDED.value


def test_a_job_never_queued_keeps_its_deadline_from_the_pods_creation() -> None:
    sim = Sim()
    sim.step(0)
    assert sim.step(DEADLINE - 1, *attempt_pods(queued=False)).action is Action.NOOP
    assert sim.step(DEADLINE + 1, *attempt_pods(queued=False)).action is Action.FAIL
    assert sim.cond(ConditionType.QUEUED) is None  # no queue, no condition


def test_admitted_pods_that_run_turn_the_job_running() -> None:
    sim = Sim()
    sim.step(0)
    sim.step(5, *attempt_pods(queued=True))
    sim.step(100, *attempt_pods(queued=False, phase="Running"))
    pods = [head(phase="Running", ready=True), worker(0, phase="Running"),
            worker(1, phase="Running")]  # fmt: skip
    sim.step(110, *pods)
    assert sim.phase() is Phase.RUNNING
    assert sim.cond(ConditionType.QUEUED) == ("False", Reason.ADMITTED.value)
