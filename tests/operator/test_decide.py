"""The failure and restart policy, stepped one observation at a time. No cluster, no clock."""

from __future__ import annotations

from typing import Any

from kubetrain.api import Condition, ConditionType, Phase, TrainingJobStatus
from kubetrain_operator.conditions import next_status
from kubetrain_operator.config import PolicySettings
from kubetrain_operator.decide import Action, Decision, PodKey, Situation, decide
from kubetrain_operator.observe import PodView
from kubetrain_operator.render import Role
from tests.operator.helpers import (
    api_job,
    at,
    head,
    terminated,
    ts,
    unschedulable,
    waiting,
    worker,
)

POLICY = PolicySettings(image_pull_grace_seconds=30, resync_seconds=60, deleting_poll_seconds=1)


class Sim:
    """Steps decide() + next_status() the way the reconciler does, feeding the status back."""

    def __init__(self, **spec: Any) -> None:
        self.job = api_job(distributed={"workers": 2}, **spec)
        self.status = TrainingJobStatus()
        self.last: Decision | None = None

    def step(self, t: float, *pods: dict[str, Any], **spec: Any) -> Decision:
        job = api_job(distributed={"workers": 2}, **spec) if spec else self.job
        s = Situation(
            name="t",
            spec=job.spec,
            status=self.status,
            pods=tuple(PodView(p) for p in pods),
            now=at(t),
        )
        d = decide(s, POLICY)
        self.status = next_status(s, d, generation=1, now=at(t))
        self.last = d
        return d

    def phase(self) -> Phase | None:
        return self.status.phase

    def cond(self, ctype: ConditionType) -> tuple[str, str] | None:
        for c in self.status.conditions:
            if c.type is ctype:
                return c.status, c.reason
        return None


def running(attempt: int = 0, head_ready: bool = True) -> list[dict[str, Any]]:
    return [
        head(phase="Running", ready=head_ready, attempt=attempt),
        worker(0, phase="Running", attempt=attempt),
        worker(1, phase="Running", attempt=attempt),
    ]


def started() -> Sim:
    """A job whose pods were created at t=0 and run, training, at t=5."""
    sim = Sim()
    sim.step(0)
    sim.step(5, *running())
    return sim


# --------------------------------------------------------------------------- the happy path


def test_a_new_job_creates_all_pods_head_first() -> None:
    sim = Sim()
    d = sim.step(0)
    assert d.action is Action.CREATE
    assert d.create == (PodKey(Role.HEAD), PodKey(Role.WORKER, 0), PodKey(Role.WORKER, 1))
    assert sim.phase() is Phase.STARTING
    assert sim.cond(ConditionType.CREATED) == ("True", "ObjectsCreated")
    assert sim.cond(ConditionType.PODS_READY) == ("False", "PodsPending")
    assert sim.status.start_time == "2026-01-01T12:00:00Z"


def test_phases_follow_the_pods_to_running_and_success() -> None:
    sim = Sim()
    sim.step(0)
    d = sim.step(1, *running(head_ready=False))
    assert d.action is Action.NOOP
    assert sim.cond(ConditionType.PODS_READY) == ("True", "AllPodsRunning")
    assert sim.phase() is Phase.STARTING  # pods run, the driver has not started training
    sim.step(2, *running(head_ready=True))
    assert sim.phase() is Phase.RUNNING
    done = running()
    done[0] = head(phase="Succeeded", containers=terminated(0, name="head"))
    d = sim.step(60, *done)
    assert d.action is Action.SUCCEED
    assert set(d.delete) == {"t-worker-0", "t-worker-1"}  # cleanPodPolicy Running keeps the head
    assert sim.phase() is Phase.SUCCEEDED
    assert sim.status.completion_time == "2026-01-01T12:01:00Z"
    assert sim.cond(ConditionType.RUNNING) == ("False", "TrainingCompleted")


def test_second_pass_on_the_same_observation_changes_nothing() -> None:
    sim = started()
    before = sim.status
    d = sim.step(6, *running())
    assert d.action is Action.NOOP and d.delete == ()
    assert sim.status == before


def test_running_is_sticky_while_the_probe_flaps() -> None:
    sim = started()
    sim.step(6, *running(head_ready=False))
    assert sim.phase() is Phase.RUNNING


# --------------------------------------------------------------------------- failures named


def test_image_pull_error_is_named_at_once_and_fails_after_the_grace() -> None:
    sim = Sim()
    sim.step(0)
    bad = [head(), worker(0, containers=waiting("ErrImagePull", "not found")), worker(1)]
    d = sim.step(2, *bad)
    assert d.action is Action.NOOP
    assert sim.cond(ConditionType.PODS_READY) == ("False", "ErrImagePull")
    assert sim.phase() is Phase.STARTING
    assert d.requeue_after == 28  # woken when the grace ends, even without an event
    d = sim.step(30, *bad)
    # Failing pulls for the whole grace is a back-off, even if this instant shows a retry.
    assert d.action is Action.FAIL and d.reason == "ImagePullBackOff"
    assert "t-worker-0 container worker" in d.message and "not found" in d.message
    assert sim.phase() is Phase.FAILED


def test_unschedulable_is_named_and_fails_at_the_startup_deadline() -> None:
    sim = Sim(runPolicy={"startupDeadlineSeconds": 120})
    sim.step(0)
    pending = [head(), worker(0, conditions=unschedulable()), worker(1)]
    sim.step(1, *pending)
    assert sim.cond(ConditionType.PODS_READY) == ("False", "Unschedulable")
    ready = next(c for c in sim.status.conditions if c.type is ConditionType.PODS_READY)
    assert "t-worker-1" not in ready.message and "Insufficient nvidia.com/gpu" in ready.message
    d = sim.step(120, *pending, runPolicy={"startupDeadlineSeconds": 120})
    assert d.action is Action.FAIL and d.reason == "Unschedulable"
    assert "startupDeadlineSeconds (120 s)" in d.message


def test_pods_that_never_start_fail_with_startup_deadline_exceeded() -> None:
    sim = Sim(runPolicy={"startupDeadlineSeconds": 60})
    sim.step(0)
    d = sim.step(59, head(), worker(0), worker(1), runPolicy={"startupDeadlineSeconds": 60})
    assert d.action is Action.NOOP and d.requeue_after == 1
    d = sim.step(60, head(), worker(0), worker(1), runPolicy={"startupDeadlineSeconds": 60})
    assert (d.action, d.reason) == (Action.FAIL, "StartupDeadlineExceeded")


def test_a_driver_that_never_starts_training_hits_the_startup_deadline() -> None:
    spec = {"runPolicy": {"startupDeadlineSeconds": 60}}
    sim = Sim(**spec)
    sim.step(0)
    d = sim.step(61, *running(head_ready=False), **spec)
    assert (d.action, d.reason) == (Action.FAIL, "StartupDeadlineExceeded")
    assert "did not start training" in d.message


def test_crash_loop_fails_at_once() -> None:
    sim = Sim()
    sim.step(0)
    last = {"exitCode": 2, "message": "bad flag"}
    d = sim.step(3, head(containers=waiting("CrashLoopBackOff", last=last)), worker(0), worker(1))
    assert (d.action, d.reason) == (Action.FAIL, "CrashLoopBackOff")


def test_oom_killed_worker_fails_the_job_unless_retry_on_oom() -> None:
    oom = worker(1, phase="Failed", containers=terminated(137, reason="OOMKilled"))
    sim = started()
    d = sim.step(10, running()[0], running()[1], oom)
    assert (d.action, d.reason) == (Action.FAIL, "OOMKilled")

    sim = Sim(runPolicy={"retryOnOom": True})
    sim.step(0)
    sim.step(5, *running())
    d = sim.step(10, running()[0], running()[1], oom, runPolicy={"retryOnOom": True})
    assert d.action is Action.REPLACE_WORKERS


def test_head_exit_1_is_permanent_and_quotes_the_driver() -> None:
    sim = started()
    message = "training failed: NaN loss"
    failed = head(phase="Failed", containers=terminated(1, name="head", message=message))
    d = sim.step(30, failed, *running()[1:])
    assert (d.action, d.reason) == (Action.FAIL, "NonZeroExit")
    assert "training failed: NaN loss" in (sim.status.message or "")
    failed_cond = next(c for c in sim.status.conditions if c.type is ConditionType.FAILED)
    assert "pod t-head container head" in failed_cond.message


# --------------------------------------------------------------------------- restarts


def _head_killed(attempt: int = 0) -> dict[str, Any]:
    return head(phase="Failed", attempt=attempt, containers=terminated(137, name="head"))


def test_retryable_head_failure_restarts_the_whole_job_and_counts_it() -> None:
    sim = started()
    d = sim.step(30, _head_killed(), *running()[1:])
    assert d.action is Action.RESTART_JOB
    assert set(d.delete) == {"t-head", "t-worker-0", "t-worker-1"}
    assert sim.status.restarts == 1 and sim.phase() is Phase.RESTARTING
    assert "restart 1/3" in (sim.status.message or "")
    # The old pods are terminating: wait for their names, then create attempt 1.
    terminating = [p | {"metadata": {**p["metadata"], "deletionTimestamp": "x"}} for p in running()]
    d = sim.step(31, *terminating)
    assert d.action is Action.NOOP and d.create == () and d.requeue_after == 1
    d = sim.step(33)
    assert d.action is Action.CREATE and len(d.create) == 3
    assert sim.phase() is Phase.RESTARTING
    sim.step(40, *running(attempt=1))
    assert sim.phase() is Phase.RUNNING
    assert sim.cond(ConditionType.RESTARTING) == ("False", "TrainingStarted")


def test_pods_of_an_older_attempt_are_deleted_not_adopted() -> None:
    sim = started()
    sim.status.restarts = 1  # the status says attempt 1; these pods are attempt 0
    d = sim.step(50, *running(attempt=0))
    assert set(d.delete) == {"t-head", "t-worker-0", "t-worker-1"}
    assert d.create == ()  # their names are still taken


def test_backoff_limit_exhausted_fails_with_the_last_cause() -> None:
    spec = {"runPolicy": {"backoffLimit": 1}}
    sim = Sim(**spec)
    sim.step(0)
    sim.step(5, *running(), **spec)
    assert sim.step(9, _head_killed(), **spec).action is Action.RESTART_JOB
    sim.step(10, **spec)
    sim.step(15, *running(attempt=1), **spec)
    d = sim.step(20, _head_killed(attempt=1), **spec)
    assert (d.action, d.reason) == (Action.FAIL, "BackoffLimitExceeded")
    assert "exited with code 137" in d.message and "backoffLimit (1)" in d.message
    assert sim.status.restarts == 1


STOPPED_BY_KUEUE = {"type": "TerminationTarget", "status": "True", "reason": "StoppedByKueue",
                    "message": "Preempted to accommodate a higher priority Workload"}  # fmt: skip


def _preempted(attempt: int) -> list[dict[str, Any]]:
    """Kueue evicting the workload: every pod marked, then deleted (its finalizer keeps it)."""
    return [
        p | {"status": {**p["status"], "conditions": [STOPPED_BY_KUEUE]}}
        for p in running(attempt=attempt)
    ]


def test_preemptions_restart_the_job_without_using_up_its_backoff_limit() -> None:
    spec = {"runPolicy": {"backoffLimit": 1}}
    sim = Sim(**spec)
    sim.step(0)
    sim.step(5, *running(), **spec)
    # Preempted twice: each time the job starts again from its checkpoint, counted apart.
    for attempt in (0, 1):
        d = sim.step(10 + 10 * attempt, *_preempted(attempt), **spec)
        assert (d.action, d.reason) == (Action.RESTART_JOB, "Preempted"), d
        assert "Preempted to accommodate" in d.message
        sim.step(11 + 10 * attempt, **spec)
        sim.step(15 + 10 * attempt, *running(attempt=attempt + 1), **spec)
    assert (sim.status.restarts, sim.status.preemptions) == (2, 2)
    # A failure of its own still gets its one restart; the next one fails the job.
    assert sim.step(40, _head_killed(attempt=2), **spec).action is Action.RESTART_JOB
    sim.step(41, **spec)
    sim.step(45, *running(attempt=3), **spec)
    d = sim.step(50, _head_killed(attempt=3), **spec)
    assert (d.action, d.reason) == (Action.FAIL, "BackoffLimitExceeded")


def test_restart_count_survives_cleanup_because_it_lives_in_status() -> None:
    sim = started()
    sim.step(9, _head_killed())
    assert sim.status.restarts == 1
    sim.step(10)  # every pod gone: nothing on the cluster remembers the restart but the status
    assert sim.status.restarts == 1 and sim.last is not None and sim.last.action is Action.CREATE


def test_a_dead_worker_is_replaced_and_the_job_resumes() -> None:
    sim = started()
    evicted = worker(0, phase="Failed", reason="Evicted", message="node drained")
    d = sim.step(20, running()[0], evicted, running()[2])
    assert d.action is Action.REPLACE_WORKERS and d.delete == ("t-worker-0",)
    assert sim.phase() is Phase.RESTARTING
    assert sim.status.worker_restarts == 0  # counted when the replacement exists
    d = sim.step(21, running()[0], running()[2])
    assert d.action is Action.CREATE and d.create == (PodKey(Role.WORKER, 0),)
    assert sim.status.worker_restarts == 1
    sim.step(22, running()[0], worker(0), running()[2])
    assert sim.status.worker_restarts == 1 and sim.phase() is Phase.RESTARTING
    sim.step(25, *running())
    assert sim.phase() is Phase.RUNNING and sim.status.restarts == 0


def test_a_worker_whose_ray_node_exits_is_replaced_not_the_jobs_end() -> None:
    sim = started()
    # `ray start` gave up: the node could not register with the head in time.
    crashed = worker(1, phase="Failed", containers=terminated(1, message="timed out"))
    d = sim.step(20, *running()[:2], crashed)
    assert d.action is Action.REPLACE_WORKERS and d.delete == ("t-worker-1",)
    assert sim.phase() is Phase.RESTARTING


def test_a_vanished_worker_is_recreated_and_counted() -> None:
    sim = started()
    d = sim.step(20, running()[0], running()[2])
    assert d.action is Action.CREATE and d.replaced_workers == 1
    assert sim.status.worker_restarts == 1


def test_a_vanished_head_restarts_the_job() -> None:
    sim = started()
    d = sim.step(20, *running()[1:])
    assert d.action is Action.RESTART_JOB and "head pod disappeared" in d.message


# --------------------------------------------------------------------------- run policy


def test_active_deadline_fails_with_deadline_exceeded() -> None:
    spec = {"runPolicy": {"activeDeadlineSeconds": 100}}
    sim = Sim(**spec)
    sim.step(0)
    d = sim.step(50, *running(), **spec)
    assert d.requeue_after == 50
    d = sim.step(100, *running(), **spec)
    assert (d.action, d.reason) == (Action.FAIL, "DeadlineExceeded")
    assert set(d.delete) == {"t-head", "t-worker-0", "t-worker-1"}


def test_suspend_deletes_pods_keeps_status_and_resume_recreates() -> None:
    sim = started()
    sim.status.restarts = 0
    d = sim.step(30, *running(), runPolicy={"suspend": True})
    assert d.action is Action.SUSPEND and len(d.delete) == 3
    assert sim.phase() is Phase.SUSPENDED
    assert sim.cond(ConditionType.CREATED) == ("False", "JobSuspended")
    d = sim.step(31, runPolicy={"suspend": True})
    assert d.action is Action.SUSPEND and d.delete == () and d.requeue_after is None
    d = sim.step(100)
    assert d.action is Action.CREATE and len(d.create) == 3
    assert sim.cond(ConditionType.SUSPENDED) == ("False", "JobResumed")
    assert sim.status.start_time == "2026-01-01T12:01:40Z"  # the active deadline restarts
    assert sim.phase() is Phase.STARTING


def test_a_job_created_suspended_creates_nothing() -> None:
    sim = Sim(runPolicy={"suspend": True})
    d = sim.step(0, runPolicy={"suspend": True})
    assert d.action is Action.SUSPEND and d.create == ()
    assert sim.phase() is Phase.SUSPENDED


def test_clean_pod_policy_all_running_none() -> None:
    done = [head(phase="Succeeded"), worker(0, phase="Running"), worker(1, phase="Failed")]
    expected = {
        "All": {"t-head", "t-worker-0", "t-worker-1"},
        "Running": {"t-worker-0"},
        "None": set(),
    }
    for policy, deleted in expected.items():
        sim = started()
        d = sim.step(60, *done, runPolicy={"cleanPodPolicy": policy})
        assert d.action is Action.SUCCEED and set(d.delete) == deleted, policy
        # Later passes keep applying the policy to what is left, and nothing else happens.
        d = sim.step(61, *done, runPolicy={"cleanPodPolicy": policy})
        assert set(d.delete) == deleted and sim.phase() is Phase.SUCCEEDED


def test_ttl_deletes_the_finished_job() -> None:
    spec = {"runPolicy": {"ttlSecondsAfterFinished": 30}}
    sim = started()
    sim.step(60, head(phase="Succeeded"), **spec)
    d = sim.step(70, head(phase="Succeeded"), **spec)
    assert d.action is Action.NOOP and d.requeue_after == 20
    d = sim.step(90, **spec)
    assert d.action is Action.DELETE_JOB


def test_a_finished_job_never_restarts() -> None:
    sim = started()
    sim.step(60, head(phase="Failed", containers=terminated(1, name="head")))
    assert sim.phase() is Phase.FAILED
    d = sim.step(61)
    assert d.action is Action.NOOP and d.create == ()


def test_invalid_spec_fails_with_its_message() -> None:
    sim = Sim()
    s = Situation(
        name="t", spec=sim.job.spec, status=TrainingJobStatus(), pods=(), now=at(0),
        invalid="dataset.path is required for source 'csv'",
    )  # fmt: skip
    d = decide(s, POLICY)
    assert (d.action, d.reason) == (Action.FAIL, "InvalidSpec")
    assert "dataset.path" in d.message


def test_extra_workers_from_a_larger_attempt_are_deleted() -> None:
    sim = started()
    d = sim.step(30, *running(), worker(2, phase="Running"))
    assert d.delete == ("t-worker-2",)


# The tail a worker pod leaves when `ray start` refuses its memory: the bytes differ per start.
def _ray_refuses(rank: int, free: int) -> dict[str, Any]:
    tail = (
        "    raise ValueError(\n    ^^^^^^^^^^\nValueError: Attempting to cap object store memory "
        f"usage at {free} bytes, but the minimum allowed is 78643200 bytes.\n"
    )
    return worker(rank, phase="Failed", containers=terminated(1, message=tail))


def test_workers_failing_the_same_way_on_every_start_fail_the_job_with_that_error() -> None:
    sim = started()
    for t, free in ((20, 24454348), (30, 24451002), (40, 24460117)):
        d = sim.step(t, running()[0], _ray_refuses(0, free), running()[2])
        assert d.action is Action.REPLACE_WORKERS, d
        sim.step(t + 1, running()[0], running()[2])  # the replacement is created
    assert sim.status.worker_failure_streak is not None
    assert sim.status.worker_failure_streak.count == POLICY.max_repeated_worker_failures
    d = sim.step(50, running()[0], _ray_refuses(0, 24452222), running()[2])
    assert (d.action, d.reason) == (Action.FAIL, "WorkersFailRepeatedly")
    assert "failed the same way 4 times in a row" in d.message
    assert "ValueError: Attempting to cap object store memory usage at 24452222 bytes" in d.message
    assert "^^^" not in d.message
    assert sim.phase() is Phase.FAILED and sim.status.restarts == 0


def test_an_epoch_between_worker_failures_starts_the_count_again() -> None:
    sim = started()
    for t, epoch in ((20, 1), (30, 2), (40, 3), (50, 4), (60, 5)):
        sim.status.epoch = epoch  # the driver reported an epoch since the last failure
        d = sim.step(t, running()[0], _ray_refuses(0, 24454348), running()[2])
        assert d.action is Action.REPLACE_WORKERS, (t, d)
        assert sim.status.worker_failure_streak is not None
        assert sim.status.worker_failure_streak.count == 1
        sim.step(t + 1, running()[0], running()[2])


def test_a_different_error_starts_the_count_again() -> None:
    sim = started()
    failures = [
        _ray_refuses(0, 1),
        worker(0, phase="Failed", containers=terminated(1, message="RuntimeError: head lost")),
    ] * 3
    for i, failed in enumerate(failures):
        d = sim.step(20 + 10 * i, running()[0], failed, running()[2])
        assert d.action is Action.REPLACE_WORKERS, (i, d)
        sim.step(21 + 10 * i, running()[0], running()[2])


# --------------------------------------------------------------------------- precedence


def test_when_several_rules_could_answer_the_first_in_precedence_decides() -> None:
    # One job with a cause for nearly every rule at once. Each step takes away the cause of the
    # rule that answered, and the next rule in order answers, the later causes still there.
    run: dict[str, Any] = {
        "activeDeadlineSeconds": 100,
        "startupDeadlineSeconds": 60,
        "suspend": True,
    }
    pods = {
        "head": head(phase="Succeeded"),
        0: worker(0, phase="Failed", containers=terminated(137, reason="OOMKilled")),
        1: worker(1, phase="Failed", containers=terminated(1)),  # a Ray node's exit
        2: worker(2, containers=waiting("CrashLoopBackOff", last={"exitCode": 1})),
    }  # worker 3 is missing
    failed = Condition(
        type=ConditionType.FAILED, status="True", reason="X", last_transition_time=ts(150)
    )
    created = Condition(
        type=ConditionType.CREATED, status="True", reason="Y", last_transition_time=ts(0)
    )
    status = TrainingJobStatus(
        conditions=[created, failed], start_time=ts(0), completion_time=ts(150)
    )
    invalid: str | None = "the spec is invalid"

    def step() -> Decision:
        job = api_job(distributed={"workers": 4}, runPolicy=run)
        views = tuple(PodView(p) for p in pods.values())
        return decide(Situation("t", job.spec, status, views, at(200), invalid), POLICY)

    def answer() -> tuple[Action, str]:
        d = step()
        return d.action, d.reason

    assert answer() == (Action.CLEAN_UP, "")  # finished: worker 2 goes (cleanPodPolicy Running)
    status.conditions = [created]
    assert answer() == (Action.FAIL, "InvalidSpec")
    invalid = None
    assert answer() == (Action.SUSPEND, "JobSuspended")
    run["suspend"] = False
    assert answer() == (Action.FAIL, "DeadlineExceeded")
    del run["activeDeadlineSeconds"]
    assert answer() == (Action.SUCCEED, "TrainingCompleted")
    pods["head"] = head(phase="Failed", containers=terminated(1, name="head"))
    assert answer() == (Action.FAIL, "NonZeroExit")
    del pods["head"]
    assert answer() == (Action.RESTART_JOB, "Retrying")  # the head vanished
    pods["head"] = head(phase="Running", ready=False)  # the driver has not started training
    assert answer() == (Action.FAIL, "OOMKilled")
    pods[0] = worker(0, phase="Running")
    assert answer() == (Action.REPLACE_WORKERS, "WorkerReplaced")
    pods[1] = worker(1, phase="Running")
    assert answer() == (Action.FAIL, "CrashLoopBackOff")
    assert step().message == "pod t-worker-2 container worker: crash loop (last exit code 1)"
    pods[2] = worker(2)
    assert answer() == (Action.FAIL, "StartupDeadlineExceeded")
    assert "pod t-worker-2 is still Pending" in step().message
    pods[2] = worker(2, phase="Running")
    assert answer() == (Action.FAIL, "StartupDeadlineExceeded")
    assert "did not start training" in step().message
    pods["head"] = head(phase="Running", ready=True)
    assert answer() == (Action.CREATE, "ObjectsCreated")  # worker 3
    pods[3] = worker(3, phase="Running")
    assert answer() == (Action.NOOP, "")
