"""A TrainingJob's life on a real API server: objects, phases, events, deletion, run policy."""

from __future__ import annotations

import pytest

from kubetrain_operator.kube import Kube
from tests.operator.kube.conftest import Jobs, Kubelet, Operator, wait_for

pytestmark = pytest.mark.kube


def _owned_by(obj: dict, uid: str) -> bool:  # type: ignore[type-arg]
    refs = obj["metadata"].get("ownerReferences") or []
    return any(r["uid"] == uid and r.get("controller") for r in refs)


def test_apply_creates_the_owned_objects(jobs: Jobs) -> None:
    job = jobs.apply("mnist", labels={"kueue.x-k8s.io/queue-name": "team-a"},
                     distributed={"workers": 2})  # fmt: skip
    uid = job["metadata"]["uid"]
    pods = jobs.wait_pods("mnist", 3)
    assert set(pods) == {"mnist-head", "mnist-worker-0", "mnist-worker-1"}
    for pod in pods.values():
        assert _owned_by(pod, uid)
        labels = pod["metadata"]["labels"]
        assert labels["kubetrain.io/job-name"] == "mnist"
        assert labels["kueue.x-k8s.io/queue-name"] == "team-a"
    assert pods["mnist-worker-1"]["metadata"]["labels"]["kubetrain.io/rank"] == "1"
    assert pods["mnist-head"]["metadata"]["labels"]["kubetrain.io/role"] == "head"
    # Pods come first; the rest follows in the next pass, and Created says it is all there.
    status = jobs.wait_phase("mnist", "Starting")
    assert status["conditions"][0]["type"] == "Created"
    owned = {
        "configmaps": "mnist-config",
        "services": "mnist-head",
        "serviceaccounts": "mnist-driver",
    }
    for plural, name in owned.items():
        (obj,) = [o for o in jobs.list(plural) if o["metadata"]["name"] == name]
        assert _owned_by(obj, uid), plural
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    for plural in ("roles", "rolebindings"):
        (obj,) = jobs.list(plural, rbac)
        assert _owned_by(obj, uid)
    wait_for("an ObjectsCreated event", lambda: "ObjectsCreated" in jobs.event_reasons("mnist"))


def test_phases_follow_pod_status_and_events_are_written(jobs: Jobs, kubelet: Kubelet) -> None:
    jobs.apply("ok", distributed={"workers": 2})
    pods = jobs.wait_pods("ok", 3)
    kubelet.run_all(pods, head_ready=False)
    ready = lambda: (c := jobs.condition("ok", "PodsReady")) and c["status"] == "True"  # noqa: E731
    wait_for("PodsReady", ready)
    assert jobs.status("ok")["phase"] == "Starting"
    kubelet.run("ok-head", ready=True)
    jobs.wait_phase("ok", "Running")
    kubelet.exit("ok-head", 0)
    status = jobs.wait_phase("ok", "Succeeded")
    assert status["completionTime"]
    # cleanPodPolicy Running (the default): running workers go, the finished head stays.
    wait_for("workers deleted", lambda: set(jobs.pods("ok")) == {"ok-head"})
    reasons = wait_for(
        "the lifecycle's events",
        lambda: (
            {"ObjectsCreated", "AllPodsRunning", "TrainingStarted", "TrainingCompleted"}
            <= set(r := jobs.event_reasons("ok"))
            and r
        ),
    )
    assert reasons.count("TrainingCompleted") == 1


def test_deleting_the_job_garbage_collects_everything(kube: Kube, jobs: Jobs) -> None:
    jobs.apply("gone", distributed={"workers": 1})
    jobs.wait_pods("gone", 2)
    kube._call("DELETE", jobs.path("gone"))
    wait_for("the job to be deleted", lambda: jobs.get("gone") is None)
    wait_for("its pods to be collected", lambda: jobs.pods("gone") == {}, timeout=60)
    wait_for(
        "its Service and ConfigMap to be collected",
        lambda: not [
            o for p in ("services", "configmaps") for o in jobs.list(p)
            if o["metadata"]["name"].startswith("gone-")
        ],
        timeout=60,
    )  # fmt: skip


def test_a_job_deleted_and_applied_again_at_once_starts_afresh(
    kube: Kube, jobs: Jobs, operator: Operator
) -> None:
    # No finalizer holds the first job back: its loop may still run when the second arrives.
    first = jobs.apply("again", distributed={"workers": 1})
    jobs.wait_pods("again", 2)
    jobs.wait_phase("again", "Starting")
    kube._call("DELETE", jobs.path("again"))
    wait_for("the job to be deleted", lambda: jobs.get("again") is None)
    second = jobs.apply("again", distributed={"workers": 2})
    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    wait_for(
        "the new job's own three pods",
        lambda: len([p for p in jobs.pods("again").values()
                     if _owned_by(p, second["metadata"]["uid"])]) == 3,
        timeout=60,
    )  # fmt: skip
    status = jobs.wait_phase("again", "Starting")
    assert status["restarts"] == 0  # nothing of the first job's life leaked into it
    assert not status.get("workerRestarts")
    assert f"{jobs.ns}/again: RestartJob" not in operator.log()


def test_suspend_deletes_pods_keeps_status_and_resume_recreates(
    jobs: Jobs, kubelet: Kubelet
) -> None:
    jobs.apply("sus", distributed={"workers": 1})
    pods = jobs.wait_pods("sus", 2)
    kubelet.run_all(pods)
    jobs.wait_phase("sus", "Running")
    old_uids = {p["metadata"]["uid"] for p in pods.values()}
    jobs.patch_spec("sus", {"runPolicy": {"suspend": True}})
    status = jobs.wait_phase("sus", "Suspended")
    wait_for("pods deleted", lambda: jobs.pods("sus") == {})
    assert status["startTime"]
    jobs.patch_spec("sus", {"runPolicy": {"suspend": False}})
    pods = jobs.wait_pods("sus", 2)
    assert not old_uids & {p["metadata"]["uid"] for p in pods.values()}
    jobs.wait_phase("sus", "Starting")
    resumed = jobs.condition("sus", "Suspended")
    assert resumed is not None and (resumed["status"], resumed["reason"]) == ("False", "JobResumed")
    kubelet.run_all(pods)
    jobs.wait_phase("sus", "Running")


def test_backoff_limit_restarts_then_fails(jobs: Jobs, kubelet: Kubelet) -> None:
    jobs.apply("flaky", distributed={"workers": 1}, runPolicy={"backoffLimit": 1})
    pods = jobs.wait_pods("flaky", 2)
    kubelet.run_all(pods)
    jobs.wait_phase("flaky", "Running")
    kubelet.exit("flaky-head", 137, message="killed")
    wait_for("restart 1 counted", lambda: jobs.status("flaky").get("restarts") == 1)
    new = wait_for(
        "attempt 1 pods",
        lambda: (p := jobs.pods("flaky")) and len(p) == 2
        and all(x["metadata"]["labels"]["kubetrain.io/attempt"] == "1" for x in p.values()) and p,
    )  # fmt: skip
    kubelet.run_all(new)
    jobs.wait_phase("flaky", "Running")
    kubelet.exit("flaky-head", 143)
    status = jobs.wait_phase("flaky", "Failed")
    failed = jobs.condition("flaky", "Failed")
    assert failed is not None and failed["reason"] == "BackoffLimitExceeded"
    assert status["restarts"] == 1 and "exited with code 143" in failed["message"]


def test_a_dead_worker_is_replaced(jobs: Jobs, kubelet: Kubelet) -> None:
    jobs.apply("rep", distributed={"workers": 2})
    pods = jobs.wait_pods("rep", 3)
    kubelet.run_all(pods)
    jobs.wait_phase("rep", "Running")
    old = pods["rep-worker-1"]["metadata"]["uid"]
    kubelet.exit("rep-worker-1", 137, reason="Error", message="node preempted")
    fresh = wait_for(
        "a new rep-worker-1",
        lambda: (p := jobs.pods("rep").get("rep-worker-1")) and p["metadata"]["uid"] != old and p,
    )
    # The replacement pod is created before the status that counts it is written.
    status = wait_for(
        "the replacement counted", lambda: (s := jobs.status("rep")).get("workerRestarts") and s
    )
    assert status["workerRestarts"] == 1 and status["phase"] == "Restarting"
    kubelet.run(fresh["metadata"]["name"])
    jobs.wait_phase("rep", "Running")
    assert jobs.status("rep")["restarts"] == 0
    assert "WorkerReplaced" in jobs.event_reasons("rep")


def test_active_deadline(jobs: Jobs, kubelet: Kubelet) -> None:
    jobs.apply("late", distributed={"workers": 1}, runPolicy={"activeDeadlineSeconds": 2})
    kubelet.run_all(jobs.wait_pods("late", 2))
    jobs.wait_phase("late", "Failed", timeout=15)
    assert jobs.condition("late", "Failed")["reason"] == "DeadlineExceeded"  # type: ignore[index]
    wait_for("running pods deleted", lambda: jobs.pods("late") == {})


def test_startup_deadline(jobs: Jobs) -> None:
    jobs.apply("stuck", distributed={"workers": 1}, runPolicy={"startupDeadlineSeconds": 2})
    jobs.wait_phase("stuck", "Failed", timeout=15)
    failed = jobs.condition("stuck", "Failed")
    assert failed is not None and failed["reason"] == "StartupDeadlineExceeded"
    assert "stuck-" in failed["message"]


def test_ttl_deletes_the_finished_job(jobs: Jobs, kubelet: Kubelet) -> None:
    jobs.apply("ttl", distributed={"workers": 1}, runPolicy={"ttlSecondsAfterFinished": 1})
    kubelet.run_all(jobs.wait_pods("ttl", 2))
    kubelet.exit("ttl-head", 0)
    wait_for("the job to be deleted by its TTL", lambda: jobs.get("ttl") is None, timeout=20)


@pytest.mark.parametrize(
    ("policy", "left"),
    [("All", set()), ("None", {"c-head", "c-worker-0"})],
)
def test_clean_pod_policy(jobs: Jobs, kubelet: Kubelet, policy: str, left: set[str]) -> None:
    jobs.apply("c", distributed={"workers": 1}, runPolicy={"cleanPodPolicy": policy})
    kubelet.run_all(jobs.wait_pods("c", 2))
    kubelet.exit("c-head", 0)
    jobs.wait_phase("c", "Succeeded")
    wait_for(f"cleanPodPolicy {policy}", lambda: set(jobs.pods("c")) == left or None)


def test_operator_metrics(jobs: Jobs, kubelet: Kubelet, operator: Operator) -> None:
    jobs.apply("m", distributed={"workers": 1})
    kubelet.run_all(jobs.wait_pods("m", 2))
    jobs.wait_phase("m", "Running")
    text = operator.metrics()
    for name in (
        "kubetrain_jobs_created_total",
        "kubetrain_jobs_succeeded_total",
        "kubetrain_jobs_restarted_total",
        'kubetrain_jobs{phase="Running"}',
        "kubetrain_job_startup_seconds_bucket",
        "kubetrain_job_duration_seconds_bucket",
        "kubetrain_reconcile_duration_seconds_bucket",
    ):
        assert name in text, name
