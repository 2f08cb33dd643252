"""Operator metrics move on status transitions, once each."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

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


# --------------------------------------------------------------------------- the exported model

VARIANTS = [
    {"name": "original", "sizeBytes": 400_000, "parameters": 1000, "nonzero": 1000,
     "latencyMs": 2.5, "metrics": {"accuracy": 0.9666, "loss": 0.1}},
    {"name": "dynamic-int8", "sizeBytes": 100_000, "parameters": 1000, "nonzero": 990,
     "latencyMs": 1.25, "metrics": {"accuracy": 0.9638, "loss": 0.12}},
]  # fmt: skip


def _status(variants: list[dict[str, object]] | None) -> TrainingJobStatus:
    """A job's status as the operator reads it, once the head pod wrote the model's variants."""
    return TrainingJobStatus.model_validate({"phase": "Succeeded", "modelVariants": variants})


def _model_series(m: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The kubetrain_model_* series of a scrape, parsed as Prometheus reads the text."""
    text = generate_latest(m.registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("kubetrain_model_")
    }


def _series(
    name: str, value: float, **labels: str
) -> tuple[tuple[str, frozenset[tuple[str, str]]], float]:
    return (name, frozenset(labels.items())), value


def test_a_jobs_exported_variants_are_gauges_by_namespace_job_and_variant() -> None:
    m = Metrics()
    m.observe_model(uid="u1", namespace="team-a", job="mnist", status=_status(VARIANTS))
    o = {"namespace": "team-a", "job": "mnist", "variant": "original"}
    q = {"namespace": "team-a", "job": "mnist", "variant": "dynamic-int8"}
    assert _model_series(m) == dict(
        [
            _series("kubetrain_model_size_bytes", 400_000, **o),
            _series("kubetrain_model_size_bytes", 100_000, **q),
            _series("kubetrain_model_parameters", 1000, **o),
            _series("kubetrain_model_parameters", 1000, **q),
            _series("kubetrain_model_nonzero_parameters", 1000, **o),
            _series("kubetrain_model_nonzero_parameters", 990, **q),
            _series("kubetrain_model_latency_seconds", 0.0025, **o),
            _series("kubetrain_model_latency_seconds", 0.00125, **q),
            _series("kubetrain_model_metric", 0.9666, **o, metric="accuracy"),
            _series("kubetrain_model_metric", 0.1, **o, metric="loss"),
            _series("kubetrain_model_metric", 0.9638, **q, metric="accuracy"),
            _series("kubetrain_model_metric", 0.12, **q, metric="loss"),
        ]
    )


def test_a_deleted_jobs_model_series_are_gone_and_other_jobs_stay() -> None:
    m = Metrics()
    m.observe_model(uid="u1", namespace="team-a", job="mnist", status=_status(VARIANTS))
    m.observe_model(uid="u2", namespace="team-b", job="mnist", status=_status(VARIANTS[:1]))
    jobs = {(dict(labels)["namespace"], dict(labels)["job"]) for _, labels in _model_series(m)}
    assert jobs == {("team-a", "mnist"), ("team-b", "mnist")}
    m.forget("u1")
    left = _model_series(m)
    assert {dict(labels)["namespace"] for _, labels in left} == {"team-b"}
    assert left[_series("kubetrain_model_size_bytes", 0, namespace="team-b", job="mnist",
                        variant="original")[0]] == 400_000  # fmt: skip
    m.forget("u2")
    assert _model_series(m) == {}


def test_a_status_without_variants_serves_none_for_that_job() -> None:
    # A job without spec.export, or whose training has not ended yet.
    m = Metrics()
    m.observe_model(uid="u1", namespace="ml", job="t", status=_status(None))
    assert _model_series(m) == {}
    m.observe_model(uid="u1", namespace="ml", job="t", status=_status(VARIANTS))
    m.observe_model(uid="u1", namespace="ml", job="t", status=_status(None))
    assert _model_series(m) == {}
