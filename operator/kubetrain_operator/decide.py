"""The failure and restart policy: given what is observed, decide what to do. Pure, no I/O.

`decide()` looks at one job (its spec, its status and its pods, at a given time) and returns one
`Decision`. The reconciler carries it out and `conditions.next_status` says what it means for the
status. Tests step it one observation at a time, with no cluster.

Order of precedence: a finished job only cleans up; suspension beats everything else; the active
deadline beats failures; the head's exit decides the job; then workers, then pods that cannot
start, then missing pods.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from kubetrain.api import ConditionType, Reason, TrainingJobSpec, TrainingJobStatus
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


# --------------------------------------------------------------------------- helpers


def _is_true(status: TrainingJobStatus, ctype: ConditionType) -> bool:
    return any(c.type is ctype and c.status == "True" for c in status.conditions)


def is_finished(status: TrainingJobStatus) -> bool:
    return _is_true(status, ConditionType.SUCCEEDED) or _is_true(status, ConditionType.FAILED)


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


def _cleanup(pods: list[PodView], policy: CleanPodPolicy) -> tuple[str, ...]:
    if policy is CleanPodPolicy.ALL:
        return tuple(p.name for p in pods)
    if policy is CleanPodPolicy.RUNNING:
        return tuple(p.name for p in pods if not p.finished)
    return ()


def _live(s: Situation) -> list[PodView]:
    return [p for p in s.pods if not p.deleting]


def _ttl(s: Situation) -> float | None:
    """A job that just finished is due again when its TTL runs out."""
    ttl = s.spec.run_policy.ttl_seconds_after_finished
    return None if ttl is None else float(ttl)


def _fail(s: Situation, reason: str, message: str) -> Decision:
    """The job ends; its pods go as cleanPodPolicy says (None keeps them for inspection)."""
    delete = _cleanup(_live(s), s.spec.run_policy.clean_pod_policy)
    return Decision(Action.FAIL, reason, message, delete=delete, requeue_after=_ttl(s))


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


def _retry_or_fail(s: Situation, fault: Fault) -> Decision:
    limit = s.spec.run_policy.backoff_limit
    if not fault.retryable:
        return _fail(s, fault.reason, fault.message)
    if s.status.restarts >= limit:
        message = f"{fault.message}; backoffLimit ({limit}) reached after {limit} restart(s)"
        return _fail(s, Reason.BACKOFF_LIMIT_EXCEEDED.value, message)
    message = f"restart {s.status.restarts + 1}/{limit} from the last checkpoint: {fault.message}"
    everything = tuple(p.name for p in _live(s))
    return Decision(Action.RESTART_JOB, Reason.RETRYING.value, message, delete=everything)


# --------------------------------------------------------------------------- the policy


def decide(s: Situation, policy: PolicySettings) -> Decision:
    spec, status, now = s.spec, s.status, s.now
    run = spec.run_policy
    live = _live(s)
    deleting = len(live) < len(s.pods)
    poll = policy.deleting_poll_seconds if deleting else None

    # A finished job only cleans up, then waits for its TTL.
    if is_finished(status):
        ttl_left = None
        finished_at = parse_time(status.completion_time)
        if run.ttl_seconds_after_finished is not None and finished_at is not None:
            ttl_left = (
                finished_at + timedelta(seconds=run.ttl_seconds_after_finished) - now
            ).total_seconds()
            if ttl_left <= 0:
                return Decision(Action.DELETE_JOB, message="ttlSecondsAfterFinished has passed")
        delete = _cleanup(live, run.clean_pod_policy)
        action = Action.CLEAN_UP if delete else Action.NOOP
        return Decision(action, delete=delete, requeue_after=_soonest(ttl_left, poll))

    everything = tuple(p.name for p in live)
    if s.invalid is not None:
        return _fail(s, Reason.INVALID_SPEC.value, s.invalid)

    if run.suspend:
        return Decision(
            Action.SUSPEND,
            Reason.SUSPENDED.value,
            "suspended: pods deleted, status kept; resuming continues from the last checkpoint",
            delete=everything,
            requeue_after=policy.deleting_poll_seconds if everything or deleting else None,
        )

    deadline_left = None
    started = parse_time(status.start_time)
    if run.active_deadline_seconds is not None and started is not None:
        deadline_left = run.active_deadline_seconds - (now - started).total_seconds()
        if deadline_left <= 0:
            message = f"ran longer than activeDeadlineSeconds ({run.active_deadline_seconds} s)"
            return _fail(s, Reason.DEADLINE_EXCEEDED.value, message)

    attempt = status.restarts
    stale = tuple(p.name for p in live if p.attempt != attempt or _key(p) is None)
    expected = expected_pods(spec)
    current = {k: p for p in live if p.attempt == attempt and (k := _key(p)) is not None}
    extra = tuple(p.name for k, p in current.items() if k not in expected)
    stale += extra
    attempt_pods = [p for k, p in current.items() if k in expected]
    head = current.get(PodKey(Role.HEAD))

    # The head runs the driver: its exit is the job's outcome.
    if head is not None and head.succeeded:
        return Decision(
            Action.SUCCEED,
            Reason.TRAINING_COMPLETED.value,
            "training completed",
            delete=_cleanup(live, run.clean_pod_policy),
            requeue_after=_ttl(s),
        )
    if head is not None and head.phase == "Failed":
        fault = head.failure(retry_on_oom=run.retry_on_oom)
        assert fault is not None  # a Failed pod always has a fault
        return _retry_or_fail(s, fault)

    # A head that vanished took the Ray cluster with it: that is a restart.
    created_before = _is_true(status, ConditionType.CREATED)
    if head is None and created_before and any(k.role is Role.WORKER for k in current):
        fault = Fault(
            Reason.RETRYING.value, head_pod_name(s.name), None, "the head pod disappeared", True
        )
        return _retry_or_fail(s, fault)

    # Workers: a permanent failure fails the job; others are replaced (Ray Train resumes them).
    # A worker pod runs only a Ray node, so its exit code is Ray's (a node that could not start
    # or lost its head), never the training's verdict: the head's driver gives that. Such a pod
    # is replaced; the head's wait for workers and Ray Train's maxFailures bound the retries.
    failed_workers: list[PodView] = []
    for key, pod in current.items():
        if key.role is not Role.WORKER or key not in expected or not pod.finished:
            continue
        fault = pod.failure(retry_on_oom=run.retry_on_oom)
        ray_exit = fault is not None and fault.reason == Reason.NON_ZERO_EXIT.value
        if fault is not None and not fault.retryable and not ray_exit:
            return _fail(s, fault.reason, fault.message)
        failed_workers.append(pod)
    if failed_workers:
        faults_seen = [p.failure(retry_on_oom=run.retry_on_oom) for p in failed_workers]
        pairs = zip(failed_workers, faults_seen, strict=True)
        details = "; ".join(f.message if f else f"{p.name} exited" for p, f in pairs)
        streak = next_streak(
            status, worker_error([f.detail if f else "exited" for f in faults_seen])
        )
        if streak.count > policy.max_repeated_worker_failures:
            return _fail(
                s,
                Reason.WORKERS_FAIL_REPEATEDLY.value,
                f"worker pods failed the same way {streak.count} times in a row with no epoch"
                f" trained in between, so replacing them again would not help: {details}",
            )
        return Decision(
            Action.REPLACE_WORKERS,
            Reason.WORKER_REPLACED.value,
            f"replacing {len(failed_workers)} worker pod(s), training resumes from the last"
            f" checkpoint: {details}",
            delete=tuple(p.name for p in failed_workers) + stale,
            requeue_after=policy.deleting_poll_seconds,
            worker_failure_streak=streak,
        )

    # Pods that cannot start: name the cause now, fail when it is hopeless or too late.
    faults: list[Fault] = []
    due: list[float | None] = [deadline_left, poll]
    for pod in attempt_pods:
        fault = pod.blocker()
        if fault is None:
            continue
        faults.append(fault)
        if fault.reason == Reason.CRASH_LOOP_BACK_OFF.value:
            return _fail(s, fault.reason, fault.message)
        if fault.reason in (Reason.ERR_IMAGE_PULL.value, Reason.IMAGE_PULL_BACK_OFF.value):
            age = _age(pod, now)
            if age >= policy.image_pull_grace_seconds:
                # Pulls failed for the whole grace: the kubelet is backing off, whichever of its
                # two states (retrying: ErrImagePull, waiting: ImagePullBackOff) shows right now.
                return _fail(s, Reason.IMAGE_PULL_BACK_OFF.value, fault.message)
            due.append(policy.image_pull_grace_seconds - age)
    startup = run.startup_deadline_seconds
    for pod in attempt_pods:
        if pod.running:
            continue
        age = _age(pod, now)
        if age >= startup:
            # Blame the cause if one is known (Unschedulable says more than "too late").
            reason = faults[0].reason if faults else Reason.STARTUP_DEADLINE_EXCEEDED.value
            cause = "; ".join(f.message for f in faults) or f"pod {pod.name} is still {pod.phase}"
            message = f"not running after startupDeadlineSeconds ({startup} s): {cause}"
            return _fail(s, reason, message)
        due.append(startup - age)
    # The driver must start training within the startup deadline too (workers must join).
    training = _is_true(status, ConditionType.RUNNING)
    if head is not None and head.running and not head.ready and not training:
        age = _age(head, now)
        if age >= startup:
            message = (
                f"the driver in pod {head.name} did not start training within"
                f" startupDeadlineSeconds ({startup} s); see its log"
            )
            return _fail(s, Reason.STARTUP_DEADLINE_EXCEEDED.value, message)
        due.append(startup - age)

    # Create what is missing, once its name is free (a deleted pod may still be terminating).
    taken = {p.name for p in s.pods}
    missing = [k for k in expected if k not in current]
    create = tuple(k for k in missing if k.pod_name(s.name) not in taken)
    if missing and not create:
        due.append(policy.deleting_poll_seconds)
    # Also when every pod exists but the status does not say so yet (the operator stopped
    # between the pods and the status): the pass makes sure of the rest and confirms it.
    if create or not (created_before or missing):
        replaced = sum(1 for k in create if k.role is Role.WORKER) if created_before else 0
        names = ", ".join(k.pod_name(s.name) for k in create) or "nothing missing"
        return Decision(
            Action.CREATE,
            Reason.OBJECTS_CREATED.value,
            f"created {names}",
            create=create,
            delete=stale,
            replaced_workers=replaced,
            requeue_after=_soonest(*due, policy.resync_seconds),
            faults=tuple(faults),
        )
    return Decision(
        Action.NOOP,
        delete=stale,
        requeue_after=_soonest(*due, policy.resync_seconds),
        faults=tuple(faults),
    )
