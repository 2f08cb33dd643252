"""The failure and restart policy: given what is observed, decide what to do. Pure, no I/O.

`decide()` looks at one job (its spec, its status and its pods, at a given time) and returns one
`Decision`. The reconciler carries it out and `conditions.next_status` says what it means for the
status. Tests step it one observation at a time, with no cluster.

The policy is an ordered list of rules, `RULES`, like Ray Train's failure policies: each rule
looks at the job and returns a Decision, or None to leave it to the rules after it. The first
that answers wins, so the list's order is the precedence: a finished job only cleans up; an
invalid spec fails; suspension beats everything else; the active deadline beats failures; the
head's exit decides the job; then workers, then pods that cannot start, then missing pods; the
last rule always answers (wait).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from functools import cached_property

from kubetrain.api import ConditionType, Reason, TrainingJobSpec, TrainingJobStatus, derive_phase
from kubetrain.api.spec import CleanPodPolicy
from kubetrain.api.status import WorkerFailureStreak
from kubetrain_operator.config import PolicySettings
from kubetrain_operator.observe import Fault, PodView
from kubetrain_operator.render.names import Role, head_pod_name, worker_pod_name
from kubetrain_operator.timestamps import parse_time


class Action(str, Enum):
    NOOP = "Noop"  # nothing to change; status may still be refreshed
    CREATE = "Create"  # create the missing pods (and the objects they need)
    REPLACE_WORKERS = "ReplaceWorkers"  # delete failed workers; the next pass recreates them
    RESTART_JOB = "RestartJob"  # delete every pod and count a restart; resumes from checkpoint
    SUSPEND = "Suspend"  # delete every pod, keep the status
    FAIL = "Fail"
    SUCCEED = "Succeed"
    CLEAN_UP = "CleanUp"  # a finished job: delete pods as cleanPodPolicy says
    DELETE_JOB = "DeleteJob"  # ttlSecondsAfterFinished has passed

    @property
    def ends_attempt(self) -> bool:
        """The pods of the current attempt go away (or stop mattering)."""
        return self in (Action.RESTART_JOB, Action.SUSPEND, Action.FAIL, Action.SUCCEED)


@dataclass(frozen=True)
class PodKey:
    role: Role
    rank: int | None = None

    def pod_name(self, job: str) -> str:
        if self.role is Role.HEAD:
            return head_pod_name(job)
        return worker_pod_name(job, self.rank or 0)


@dataclass(frozen=True)
class Situation:
    """Everything `decide` may look at."""

    name: str
    spec: TrainingJobSpec  # the spec in force: frozen fields plus the live runPolicy
    status: TrainingJobStatus
    pods: tuple[PodView, ...]  # pods owned by this job, of any attempt
    now: datetime
    invalid: str | None = None  # why the spec cannot run (parse or pod creation refused)
    gang_missing: str | None = None  # why the gang scheduler's PodGroup cannot be made
    refused: tuple[str, ...] = ()  # spec fields whose edit is refused (see specdiff)
    refused_message: str = ""


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str = ""
    message: str = ""
    create: tuple[PodKey, ...] = ()
    delete: tuple[str, ...] = ()  # pod names
    # Worker pods this decision creates in place of lost ones. Counted when the replacement is
    # created (not when the dead pod is deleted), so each replacement counts once.
    replaced_workers: int = 0
    requeue_after: float | None = None  # seconds until something is due; None: on events only
    faults: tuple[Fault, ...] = field(default=())  # what keeps pods from running (for status)
    # REPLACE_WORKERS: the replaced workers' error, and how often in a row they failed with it.
    worker_failure_streak: WorkerFailureStreak | None = None
    # RESTART_JOB after a preemption: counted in status.preemptions, not against backoffLimit.
    preempted: bool = False


# --------------------------------------------------------------------------- helpers


def _is_true(status: TrainingJobStatus, ctype: ConditionType) -> bool:
    return any(c.type is ctype and c.status == "True" for c in status.conditions)


def expected_pods(spec: TrainingJobSpec) -> tuple[PodKey, ...]:
    workers = tuple(PodKey(Role.WORKER, rank) for rank in range(spec.distributed.workers))
    return (PodKey(Role.HEAD), *workers)


def _key(pod: PodView) -> PodKey | None:
    if pod.role is Role.HEAD:
        return PodKey(Role.HEAD)
    if pod.role is Role.WORKER and pod.rank is not None:
        return PodKey(Role.WORKER, pod.rank)
    return None


def _age(pod: PodView, now: datetime) -> float:
    return (now - pod.created).total_seconds() if pod.created else 0.0


def _soonest(*delays: float | None) -> float | None:
    due = [max(d, 0.0) for d in delays if d is not None]
    return min(due) if due else None


def _cleanup(pods: tuple[PodView, ...], policy: CleanPodPolicy) -> tuple[str, ...]:
    if policy is CleanPodPolicy.ALL:
        return tuple(p.name for p in pods)
    if policy is CleanPodPolicy.RUNNING:
        return tuple(p.name for p in pods if not p.finished)
    return ()


def _ttl(s: Situation) -> float | None:
    """A job that just finished is due again when its TTL runs out."""
    ttl = s.spec.run_policy.ttl_seconds_after_finished
    return None if ttl is None else float(ttl)


_IMAGE_PULL = (Reason.ERR_IMAGE_PULL.value, Reason.IMAGE_PULL_BACK_OFF.value)


def worker_error(details: list[str]) -> str:
    """What failed workers have in common, with numbers blanked: a Ray node refusing too little
    memory quotes the bytes it found free, which differ a little on every start."""
    return "; ".join(sorted({re.sub(r"\d+", "N", d) for d in details}))


def next_streak(status: TrainingJobStatus, error: str) -> WorkerFailureStreak:
    """The streak once workers failed with `error` again: one longer if nothing changed since
    (the same error, no epoch trained), else a new one."""
    streak = status.worker_failure_streak
    if streak is not None and streak.error == error and streak.epoch == status.epoch:
        return streak.model_copy(update={"count": streak.count + 1})
    return WorkerFailureStreak(error=error, epoch=status.epoch, count=1)


# --------------------------------------------------------------------------- what the rules see


@dataclass(frozen=True)
class Facts:
    """A situation and the policy's settings, and what the rules work out from them: each fact
    once, when a rule first asks for it. (A spec that failed to parse says nothing of its pods:
    only `finished` runs before `invalid_spec` fails it, and asks nothing of the spec.)"""

    s: Situation
    policy: PolicySettings

    @cached_property
    def live(self) -> tuple[PodView, ...]:
        """The pods not being deleted."""
        return tuple(p for p in self.s.pods if not p.deleting)

    @property
    def poll(self) -> float | None:
        """Seconds until the next look while pods are being deleted; None if none are."""
        deleting = len(self.live) < len(self.s.pods)
        return self.policy.deleting_poll_seconds if deleting else None

    @cached_property
    def expected(self) -> tuple[PodKey, ...]:
        return expected_pods(self.s.spec)

    @cached_property
    def current(self) -> dict[PodKey, PodView]:
        """The current attempt's pods by key, ranks beyond the spec's included."""
        attempt = self.s.status.restarts
        return {k: p for p in self.live if p.attempt == attempt and (k := _key(p)) is not None}

    @cached_property
    def stale(self) -> tuple[str, ...]:
        """Pods to delete: of an earlier attempt, of no known role, or of a rank beyond the spec."""
        attempt = self.s.status.restarts
        older = tuple(p.name for p in self.live if p.attempt != attempt or _key(p) is None)
        return older + tuple(p.name for k, p in self.current.items() if k not in self.expected)

    @cached_property
    def attempt_pods(self) -> list[PodView]:
        """The current attempt's pods that the spec expects."""
        return [p for k, p in self.current.items() if k in self.expected]

    @property
    def head(self) -> PodView | None:
        return self.current.get(PodKey(Role.HEAD))

    @property
    def created_before(self) -> bool:
        return _is_true(self.s.status, ConditionType.CREATED)

    @cached_property
    def finished_workers(self) -> list[PodView]:
        """The current attempt's expected worker pods that exited, whichever way."""
        return [
            pod
            for key, pod in self.current.items()
            if key.role is Role.WORKER and key in self.expected and pod.finished
        ]

    @cached_property
    def blocked(self) -> tuple[tuple[PodView, Fault], ...]:
        """The current attempt's pods that something keeps from running, and what."""
        return tuple((p, fault) for p in self.attempt_pods if (fault := p.blocker()) is not None)

    @property
    def faults(self) -> tuple[Fault, ...]:
        return tuple(fault for _, fault in self.blocked)

    # Time left, in seconds, before a rule fails the job; None where the rule does not apply.

    @property
    def deadline_left(self) -> float | None:
        """Until activeDeadlineSeconds runs out, counted from the latest start or resume."""
        limit = self.s.spec.run_policy.active_deadline_seconds
        started = parse_time(self.s.status.start_time)
        if limit is None or started is None:
            return None
        return limit - (self.s.now - started).total_seconds()

    def pull_grace_left(self, pod: PodView, fault: Fault) -> float | None:
        """Until a pod whose image cannot be pulled has used up its grace."""
        if fault.reason not in _IMAGE_PULL:
            return None
        return self.policy.image_pull_grace_seconds - _age(pod, self.s.now)

    @cached_property
    def admitted_at(self) -> datetime | None:
        """When the job last left a queue: the Queued condition's turn to False, or now if the
        status still says queued (this pass sees the gates gone). None if it never queued."""
        for cond in self.s.status.conditions:
            if cond.type is ConditionType.QUEUED:
                return (
                    self.s.now if cond.status == "True" else parse_time(cond.last_transition_time)
                )
        return None

    def _startup_age(self, pod: PodView) -> float:
        """Seconds a pod has had to start: since it was made, or since the queue let it go."""
        start = pod.created or self.s.now
        if self.admitted_at is not None:
            start = max(start, self.admitted_at)
        return (self.s.now - start).total_seconds()

    def startup_left(self, pod: PodView) -> float | None:
        """Until a pod that is not running yet reaches startupDeadlineSeconds. A gated pod waits
        in a queue and has no deadline."""
        if pod.running or pod.gated:
            return None
        return self.s.spec.run_policy.startup_deadline_seconds - self._startup_age(pod)

    @property
    def driver_startup_left(self) -> float | None:
        """Until the driver, in a running head, must have started training (the head turns
        ready when it does)."""
        head = self.head
        training = _is_true(self.s.status, ConditionType.RUNNING)
        if head is None or not head.running or head.ready or training:
            return None
        return self.s.spec.run_policy.startup_deadline_seconds - self._startup_age(head)

    @property
    def missing(self) -> list[PodKey]:
        return [k for k in self.expected if k not in self.current]

    @property
    def creatable(self) -> tuple[PodKey, ...]:
        """The missing pods whose names are free (a deleted pod may still be terminating)."""
        taken = {p.name for p in self.s.pods}
        return tuple(k for k in self.missing if k.pod_name(self.s.name) not in taken)


def _fail(f: Facts, reason: str, message: str) -> Decision:
    """The job ends; its pods go as cleanPodPolicy says (None keeps them for inspection)."""
    delete = _cleanup(f.live, f.s.spec.run_policy.clean_pod_policy)
    return Decision(Action.FAIL, reason, message, delete=delete, requeue_after=_ttl(f.s))


def _retry_or_fail(f: Facts, fault: Fault) -> Decision:
    limit = f.s.spec.run_policy.backoff_limit
    # Preemptions restarted the job too, through no fault of its own.
    restarts = f.s.status.restarts - f.s.status.preemptions
    if not fault.retryable:
        return _fail(f, fault.reason, fault.message)
    if restarts >= limit:
        message = f"{fault.message}; backoffLimit ({limit}) reached after {limit} restart(s)"
        return _fail(f, Reason.BACKOFF_LIMIT_EXCEEDED.value, message)
    message = f"restart {restarts + 1}/{limit} from the last checkpoint: {fault.message}"
    everything = tuple(p.name for p in f.live)
    return Decision(Action.RESTART_JOB, Reason.RETRYING.value, message, delete=everything)


def _due(f: Facts) -> float | None:
    """Seconds until the next pass: the soonest of the rules' deadlines, a look at names still
    taken by terminating pods, and the resync at the latest."""
    waiting_for_names = bool(f.missing) and not f.creatable
    return _soonest(
        f.deadline_left,
        f.poll,
        *(f.pull_grace_left(pod, fault) for pod, fault in f.blocked),
        *(f.startup_left(pod) for pod in f.attempt_pods),
        f.driver_startup_left,
        f.policy.deleting_poll_seconds if waiting_for_names else None,
        f.policy.resync_seconds,
    )


# --------------------------------------------------------------------------- the rules


def finished(f: Facts) -> Decision | None:
    """A finished job only cleans up, then waits for its TTL."""
    if not derive_phase(f.s.status.conditions).is_terminal:
        return None
    run = f.s.spec.run_policy
    ttl_left = None
    finished_at = parse_time(f.s.status.completion_time)
    if run.ttl_seconds_after_finished is not None and finished_at is not None:
        expires = finished_at + timedelta(seconds=run.ttl_seconds_after_finished)
        ttl_left = (expires - f.s.now).total_seconds()
        if ttl_left <= 0:
            return Decision(Action.DELETE_JOB, message="ttlSecondsAfterFinished has passed")
    delete = _cleanup(f.live, run.clean_pod_policy)
    action = Action.CLEAN_UP if delete else Action.NOOP
    return Decision(action, delete=delete, requeue_after=_soonest(ttl_left, f.poll))


def invalid_spec(f: Facts) -> Decision | None:
    """A spec that cannot run (it does not parse, or the API server refuses its pods) fails."""
    if f.s.invalid is None:
        return None
    return _fail(f, Reason.INVALID_SPEC.value, f.s.invalid)


def gang_scheduler_missing(f: Facts) -> Decision | None:
    """The spec names a gang scheduler whose PodGroup API the cluster lacks: retrying cannot
    help, so the job fails before any pod exists."""
    if f.s.gang_missing is None:
        return None
    return _fail(f, Reason.GANG_SCHEDULER_MISSING.value, f.s.gang_missing)


def suspended(f: Facts) -> Decision | None:
    if not f.s.spec.run_policy.suspend:
        return None
    everything = tuple(p.name for p in f.live)
    return Decision(
        Action.SUSPEND,
        Reason.SUSPENDED.value,
        "suspended: pods deleted, status kept; resuming continues from the last checkpoint",
        delete=everything,
        requeue_after=f.policy.deleting_poll_seconds if everything else f.poll,
    )


def past_active_deadline(f: Facts) -> Decision | None:
    left = f.deadline_left
    if left is None or left > 0:
        return None
    limit = f.s.spec.run_policy.active_deadline_seconds
    message = f"ran longer than activeDeadlineSeconds ({limit} s)"
    return _fail(f, Reason.DEADLINE_EXCEEDED.value, message)


def head_succeeded(f: Facts) -> Decision | None:
    """The head runs the driver: its exit is the job's outcome."""
    if f.head is None or not f.head.succeeded:
        return None
    return Decision(
        Action.SUCCEED,
        Reason.TRAINING_COMPLETED.value,
        "training completed",
        delete=_cleanup(f.live, f.s.spec.run_policy.clean_pod_policy),
        requeue_after=_ttl(f.s),
    )


def preempted(f: Facts) -> Decision | None:
    """A queue or the scheduler took the job's pods for other work: the job starts again from
    its checkpoint (its pods queue anew), and the restart is not the job's failure."""
    attempt = f.s.status.restarts
    cause = next(
        (why for p in f.s.pods if p.attempt == attempt and (why := p.preempted) is not None), None
    )
    if cause is None:
        return None
    message = f"preempted ({cause}); starting again from the last checkpoint"
    everything = tuple(p.name for p in f.live)
    return Decision(
        Action.RESTART_JOB, Reason.PREEMPTED.value, message, delete=everything, preempted=True
    )


def head_failed(f: Facts) -> Decision | None:
    if f.head is None or f.head.phase != "Failed":
        return None
    fault = f.head.failure(retry_on_oom=f.s.spec.run_policy.retry_on_oom)
    assert fault is not None  # a Failed pod always has a fault
    return _retry_or_fail(f, fault)


def head_vanished(f: Facts) -> Decision | None:
    """A head that vanished took the Ray cluster with it: that is a restart."""
    if f.head is not None or not f.created_before:
        return None
    if not any(k.role is Role.WORKER for k in f.current):
        return None
    fault = Fault(
        Reason.RETRYING.value, head_pod_name(f.s.name), None, "the head pod disappeared", True
    )
    return _retry_or_fail(f, fault)


def worker_failed_for_good(f: Facts) -> Decision | None:
    """A worker's permanent failure fails the job. A worker pod runs only a Ray node, so its exit
    code is Ray's (a node that could not start or lost its head), never the training's verdict
    (the head's driver gives that): such an exit is not permanent."""
    retry_on_oom = f.s.spec.run_policy.retry_on_oom
    for pod in f.finished_workers:
        fault = pod.failure(retry_on_oom=retry_on_oom)
        ray_exit = fault is not None and fault.reason == Reason.NON_ZERO_EXIT.value
        if fault is not None and not fault.retryable and not ray_exit:
            return _fail(f, fault.reason, fault.message)
    return None


def workers_failed(f: Facts) -> Decision | None:
    """Other failed workers are replaced (Ray Train resumes them); the head's wait for workers and
    Ray Train's maxFailures bound the retries, and a streak of the same failure ends them."""
    failed = f.finished_workers
    if not failed:
        return None
    faults = [p.failure(retry_on_oom=f.s.spec.run_policy.retry_on_oom) for p in failed]
    pairs = zip(failed, faults, strict=True)
    details = "; ".join(fault.message if fault else f"{p.name} exited" for p, fault in pairs)
    error = worker_error([fault.detail if fault else "exited" for fault in faults])
    streak = next_streak(f.s.status, error)
    if streak.count > f.policy.max_repeated_worker_failures:
        return _fail(
            f,
            Reason.WORKERS_FAIL_REPEATEDLY.value,
            f"worker pods failed the same way {streak.count} times in a row with no epoch"
            f" trained in between, so replacing them again would not help: {details}",
        )
    return Decision(
        Action.REPLACE_WORKERS,
        Reason.WORKER_REPLACED.value,
        f"replacing {len(failed)} worker pod(s), training resumes from the last"
        f" checkpoint: {details}",
        delete=tuple(p.name for p in failed) + f.stale,
        requeue_after=f.policy.deleting_poll_seconds,
        worker_failure_streak=streak,
    )


def cannot_start(f: Facts) -> Decision | None:
    """A pod that cannot start: a crash loop fails the job at once, an image that cannot be pulled
    once its grace is over. Other causes are named in the status and wait for the deadline."""
    for pod, fault in f.blocked:
        if fault.reason == Reason.CRASH_LOOP_BACK_OFF.value:
            return _fail(f, fault.reason, fault.message)
        grace_left = f.pull_grace_left(pod, fault)
        if grace_left is not None and grace_left <= 0:
            # Pulls failed for the whole grace: the kubelet is backing off, whichever of its
            # two states (retrying: ErrImagePull, waiting: ImagePullBackOff) shows right now.
            return _fail(f, Reason.IMAGE_PULL_BACK_OFF.value, fault.message)
    return None


def startup_deadline(f: Facts) -> Decision | None:
    """Pods not running after startupDeadlineSeconds fail the job, blamed on their cause if one
    is known (Unschedulable says more than "too late")."""
    for pod in f.attempt_pods:
        left = f.startup_left(pod)
        if left is None or left > 0:
            continue
        faults = f.faults
        reason = faults[0].reason if faults else Reason.STARTUP_DEADLINE_EXCEEDED.value
        cause = (
            "; ".join(fault.message for fault in faults) or f"pod {pod.name} is still {pod.phase}"
        )
        startup = f.s.spec.run_policy.startup_deadline_seconds
        return _fail(f, reason, f"not running after startupDeadlineSeconds ({startup} s): {cause}")
    return None


def driver_startup_deadline(f: Facts) -> Decision | None:
    """The driver must start training within the startup deadline too (workers must join)."""
    left = f.driver_startup_left
    if left is None or left > 0:
        return None
    assert f.head is not None  # a driver waiting to train runs in the head
    message = (
        f"the driver in pod {f.head.name} did not start training within"
        f" startupDeadlineSeconds ({f.s.spec.run_policy.startup_deadline_seconds} s); see its log"
    )
    return _fail(f, Reason.STARTUP_DEADLINE_EXCEEDED.value, message)


def create_missing(f: Facts) -> Decision | None:
    """Creates the missing pods whose names are free. Also when every pod exists but the status
    does not say so yet (the operator stopped between the pods and the status): the pass makes
    sure of the rest and confirms it."""
    create = f.creatable
    if not create and (f.created_before or f.missing):
        return None
    replaced = sum(1 for k in create if k.role is Role.WORKER) if f.created_before else 0
    names = ", ".join(k.pod_name(f.s.name) for k in create) or "nothing missing"
    return Decision(
        Action.CREATE,
        Reason.OBJECTS_CREATED.value,
        f"created {names}",
        create=create,
        delete=f.stale,
        replaced_workers=replaced,
        requeue_after=_due(f),
        faults=f.faults,
    )


def wait(f: Facts) -> Decision:
    """Nothing to decide: delete stale pods, and look again when something is due."""
    return Decision(Action.NOOP, delete=f.stale, requeue_after=_due(f), faults=f.faults)


# --------------------------------------------------------------------------- the policy

Rule = Callable[[Facts], Decision | None]

# The precedence: the first rule that answers decides. The last always answers.
RULES: tuple[Rule, ...] = (
    finished,
    invalid_spec,
    gang_scheduler_missing,
    suspended,
    past_active_deadline,
    head_succeeded,
    preempted,
    head_failed,
    head_vanished,
    worker_failed_for_good,
    workers_failed,
    cannot_start,
    startup_deadline,
    driver_startup_deadline,
    create_missing,
    wait,
)


def decide(s: Situation, policy: PolicySettings) -> Decision:
    facts = Facts(s, policy)
    for rule in RULES:
        decision = rule(facts)
        if decision is not None:
            return decision
    raise AssertionError("the last rule always answers")
