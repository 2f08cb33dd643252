"""What a TrainingJob read from the cluster says, for people: its phase, its failure (reason,
pod and container), its progress line, its age, its row in `kubetrain list`. Pure functions of
the typed job; no Kubernetes client here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from kubetrain.api import Condition, ConditionType, Phase, TrainingJob, derive_phase
from kubetrain.api.progress import progress_parts
from kubetrain.api.status import FaultSite


def phase_of(job: TrainingJob) -> Phase:
    """The phase, derived from the True conditions (as the operator derives it); Pending for a
    job the operator has not seen yet."""
    status = job.status
    if status is None:
        return Phase.PENDING
    if status.conditions:
        return derive_phase(status.conditions)
    return status.phase or Phase.PENDING


@dataclass(frozen=True)
class Failure:
    """Why a job failed (the True Failed condition), and the pod and container at fault."""

    reason: str  # a `kubetrain.api.Reason` value (InvalidSpec, OOMKilled, ...), or the kubelet's
    message: str
    pod: str | None
    container: str | None

    @classmethod
    def of(cls, job: TrainingJob) -> Failure | None:
        conditions = job.status.conditions if job.status else []
        for cond in conditions:
            if cond.type is ConditionType.FAILED and cond.status == "True":
                site = FaultSite.find(cond.message)
                return cls(
                    cond.reason,
                    cond.message,
                    site.pod if site else None,
                    site.container if site else None,
                )
        return None

    def describe(self) -> str:
        """`OOMKilled: pod j-worker-1 container worker: ...`: the reason, then the message,
        which names the pod and container when one was at fault."""
        return f"{self.reason}: {self.message}" if self.message else self.reason


def metric_name(job: TrainingJob) -> str:
    """The headline metric (`spec.training.metric`): accuracy, f1, ..."""
    return job.spec.training.metric.value


def progress_line(job: TrainingJob) -> str | None:
    """`epoch 3/10  loss 0.4012  accuracy 0.9033  812 samples/s  ETA 0:00:07`, from the status
    the head writes after every epoch, as `kubetrain run` prints it; None before the first."""
    status = job.status
    if status is None or status.epoch is None:
        return None
    name = metric_name(job)
    parts = progress_parts(
        epoch=status.epoch,
        total_epochs=status.total_epochs or job.spec.training.epochs,
        loss=status.loss,
        metric_name=name,
        metric=status.metrics.get(f"val_{name}"),
        samples_per_second=status.samples_per_second,
        eta_seconds=status.eta_seconds,
    )
    return "  ".join(parts)


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 time as the API server writes it (`2024-05-01T12:00:00Z`); None if absent."""
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def created_at(job: TrainingJob) -> datetime | None:
    return parse_time((job.metadata.model_extra or {}).get("creationTimestamp"))


def human_duration(seconds: float) -> str:
    """kubectl's AGE: `45s`, `3m28s`, `25m`, `4h5m`, `30h`, `3d4h`, `40d`, `2y3d`."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    years = days // 365
    if hours < 24 * 365 * 8:
        return f"{years}y{days % 365}d" if days % 365 else f"{years}y"
    return f"{years}y"


def age(at: datetime | None, now: datetime) -> str:
    """How long ago `at` was, as kubectl's AGE column says it; "<unknown>" without a time."""
    if at is None:
        return "<unknown>"
    return human_duration((now - at).total_seconds())


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


# --------------------------------------------------------------------------- kubetrain list

LIST_COLUMNS = ("NAME", "PHASE", "EPOCH", "METRIC", "RESTARTS", "AGE")


def list_row(job: TrainingJob, now: datetime, *, with_namespace: bool = False) -> list[str]:
    """The job's row under LIST_COLUMNS (NAMESPACE first when `with_namespace`).

    RESTARTS counts whole-job restarts and worker pods replaced: every time training started
    again from a checkpoint (`kubetrain status` shows the two apart).
    """
    status = job.status
    epoch = ""
    if status is not None and status.epoch is not None:
        epoch = status.progress or f"{status.epoch}/{status.total_epochs or '?'}"
    restarts = (status.restarts + status.worker_restarts) if status else 0
    row = [
        job.name,
        phase_of(job).value,
        epoch,
        (status.metric_summary or "") if status else "",
        str(restarts),
        age(created_at(job), now),
    ]
    return [job.namespace, *row] if with_namespace else row


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Columns padded as kubectl pads them (three spaces apart), no trailing blanks."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in [header, *rows]]  # fmt: skip
    return "\n".join(lines)


# --------------------------------------------------------------------------- kubetrain status


@dataclass(frozen=True)
class JobStatus:
    """What `kubetrain status` shows: the job's phase and conditions, why it failed (pod and
    container), its progress, checkpoint and metrics, and the last lines of a pod's log."""

    job: TrainingJob
    phase: Phase
    conditions: tuple[Condition, ...]
    failure: Failure | None
    progress: str | None
    checkpoint: str | None
    metrics: dict[str, float]
    restarts: int
    worker_restarts: int
    message: str | None
    log_pod: str | None = None  # whose log `log_tail` is
    log_tail: tuple[str, ...] = ()
    log_note: str | None = None  # why there is no log tail, when there is none

    @classmethod
    def of(
        cls,
        job: TrainingJob,
        *,
        log_pod: str | None = None,
        log_tail: tuple[str, ...] = (),
        log_note: str | None = None,
    ) -> JobStatus:
        status = job.status
        return cls(
            job=job,
            phase=phase_of(job),
            conditions=tuple(status.conditions) if status else (),
            failure=Failure.of(job),
            progress=progress_line(job),
            checkpoint=status.checkpoint if status else None,
            metrics=dict(status.metrics) if status else {},
            restarts=status.restarts if status else 0,
            worker_restarts=status.worker_restarts if status else 0,
            message=status.message if status else None,
            log_pod=log_pod,
            log_tail=log_tail,
            log_note=log_note,
        )


# --------------------------------------------------------------------------- kubetrain metrics

_PROGRESS_FIELDS = {
    "epoch", "total_epochs", "step", "loss", "metrics", "samples_per_second", "eta_seconds",
    "checkpoint",
}  # fmt: skip


def metrics_of(job: TrainingJob) -> dict[str, Any]:
    """The latest progress the head wrote into the status, as the CRD names it (epoch,
    totalEpochs, step, loss, metrics: {val_accuracy: ...}, samplesPerSecond, etaSeconds,
    checkpoint); {} before the first epoch."""
    if job.status is None:
        return {}
    values = job.status.model_dump(
        mode="json", by_alias=True, exclude_none=True, include=_PROGRESS_FIELDS
    )
    if not values.get("metrics"):
        values.pop("metrics", None)
    return values


# --------------------------------------------------------------------------- kubetrain wait


class WaitFor(str, Enum):
    """What `wait` waits for."""

    SUCCEEDED = "succeeded"  # a failure ends the wait as an error
    FINISHED = "finished"  # Succeeded or Failed, either is the end


class Verdict(str, Enum):
    DONE = "done"  # what was awaited happened
    FAILED = "failed"  # the job failed while it was awaited to succeed


def verdict(phase: Phase, wait_for: WaitFor) -> Verdict | None:
    """Whether a job in `phase` ends a wait for `wait_for`; None: keep waiting."""
    if phase is Phase.SUCCEEDED or (phase is Phase.FAILED and wait_for is WaitFor.FINISHED):
        return Verdict.DONE
    if phase is Phase.FAILED:
        return Verdict.FAILED
    return None


def status_line(job: TrainingJob) -> str:
    """One line of where the job is: `mnist-mlp  Running  epoch 3/10  loss ...`; before the
    first epoch (or while it restarts) the operator's latest message too, and once it failed,
    why."""
    return "  ".join(status_parts(job))


def status_parts(job: TrainingJob) -> list[str]:
    """`status_line`'s parts: the name, the phase, then what there is to say."""
    phase = phase_of(job)
    parts = [job.name, phase.value]
    progress = progress_line(job)
    if progress:
        parts.append(progress)
    failure = Failure.of(job)
    if failure is not None:
        parts.append(failure.describe())
    elif (
        job.status is not None
        and job.status.message
        and (not progress or phase is Phase.RESTARTING)
    ):
        parts.append(job.status.message)
    return parts
