"""The status half of the API: phases, typed conditions and their reasons.

Conditions follow `metav1.Condition`. The phase is *derived* from the conditions that are True
(see `derive_phase`), never stored independently, so the printer column cannot go stale.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class Phase(str, Enum):
    PENDING = "Pending"
    QUEUED = "Queued"  # the pods wait for a queue's admission (their scheduling gates)
    STARTING = "Starting"
    RUNNING = "Running"
    RESTARTING = "Restarting"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    @property
    def is_terminal(self) -> bool:
        return self in (Phase.SUCCEEDED, Phase.FAILED)


class ConditionType(str, Enum):
    """Condition types; at most one of each on a job."""

    CREATED = "Created"  # owned objects exist
    PODS_READY = "PodsReady"  # every pod is Running
    RUNNING = "Running"  # training reported progress
    SUSPENDED = "Suspended"
    # True while a pod of the attempt carries scheduling gates (Kueue's admission): queued, not
    # stuck. Its turn to False is the admission, from which the startup deadline counts.
    QUEUED = "Queued"
    RESTARTING = "Restarting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    # True while a spec edit is refused (e.g. the model changed mid-run); it does not set the
    # phase: the job keeps running with the spec it started with.
    SPEC_CHANGE_REFUSED = "SpecChangeRefused"


class Reason(str, Enum):
    """Machine-readable reasons, CamelCase as Kubernetes expects."""

    OBJECTS_CREATED = "ObjectsCreated"
    PODS_PENDING = "PodsPending"
    ALL_PODS_RUNNING = "AllPodsRunning"
    TRAINING_STARTED = "TrainingStarted"
    TRAINING_COMPLETED = "TrainingCompleted"
    EARLY_STOPPED = "EarlyStopped"
    SUSPENDED = "JobSuspended"
    RESUMED = "JobResumed"
    WAITING_FOR_ADMISSION = "WaitingForAdmission"
    ADMITTED = "Admitted"
    WORKER_REPLACED = "WorkerReplaced"
    RETRYING = "Retrying"
    PREEMPTED = "Preempted"  # a queue (Kueue) or the scheduler took the pods for other work
    # failures
    IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
    ERR_IMAGE_PULL = "ErrImagePull"
    UNSCHEDULABLE = "Unschedulable"
    OOM_KILLED = "OOMKilled"
    CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
    NON_ZERO_EXIT = "NonZeroExit"
    BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    STARTUP_DEADLINE_EXCEEDED = "StartupDeadlineExceeded"
    INVALID_SPEC = "InvalidSpec"
    GANG_SCHEDULER_MISSING = "GangSchedulerMissing"  # spec.scheduling.gang's CRD is not installed
    SPEC_CHANGE_REFUSED = "SpecChangeRefused"
    TRAINING_FAILED = "TrainingFailed"
    WORKERS_FAIL_REPEATEDLY = "WorkersFailRepeatedly"


class StatusModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Condition(StatusModel):
    type: ConditionType
    status: str = Field(pattern=r"^(True|False|Unknown)$")
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    message: str = ""
    last_transition_time: str = Field(description="RFC 3339 time the status last changed.")
    observed_generation: int | None = None


class WorkerFailureStreak(StatusModel):
    """Worker pods replaced in a row for the same error, with no epoch trained in between."""

    error: str = Field(description="What the replaced worker pods failed with.")
    epoch: int | None = Field(None, description="The job's epoch when the streak began.")
    count: int = Field(1, description="Replacements in the streak so far.")


class ModelVariant(StatusModel):
    """One exported model, measured: the original or a compressed variant (a report's row)."""

    name: str = Field(description="original, dynamic-int8, static-int8, pruned-50, ...")
    size_bytes: int = Field(description="Its state_dict on disk (model.pt).")
    parameters: int = Field(description="Weights and biases, as the float model has them.")
    nonzero: int = Field(description="Parameters that are not zero.")
    latency_ms: float = Field(
        description="Milliseconds per validation batch on one CPU thread (median)."
    )
    metrics: dict[str, float] = Field(
        default_factory=dict, description="Validation loss and metrics, as the job's."
    )


class OperatorStatus(StatusModel):
    """The fields the operator writes. A status patch from the operator carries only these."""

    phase: Phase | None = Field(None, description="Derived from the True conditions.")
    conditions: list[Condition] = Field(default_factory=list)
    message: str | None = Field(None, description="Human-readable summary of the latest event.")
    restarts: int = Field(0, description="Whole-job restarts so far; survives cleanup.")
    preemptions: int = Field(
        0,
        description="Restarts after a queue or the scheduler preempted the pods (not counted"
        " against backoffLimit).",
    )
    worker_restarts: int = Field(0, description="Worker pods replaced so far.")
    worker_failure_streak: WorkerFailureStreak | None = Field(
        None, description="The latest worker failure, while it repeats (bounds replacements)."
    )
    start_time: str | None = None
    completion_time: str | None = None
    observed_generation: int | None = None


class ProgressStatus(StatusModel):
    """The fields the training driver (the head pod) writes after every epoch."""

    epoch: int | None = Field(None, description="Last completed epoch.")
    total_epochs: int | None = None
    step: int | None = Field(None, description="Optimizer steps so far.")
    world_size: int | None = Field(
        None, description="Training ranks in the latest epoch: worker pods x ranks per pod."
    )
    loss: float | None = Field(None, description="Latest validation loss.")
    metrics: dict[str, float] = Field(default_factory=dict, description="Latest val metrics.")
    metric_summary: str | None = Field(None, description="e.g. accuracy=0.973, for the column.")
    progress: str | None = Field(None, description="`epoch/total`, for the printer column.")
    samples_per_second: float | None = None
    eta_seconds: float | None = None
    checkpoint: str | None = Field(None, description="Latest checkpoint path.")
    exported_model: str | None = Field(
        None, description="Where the exported model and its variants are (spec.export)."
    )
    model_report: str | None = Field(
        None,
        description="The exported model beside its compressed variants: size, sparsity, metric.",
    )
    model_variants: list[ModelVariant] | None = Field(
        None,
        description="The exported model and its compressed variants, measured (original first).",
    )

    def patch(self) -> dict[str, object]:
        """The merge patch that writes the fields set here (camelCase, as the CRD has them)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class TrainingJobStatus(ProgressStatus, OperatorStatus):
    """The whole status: the operator's fields and the driver's, never written together."""


def field_names(model: type[StatusModel]) -> tuple[str, ...]:
    """The status fields of `model` as the CRD names them."""
    return tuple(info.alias or name for name, info in model.model_fields.items())


# Precedence when several conditions are True: the first match wins.
_PHASE_ORDER: tuple[tuple[ConditionType, Phase], ...] = (
    (ConditionType.FAILED, Phase.FAILED),
    (ConditionType.SUCCEEDED, Phase.SUCCEEDED),
    (ConditionType.SUSPENDED, Phase.SUSPENDED),
    (ConditionType.RESTARTING, Phase.RESTARTING),
    (ConditionType.QUEUED, Phase.QUEUED),
    (ConditionType.RUNNING, Phase.RUNNING),
    (ConditionType.CREATED, Phase.STARTING),
)


def derive_phase(conditions: list[Condition]) -> Phase:
    """The phase shown to users, from the conditions that are True (never list order)."""
    true_types = {c.type for c in conditions if c.status == "True"}
    for ctype, phase in _PHASE_ORDER:
        if ctype in true_types:
            return phase
    return Phase.PENDING


# --------------------------------------------------------------------------- where a fault is

_FAULT_SITE = re.compile(
    r"\bpod (?P<pod>[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?)"
    r"(?: container (?P<container>[a-z0-9](?:[-a-z0-9]*[a-z0-9])?))?: (?P<detail>.*)",
    re.DOTALL,
)


@dataclass(frozen=True)
class FaultSite:
    """The pod (and container) a condition's message blames, and what it says happened.

    The operator writes it into a message with `fault_message`; `kubetrain status` reads it back
    with `FaultSite.find`, so the two cannot drift apart.
    """

    pod: str
    container: str | None
    detail: str

    @classmethod
    def find(cls, message: str) -> FaultSite | None:
        """The first fault named in `message` (several are joined with "; "), or None."""
        found = _FAULT_SITE.search(message)
        if found is None:
            return None
        return cls(found["pod"], found["container"], found["detail"])


def fault_message(pod: str, container: str | None, detail: str) -> str:
    """`pod P container C: detail`: how a condition's message names the pod at fault."""
    where = f"pod {pod}" + (f" container {container}" if container else "")
    return f"{where}: {detail}"
