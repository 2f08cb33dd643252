"""The operator's Prometheus metrics, counted from status transitions.

Counters move when a status write changes a condition, never per reconcile, so a restarted
operator (which finds the transitions already in status) counts nothing twice. Gauges are read
from each job's latest status at scrape time: the phases, and the exported model's variants
(`status.modelVariants`, which the head pod writes once training ends and the job keeps until it
is deleted). Each `Metrics` owns its registry: tests get a fresh one, the entry point serves one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kubetrain.api import ConditionType, Phase, TrainingJobStatus
from kubetrain.api.status import ModelVariant
from kubetrain_operator.timestamps import parse_time

# Seconds. Startup spans a pod creation on an idle control plane (< 1 s) to an image pull and a
# GPU node scale-up (minutes).
_STARTUP_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)
# Seconds. Training jobs last from a minute (a smoke test) to days.
_DURATION_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, 259200)
# Seconds. One reconcile is a GET, a LIST and a few writes: milliseconds, seconds when throttled.
_RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def _turned_true(old: TrainingJobStatus, new: TrainingJobStatus, ctype: ConditionType) -> bool:
    def true(s: TrainingJobStatus) -> bool:
        return any(c.type is ctype and c.status == "True" for c in s.conditions)

    return true(new) and not true(old)


def _seconds_between(start: str | None, end: str | None) -> float | None:
    a, b = parse_time(start), parse_time(end)
    if a is None or b is None:
        return None
    return max(0.0, (b - a).total_seconds())


class _PhaseCollector(Collector):
    """`kubetrain_jobs{phase}`: computed from the latest phase of each job at scrape time."""

    def __init__(self, phases: dict[str, Phase]) -> None:
        self.phases = phases

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "kubetrain_jobs", "TrainingJobs this operator manages, by phase.", labels=["phase"]
        )
        counts = dict.fromkeys(Phase, 0)
        for phase in list(self.phases.values()):
            counts[phase] += 1
        for phase, count in counts.items():
            gauge.add_metric([phase.value], count)
        yield gauge


@dataclass(frozen=True)
class _ExportedModel:
    namespace: str
    job: str
    variants: tuple[ModelVariant, ...]


class _ModelCollector(Collector):
    """`kubetrain_model_*{namespace, job, variant}`: each job's exported model and its compressed
    variants, as its status lists them (size, parameters, latency, validation metrics)."""

    def __init__(self, models: dict[str, _ExportedModel]) -> None:
        self.models = models

    def collect(self) -> Iterator[Metric]:
        labels = ["namespace", "job", "variant"]
        size = GaugeMetricFamily(
            "kubetrain_model_size_bytes", "Exported model: state_dict size on disk.", labels=labels
        )
        parameters = GaugeMetricFamily(
            "kubetrain_model_parameters", "Exported model: parameters.", labels=labels
        )
        nonzero = GaugeMetricFamily(
            "kubetrain_model_nonzero_parameters",
            "Exported model: parameters that are not zero.",
            labels=labels,
        )
        latency = GaugeMetricFamily(
            "kubetrain_model_latency_seconds",
            "Exported model: seconds per validation batch on one CPU thread (median).",
            labels=labels,
        )
        metric = GaugeMetricFamily(
            "kubetrain_model_metric",
            "Exported model: validation loss and metrics.",
            labels=[*labels, "metric"],
        )
        for model in list(self.models.values()):
            for v in model.variants:
                key = [model.namespace, model.job, v.name]
                size.add_metric(key, v.size_bytes)
                parameters.add_metric(key, v.parameters)
                nonzero.add_metric(key, v.nonzero)
                latency.add_metric(key, v.latency_ms / 1000.0)
                for name, value in sorted(v.metrics.items()):
                    metric.add_metric([*key, name], value)
        yield from (size, parameters, nonzero, latency, metric)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.created = Counter(
            "kubetrain_jobs_created", "TrainingJobs whose pods were created.", registry=r
        )
        self.succeeded = Counter(
            "kubetrain_jobs_succeeded", "TrainingJobs that succeeded.", registry=r
        )
        self.failed = Counter(
            "kubetrain_jobs_failed", "TrainingJobs that failed, by reason.", ["reason"], registry=r
        )
        self.restarted = Counter(
            "kubetrain_jobs_restarted", "Whole-job restarts (backoffLimit).", registry=r
        )
        self.workers_replaced = Counter(
            "kubetrain_workers_replaced", "Worker pods replaced after they died.", registry=r
        )
        self.startup = Histogram(
            "kubetrain_job_startup_seconds",
            "From the TrainingJob's creation to all of its pods Running.",
            buckets=_STARTUP_BUCKETS,
            registry=r,
        )
        self.duration = Histogram(
            "kubetrain_job_duration_seconds",
            "From a job's start to its end (succeeded or failed).",
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.reconcile = Histogram(
            "kubetrain_reconcile_duration_seconds",
            "Time of one reconcile pass of one job.",
            buckets=_RECONCILE_BUCKETS,
            registry=r,
        )
        self.reconcile_errors = Counter(
            "kubetrain_reconcile_errors", "Reconcile passes that raised.", registry=r
        )
        self.phases: dict[str, Phase] = {}
        r.register(_PhaseCollector(self.phases))
        self.models: dict[str, _ExportedModel] = {}
        r.register(_ModelCollector(self.models))

    def observe(
        self,
        *,
        uid: str,
        created_at: datetime | None,
        old: TrainingJobStatus,
        new: TrainingJobStatus,
        now: datetime,
    ) -> None:
        """Counts what changed between two statuses of one job."""
        if new.phase is not None:
            self.phases[uid] = new.phase
        if old.start_time is None and new.start_time is not None:
            self.created.inc()
        first_start = (
            new.restarts == 0
            and new.worker_restarts == 0
            and not any(c.type is ConditionType.SUSPENDED for c in new.conditions)
        )
        ready = _turned_true(old, new, ConditionType.PODS_READY)
        if first_start and ready and created_at is not None:
            self.startup.observe(max(0.0, (now - created_at).total_seconds()))
        if new.restarts > old.restarts:
            self.restarted.inc(new.restarts - old.restarts)
        if new.worker_restarts > old.worker_restarts:
            self.workers_replaced.inc(new.worker_restarts - old.worker_restarts)
        ended = False
        if _turned_true(old, new, ConditionType.SUCCEEDED):
            self.succeeded.inc()
            ended = True
        if _turned_true(old, new, ConditionType.FAILED):
            reason = next(c.reason for c in new.conditions if c.type is ConditionType.FAILED)
            self.failed.labels(reason=reason).inc()
            ended = True
        if ended:
            seconds = _seconds_between(new.start_time, new.completion_time)
            if seconds is not None:
                self.duration.observe(seconds)

    def observe_model(
        self, *, uid: str, namespace: str, job: str, status: TrainingJobStatus
    ) -> None:
        """The exported model's gauges of one job, from the variants its status lists."""
        if status.model_variants:
            self.models[uid] = _ExportedModel(namespace, job, tuple(status.model_variants))
        else:
            self.models.pop(uid, None)

    def forget(self, uid: str) -> None:
        """A deleted job leaves the phase gauge and its model's gauges."""
        self.phases.pop(uid, None)
        self.models.pop(uid, None)
