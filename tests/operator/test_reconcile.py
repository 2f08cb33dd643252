"""One reconcile pass against an in-memory API: what it writes, and that a second pass
writes nothing (the "run it twice" rule)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, cast

import pytest

from kubetrain.api.status import ProgressStatus
from kubetrain_operator.config import OperatorConfig
from kubetrain_operator.decide import Action
from kubetrain_operator.kube import Kube
from kubetrain_operator.metrics import Metrics
from kubetrain_operator.reconcile import JobKey, Outcome, Reconciler
from tests.api.test_artifacts import REPORT
from tests.mistakes import mistake_params
from tests.operator.fake_kube import FakeKube, merge
from tests.operator.helpers import api_job_dict, at

KEY = JobKey("ml", "t")


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> datetime:
        return at(self.t)


@pytest.fixture
def kube() -> FakeKube:
    k = FakeKube()
    k.put(api_job_dict(distributed={"workers": 2}))
    return k


def reconciler(kube: FakeKube, clock: Clock | None = None) -> Reconciler:
    return Reconciler(cast(Kube, kube), OperatorConfig(), Metrics(), clock=clock or Clock())


def settle(r: Reconciler) -> Outcome:
    """Passes until the reconciler asks for no immediate next one, as the job's loop would."""
    for _ in range(5):
        out = r.reconcile(KEY)
        if out.requeue_after != 0:
            return out
    raise AssertionError("the reconciler keeps asking for another pass")


def set_pod(kube: FakeKube, name: str, **status: Any) -> None:
    merge(kube.objects[("Pod", "ml", name)], {"status": status})


def run_all(kube: FakeKube, ready: bool = True) -> None:
    for name in ("t-head", "t-worker-0", "t-worker-1"):
        conds = [{"type": "Ready", "status": "True" if ready else "False"}]
        set_pod(kube, name, phase="Running", conditions=conds)


def fail_worker_1_for_object_store_memory(kube: FakeKube, free: int) -> None:
    """Worker 1's Ray node exits as one does in too little memory (`free` bytes left)."""
    tail = f"ValueError: Attempting to cap object store memory usage at {free} bytes"
    failed = {"exitCode": 1, "reason": "Error", "message": tail}
    set_pod(kube, "t-worker-1", phase="Failed", containerStatuses=[
        {"name": "worker", "state": {"terminated": failed}}
    ])  # fmt: skip


def job(kube: FakeKube) -> dict[str, Any]:
    return kube.objects[("TrainingJob", "ml", "t")]


def test_first_passes_create_everything_once_pods_first(kube: FakeKube) -> None:
    r = reconciler(kube)
    out = r.reconcile(KEY)
    assert out.action is Action.CREATE and out.requeue_after == 0  # the rest comes next
    assert "status" not in job(kube)
    r.reconcile(KEY)
    created = [(kind, name) for verb, kind, name in kube.writes if verb == "create"]
    # The pods come right after the account they run as and their Ray token: they are what the
    # user waits for.
    assert created[:10] == [
        ("ServiceAccount", "t-driver"),
        ("Secret", "t-ray-token"),
        ("Pod", "t-head"),
        ("Pod", "t-worker-0"),
        ("Pod", "t-worker-1"),
        ("ConfigMap", "t-config"),
        ("Service", "t-head"),
        ("Role", "t-driver"),
        ("RoleBinding", "t-driver"),
        ("NetworkPolicy", "t-ray"),
    ]
    assert {kind for kind, _ in created[10:]} == {"Event"}
    assert job(kube)["status"]["phase"] == "Starting"
    assert ("Normal", "ObjectsCreated") in kube.events()


def test_a_new_jobs_first_pass_goes_by_the_event_and_reads_nothing(kube: FakeKube) -> None:
    # 100 jobs at once: a read before each job's pods delays every job behind it.
    r = reconciler(kube)
    out = r.reconcile(KEY, seen=job(kube))
    assert kube.reads == []
    assert out.action is Action.CREATE
    assert {o["metadata"]["name"] for o in kube.of_kind("Pod")} == {
        "t-head", "t-worker-0", "t-worker-1"
    }  # fmt: skip
    settle(r)  # later passes read afresh and finish the job's objects and status
    assert ("TrainingJob", "t") in kube.reads
    assert job(kube)["status"]["phase"] == "Starting"


def test_an_event_of_a_job_already_started_is_not_trusted(kube: FakeKube) -> None:
    # An operator restarted mid-job starts the loop from its listing: that job has a status,
    # so the pass reads its pods and makes none twice.
    settle(reconciler(kube))
    kube.writes.clear()
    restarted = reconciler(kube)
    out = restarted.reconcile(KEY, seen=job(kube))
    assert ("Pod", "kubetrain.io/job-name=t") in kube.reads
    assert out.action is not Action.CREATE
    assert kube.writes == []


def successor() -> dict[str, Any]:
    """The job applied again under the same name: a new uid."""
    new = api_job_dict(distributed={"workers": 2})
    new["metadata"]["uid"] = "uid-successor"
    return new


def test_a_job_replaced_under_its_name_is_gone_for_the_old_loop(kube: FakeKube) -> None:
    # Deleted and applied again: the old loop's pass leaves the successor to its own loop.
    first_uid = job(kube)["metadata"]["uid"]
    del kube.objects[("TrainingJob", "ml", "t")]
    kube.put(successor())
    assert job(kube)["metadata"]["uid"] != first_uid
    out = reconciler(kube).reconcile(KEY, uid=first_uid)
    assert out.gone
    assert kube.writes == []


def test_a_pass_in_flight_when_its_job_is_replaced_writes_no_status_into_the_successor(
    kube: FakeKube,
) -> None:
    class ReplacedDuringPass(FakeKube):
        def create(self, obj: dict[str, Any]) -> bool:
            made = super().create(obj)
            if obj["kind"] == "ConfigMap":  # mid-pass: the job is deleted and applied again
                del self.objects[("TrainingJob", "ml", "t")]
                self.put(successor())
            return made

    racy = ReplacedDuringPass()
    racy.put(api_job_dict(distributed={"workers": 2}))
    uid = job(racy)["metadata"]["uid"]
    r = reconciler(racy)
    r.reconcile(KEY, seen=job(racy), uid=uid)  # the pods
    r.reconcile(KEY, uid=uid)  # the ConfigMap, then the status: into the successor? No.
    assert job(racy)["metadata"]["uid"] != uid
    assert "status" not in job(racy)


def test_a_new_job_waits_for_its_predecessors_objects_to_be_collected(kube: FakeKube) -> None:
    # Deleted and applied again at once: the first job's pods and ConfigMap, under the same
    # names, are still there until garbage collection removes them. Taking them for the new
    # job's would lose them to the collector, and count a restart for each.
    for obj in [*kube.of_kind("Pod"), *kube.of_kind("ConfigMap")]:
        del kube.objects[(obj["kind"], "ml", obj["metadata"]["name"])]
    for name in ("t-head", "t-worker-0"):
        kube.put(
            {
                "kind": "Pod",
                "metadata": {
                    "name": name,
                    "namespace": "ml",
                    "labels": {"kubetrain.io/job-name": "t"},
                    "ownerReferences": [{"uid": "uid-of-the-deleted-job", "kind": "TrainingJob"}],
                },
            }
        )
    r = reconciler(kube)
    out = r.reconcile(KEY, seen=job(kube))
    assert out.requeue_after is not None and out.requeue_after > 0
    waiting = job(kube)["status"]  # nothing decided on someone else's pods, and it says why
    assert waiting["phase"] == "Pending" and not waiting.get("conditions")
    assert "Pod t-head of an earlier TrainingJob with this name" in waiting["message"]
    for name in ("t-head", "t-worker-0"):  # collected
        del kube.objects[("Pod", "ml", name)]
    settle(r)
    uid = job(kube)["metadata"]["uid"]
    pods = kube.of_kind("Pod")
    assert len(pods) == 3
    assert all(p["metadata"]["ownerReferences"][0]["uid"] == uid for p in pods)
    status = job(kube)["status"]
    assert status["phase"] == "Starting" and status.get("restarts", 0) == 0
    assert "earlier TrainingJob" not in status.get("message", "")


def test_a_new_job_asks_for_each_object_once(kube: FakeKube) -> None:
    # A create the API server answers with 409 still costs it an admission and an etcd write.
    settle(reconciler(kube))
    assert sorted(kube.create_calls) == sorted(set(kube.create_calls))


def test_a_stale_pod_list_replaces_no_worker(kube: FakeKube) -> None:
    # Pods are listed from the API server's watch cache, which may not show one made moments
    # ago: creating it again finds it, and the job must not report a worker restart.
    r = reconciler(kube)
    settle(r)
    kube.unlisted_pods = {"t-worker-1"}
    settle(r)
    assert job(kube)["status"].get("workerRestarts", 0) == 0
    assert "WorkerReplaced" not in {reason for _, reason in kube.events()}
    kube.unlisted_pods.clear()
    del kube.objects[("Pod", "ml", "t-worker-1")]  # now really lost: that is a replacement
    settle(r)
    assert job(kube)["status"]["workerRestarts"] == 1


def test_second_pass_writes_nothing(kube: FakeKube) -> None:
    r = reconciler(kube)
    settle(r)
    kube.writes.clear()
    out = settle(r)
    assert out.action is Action.NOOP
    assert kube.writes == []


def test_a_restarted_operator_adopts_what_exists(kube: FakeKube) -> None:
    settle(reconciler(kube))
    run_all(kube)
    settle(reconciler(kube))
    kube.writes.clear()
    fresh = reconciler(kube)  # a new process: empty caches
    settle(fresh)
    settle(fresh)
    assert kube.writes == []
    assert len(kube.of_kind("Pod")) == 3


def test_status_walks_to_running_with_events(kube: FakeKube) -> None:
    r = reconciler(kube)
    settle(r)
    run_all(kube, ready=False)
    settle(r)
    assert job(kube)["status"]["phase"] == "Starting"
    run_all(kube, ready=True)
    settle(r)
    status = job(kube)["status"]
    assert status["phase"] == "Running"
    assert ("Normal", "AllPodsRunning") in kube.events()
    assert ("Normal", "TrainingStarted") in kube.events()


def test_driver_progress_is_never_overwritten(kube: FakeKube) -> None:
    r = reconciler(kube)
    settle(r)
    merge(job(kube), {"status": {"epoch": 4, "progress": "4/10", "loss": 0.3}})
    run_all(kube)
    settle(r)
    status = job(kube)["status"]
    assert (status["epoch"], status["progress"], status["loss"]) == (4, "4/10", 0.3)


def test_the_exported_models_gauges_last_from_the_heads_status_until_the_job_is_deleted(
    kube: FakeKube,
) -> None:
    r = reconciler(kube)
    settle(r)
    run_all(kube)
    settle(r)
    # The head's last patch, then its exit: the workers' metrics servers are gone by now.
    merge(job(kube), {"status": ProgressStatus(model_variants=REPORT.status_variants()).patch()})
    set_pod(kube, "t-head", phase="Succeeded")
    settle(r)
    assert job(kube)["status"]["phase"] == "Succeeded"
    original = {"namespace": "ml", "job": "t", "variant": "original"}
    pruned = {"namespace": "ml", "job": "t", "variant": "pruned-50", "metric": "accuracy"}
    registry = r.metrics.registry
    assert registry.get_sample_value("kubetrain_model_size_bytes", original) == 400_000
    assert registry.get_sample_value("kubetrain_model_metric", pruned) == 0.9721
    settle(r)  # later passes (the TTL's, a restarted operator's) keep them
    assert registry.get_sample_value("kubetrain_model_size_bytes", original) == 400_000
    r.forget(job(kube)["metadata"]["uid"])  # the job's DELETED event
    assert registry.get_sample_value("kubetrain_model_size_bytes", original) is None


def test_failure_writes_status_then_deletes_running_pods(kube: FakeKube) -> None:
    r = reconciler(kube)
    settle(r)
    run_all(kube)
    settle(r)
    kube.writes.clear()
    terminated = {"exitCode": 1, "reason": "Error", "message": "boom"}
    set_pod(kube, "t-head", phase="Failed", containerStatuses=[
        {"name": "head", "state": {"terminated": terminated}}
    ])  # fmt: skip
    settle(r)
    assert kube.writes[0] == ("patch", "TrainingJob/status", "t")
    assert ("delete", "Pod", "t-worker-0") in kube.writes
    assert ("delete", "Pod", "t-head") not in kube.writes  # finished: kept for its log
    status = job(kube)["status"]
    assert status["phase"] == "Failed"
    assert "pod t-head container head: exited with code 1: boom" in status["message"]
    assert ("Warning", "NonZeroExit") in kube.events()


@pytest.mark.parametrize("forged", [False, True], ids=["as-written", "head-resets-counters"])
def test_a_worker_failing_the_same_way_on_every_start_fails_the_job_after_3_replacements(
    kube: FakeKube, forged: bool
) -> None:
    """The streak must survive the status write between passes (an operator-owned field), and
    a head that resets the counters in the status between failures (code in the job's pods can
    reach its token) must not lift the bound: the operator counts from its own record."""
    r = reconciler(kube)
    settle(r)
    run_all(kube)
    settle(r)
    for free in (24454348, 24451002, 24460117, 24452222):
        fail_worker_1_for_object_store_memory(kube, free)
        settle(r)  # deleted, or at last the job fails
        if forged:
            reset = {"workerRestarts": 0, "workerFailureStreak": None, "restarts": 0}
            kube.objects[("TrainingJob", "ml", "t")]["status"].update(reset)
        settle(r)  # created again
    status = job(kube)["status"]
    if forged:
        record = json.loads(job(kube)["metadata"]["annotations"]["kubetrain.io/operator-ledger"])
        assert record["workerRestarts"] == 3
    assert (status["phase"], status["conditions"][-1]["reason"]) == (
        "Failed",
        "WorkersFailRepeatedly",
    ), status["message"]
    assert status["workerRestarts"] == 3
    assert status["workerFailureStreak"]["count"] == 3
    assert "at 24452222 bytes" in status["message"]


def test_objects_missing_after_a_crash_are_created_by_the_next_pass(kube: FakeKube) -> None:
    r = reconciler(kube)
    settle(r)
    # As if the operator had died after creating the pods, before the rest and the status.
    for kind in ("ConfigMap", "Service", "Role", "RoleBinding"):
        for obj in kube.of_kind(kind):
            del kube.objects[(kind, "ml", obj["metadata"]["name"])]
    del job(kube)["status"]
    settle(reconciler(kube))
    for kind in ("ConfigMap", "Service", "Role", "RoleBinding"):
        assert len(kube.of_kind(kind)) == 1, kind
    assert len(kube.of_kind("Pod")) == 3


def test_a_spec_edit_that_cannot_be_honoured_is_refused_without_damage(kube: FakeKube) -> None:
    r = reconciler(kube)
    settle(r)
    run_all(kube)
    settle(r)
    kube.writes.clear()
    merge(job(kube), {"metadata": {"generation": 2}, "spec": {"model": {"name": "cnn"}}})
    settle(r)
    writes = {(verb, kind) for verb, kind, _ in kube.writes}
    assert writes <= {("patch", "TrainingJob/status"), ("create", "Event")}
    status = job(kube)["status"]
    refused = [c for c in status["conditions"] if c["type"] == "SpecChangeRefused"]
    assert refused and refused[0]["status"] == "True" and "spec.model.name" in refused[0]["message"]
    assert status["phase"] == "Running" and status["observedGeneration"] == 2
    assert ("Warning", "SpecChangeRefused") in kube.events()
    frozen = json.loads(kube.objects[("ConfigMap", "ml", "t-config")]["data"]["trainingjob.json"])
    assert frozen["spec"]["model"]["name"] == "mlp"
    # Reverting the edit clears the condition.
    merge(job(kube), {"metadata": {"generation": 3}, "spec": {"model": {"name": "mlp"}}})
    settle(r)
    assert not [c for c in job(kube)["status"]["conditions"] if c["type"] == "SpecChangeRefused"]


def test_workers_edited_while_suspended_apply_on_resume(kube: FakeKube) -> None:
    r = reconciler(kube)
    settle(r)
    merge(job(kube), {"spec": {"runPolicy": {"suspend": True}}})
    settle(r)
    assert kube.of_kind("Pod") == []
    assert job(kube)["status"]["phase"] == "Suspended"
    merge(job(kube), {"spec": {"runPolicy": {"suspend": False}, "distributed": {"workers": 3}}})
    settle(r)
    assert sorted(p["metadata"]["name"] for p in kube.of_kind("Pod")) == [
        "t-head", "t-worker-0", "t-worker-1", "t-worker-2"
    ]  # fmt: skip
    frozen = json.loads(kube.objects[("ConfigMap", "ml", "t-config")]["data"]["trainingjob.json"])
    assert frozen["spec"]["distributed"]["workers"] == 3
    assert job(kube)["status"]["phase"] == "Starting"


def test_a_pod_the_api_server_refuses_fails_the_job_as_invalid(kube: FakeKube) -> None:
    kube.refuse_pods = 'Pod "t-head" is invalid: spec.containers[0].image: Required value'
    r = reconciler(kube)
    out = settle(r)
    assert out.action is Action.FAIL
    status = job(kube)["status"]
    assert status["phase"] == "Failed" and "spec.containers[0].image" in status["message"]


def test_a_refused_pod_keeps_the_refused_spec_edit_in_the_status(kube: FakeKube) -> None:
    # The job fails on the pod the API server refuses; the edit it refused still stands.
    r = reconciler(kube)
    settle(r)
    run_all(kube)
    settle(r)
    merge(job(kube), {"metadata": {"generation": 2}, "spec": {"model": {"name": "cnn"}}})
    settle(r)
    del kube.objects[("Pod", "ml", "t-worker-1")]  # lost: the next pass makes it again
    kube.refuse_pods = 'Pod "t-worker-1" is invalid: spec.nodeName: Invalid value'
    assert settle(r).action is Action.FAIL
    status = job(kube)["status"]
    assert status["phase"] == "Failed" and "spec.nodeName" in status["message"]
    refused = [c for c in status["conditions"] if c["type"] == "SpecChangeRefused"]
    assert refused and refused[0]["status"] == "True" and "spec.model.name" in refused[0]["message"]


def test_an_invalid_spec_fails_the_job(kube: FakeKube) -> None:
    merge(job(kube), {"spec": {"dataset": {"source": "csv"}}})
    settle(reconciler(kube))
    status = job(kube)["status"]
    assert status["phase"] == "Failed"
    assert status["conditions"][-1]["reason"] == "InvalidSpec"
    assert "spec.dataset.path: is required for source 'csv'" in status["message"]
    assert kube.of_kind("Pod") == []


@pytest.mark.parametrize(("patch", "field", "fix"), mistake_params())
def test_each_spec_mistake_fails_the_job_before_any_object_exists(
    patch: dict[str, Any], field: str, fix: str
) -> None:
    kube = FakeKube()
    kube.put(api_job_dict(**patch))
    settle(reconciler(kube))
    status = job(kube)["status"]
    assert (status["phase"], status["conditions"][-1]["reason"]) == ("Failed", "InvalidSpec")
    assert f"{field}: " in status["message"] and fix in status["message"], status["message"]
    assert status.get("restarts", 0) == 0
    created = [(kind, name) for verb, kind, name in kube.writes if verb == "create"]
    assert [kind for kind, _ in created if kind != "Event"] == [], created


def test_a_local_checkpoint_dir_without_a_claim_fails_the_job_before_any_pod() -> None:
    kube = FakeKube()
    kube.put(api_job_dict(checkpoint={"storagePath": "./runs"}))
    settle(reconciler(kube))
    status = job(kube)["status"]
    assert status["conditions"][-1]["reason"] == "InvalidSpec"
    assert (
        "spec.checkpoint.claimName: storagePath './runs' is a local directory"
        in (status["message"])
    )
    assert kube.of_kind("Pod") == []


def test_ttl_deletes_the_job_and_reports_it_gone(kube: FakeKube) -> None:
    clock = Clock()
    r = reconciler(kube, clock)
    merge(job(kube), {"spec": {"runPolicy": {"ttlSecondsAfterFinished": 10}}})
    settle(r)
    set_pod(kube, "t-head", phase="Succeeded")
    clock.t = 100
    assert settle(r).requeue_after == 10
    clock.t = 110
    assert settle(r).gone
    assert ("TrainingJob", "ml", "t") not in kube.objects


def test_a_deleted_job_is_gone(kube: FakeKube) -> None:
    del kube.objects[("TrainingJob", "ml", "t")]
    assert settle(reconciler(kube)).gone


def test_pods_of_someone_else_are_ignored(kube: FakeKube) -> None:
    r = reconciler(kube)
    settle(r)
    stranger = {
        "kind": "Pod",
        "metadata": {
            "name": "t-worker-9", "namespace": "ml",
            "labels": {"kubetrain.io/job-name": "t"}, "ownerReferences": [{"uid": "other"}],
        },
        "status": {"phase": "Running"},
    }  # fmt: skip
    kube.put(stranger)
    kube.writes.clear()
    settle(r)
    assert ("delete", "Pod", "t-worker-9") not in kube.writes


def test_the_jobs_ray_token_secret_is_created_before_its_pods_and_never_read(
    kube: FakeKube,
) -> None:
    settle(reconciler(kube))
    created = [(kind, name) for verb, kind, name in kube.writes if verb == "create"]
    assert created.index(("Secret", "t-ray-token")) < created.index(("Pod", "t-head"))
    assert not [read for read in kube.reads if read[0] == "Secret"]  # no get: no RBAC for it
    token = kube.objects[("Secret", "ml", "t-ray-token")]["stringData"]["token"]
    assert len(token) >= 40  # 32 random bytes


@pytest.mark.parametrize("name", ["1job", "a" * 53])
def test_a_job_name_no_pod_could_carry_fails_the_job_before_any_object(name: str) -> None:
    # API servers before 1.25 ignore the CRD's name rules: the operator refuses it itself.
    kube = FakeKube()
    kube.put(api_job_dict(name))
    r, key = reconciler(kube), JobKey("ml", name)
    for _ in range(3):
        r.reconcile(key)
    status = kube.objects[("TrainingJob", "ml", name)]["status"]
    assert (status["phase"], status["conditions"][-1]["reason"]) == ("Failed", "InvalidSpec")
    assert "metadata.name" in status["message"], status["message"]
    assert [kind for verb, kind, _ in kube.writes if verb == "create" and kind != "Event"] == []


def test_a_new_jobs_status_counters_mean_nothing_until_the_operator_records_them(
    kube: FakeKube,
) -> None:
    merge(job(kube), {"status": {"restarts": 99, "startTime": "2020-01-01T00:00:00Z"}})
    settle(reconciler(kube))
    status = job(kube)["status"]
    assert status.get("restarts", 0) == 0 and status.get("startTime") != "2020-01-01T00:00:00Z"
