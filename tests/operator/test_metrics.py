"""Operator metrics move on status transitions, once each."""

from __future__ import annotations

from kubetrain.api import Condition, ConditionType, Phase, TrainingJobStatus
from kubetrain_operator.metrics import Metrics
from tests.operator.helpers import T0, at


def _cond(ctype: ConditionType, status: str = "True", reason: str = "R") -> Condition:
    return Condition(type=ctype, status=status, reason=reason, last_transition_time="x")


def _value(m: Metrics, name: str, labels: dict[str, str] | None = None) -> float:
    value = m.registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else value


def test_lifecycle_counts_once() -> None:
    m = Metrics()
    empty = TrainingJobStatus()
    created = TrainingJobStatus(
        phase=Phase.STARTING,
        start_time="2026-01-01T12:00:00Z",
        conditions=[_cond(ConditionType.CREATED)],
    )
    ready = created.model_copy(
        update={"conditions": [*created.conditions, _cond(ConditionType.PODS_READY)]}
    )
    failed = ready.model_copy(
        update={
            "phase": Phase.FAILED,
            "completion_time": "2026-01-01T12:10:00Z",
            "conditions": [*ready.conditions, _cond(ConditionType.FAILED, reason="OOMKilled")],
        }
    )
    steps = [(empty, created, 0.5), (created, ready, 2.0), (ready, failed, 600)]
    for old, new, t in [*steps, (failed, failed, 700)]:
        m.observe(uid="u", created_at=T0, old=old, new=new, now=at(t))
    assert _value(m, "kubetrain_jobs_created_total") == 1
    assert _value(m, "kubetrain_job_startup_seconds_count") == 1
    assert _value(m, "kubetrain_job_startup_seconds_sum") == 2.0
    assert _value(m, "kubetrain_jobs_failed_total", {"reason": "OOMKilled"}) == 1
    assert _value(m, "kubetrain_job_duration_seconds_sum") == 600
    assert _value(m, "kubetrain_jobs", {"phase": "Failed"}) == 1
    assert _value(m, "kubetrain_jobs", {"phase": "Running"}) == 0


def test_restarts_and_success() -> None:
    m = Metrics()
    a = TrainingJobStatus(phase=Phase.RUNNING, restarts=0, start_time="2026-01-01T12:00:00Z")
    b = a.model_copy(update={"restarts": 2, "worker_restarts": 1, "phase": Phase.RESTARTING})
    c = b.model_copy(
        update={
            "phase": Phase.SUCCEEDED,
            "completion_time": "2026-01-01T13:00:00Z",
            "conditions": [_cond(ConditionType.SUCCEEDED)],
        }
    )
    m.observe(uid="u", created_at=T0, old=a, new=b, now=at(1))
    m.observe(uid="u", created_at=T0, old=b, new=c, now=at(2))
    assert _value(m, "kubetrain_jobs_restarted_total") == 2
    assert _value(m, "kubetrain_workers_replaced_total") == 1
    assert _value(m, "kubetrain_jobs_succeeded_total") == 1
    assert _value(m, "kubetrain_job_duration_seconds_sum") == 3600
    assert _value(m, "kubetrain_job_startup_seconds_count") == 0


def test_deleted_jobs_leave_the_phase_gauge() -> None:
    m = Metrics()
    s = TrainingJobStatus(phase=Phase.RUNNING)
    m.observe(uid="a", created_at=None, old=s, new=s, now=at(0))
    m.observe(uid="b", created_at=None, old=s, new=s, now=at(0))
    assert _value(m, "kubetrain_jobs", {"phase": "Running"}) == 2
    m.forget("a")
    assert _value(m, "kubetrain_jobs", {"phase": "Running"}) == 1


def test_fresh_registries_do_not_share_counts() -> None:
    a, b = Metrics(), Metrics()
    a.created.inc()
    assert _value(b, "kubetrain_jobs_created_total") == 0
