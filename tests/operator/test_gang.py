"""Gang scheduling and Kueue pod groups: golden PodGroups, the pods' marks, and a reconcile that
makes the PodGroup before any pod (or fails the job when its scheduler is not installed)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from kubetrain.api import parse_job
from kubetrain.api.quantities import format_quantity, parse_quantity
from kubetrain_operator.config import OperatorConfig, PodSettings
from kubetrain_operator.decide import Action
from kubetrain_operator.kube import Kube
from kubetrain_operator.metrics import Metrics
from kubetrain_operator.reconcile import JobKey, Reconciler
from kubetrain_operator.render import head_pod, support_objects, worker_pod
from kubetrain_operator.render.objects import pod_group
from tests.operator.fake_kube import FakeKube
from tests.operator.helpers import OWNER, api_job, api_job_dict, at

SETTINGS = PodSettings()
METADATA = {
    "name": "t",
    "namespace": "ml",
    "labels": {"kubetrain.io/job-name": "t", "app.kubernetes.io/managed-by": "kubetrain-operator"},
    "ownerReferences": [OWNER],
}
GPU_WORKERS = {"workers": 3, "resourcesPerWorker": {"cpu": "500m", "memory": "1536Mi", "gpu": 1}}
# The head (1 CPU, 2Gi, 4Gi scratch by default) and 3 workers (500m, 1536Mi, 10Gi, 1 GPU) together.
GPU_GANG_RESOURCES = {
    "cpu": "2500m",
    "memory": "6656Mi",
    "ephemeral-storage": "34Gi",
    "nvidia.com/gpu": "3",
}


def test_volcano_pod_group_golden() -> None:
    job = api_job(
        scheduling={"gang": "volcano", "queue": "research"},
        distributed=GPU_WORKERS,
        pod={"priorityClassName": "high"},
    )
    assert pod_group(job, SETTINGS) == {
        "apiVersion": "scheduling.volcano.sh/v1beta1",
        "kind": "PodGroup",
        "metadata": METADATA,
        "spec": {
            # Every pod of the job, or none: a part of the job cannot train.
            "minMember": 4,
            "minResources": GPU_GANG_RESOURCES,
            "queue": "research",
            "priorityClassName": "high",
        },
    }


def test_coscheduling_pod_group_golden() -> None:
    job = api_job(
        scheduling={"gang": "coscheduling", "scheduleTimeoutSeconds": 120},
        distributed=GPU_WORKERS,
    )
    assert pod_group(job, SETTINGS) == {
        "apiVersion": "scheduling.x-k8s.io/v1alpha1",
        "kind": "PodGroup",
        "metadata": METADATA,
        "spec": {
            "minMember": 4,
            "minResources": GPU_GANG_RESOURCES,
            "scheduleTimeoutSeconds": 120,
        },
    }


def test_min_resources_are_the_sum_of_the_rendered_pods_requests() -> None:
    job = api_job(
        scheduling={"gang": "volcano"},
        distributed={"workers": 2, "resourcesPerWorker": {"cpu": "2", "memory": "3Gi",
                                                          "extra": {"rdma/hca": "1"}}},
    )  # fmt: skip
    pods = [head_pod(job, attempt=0, settings=SETTINGS)] + [
        worker_pod(job, rank, attempt=0, settings=SETTINGS) for rank in range(2)
    ]
    totals: dict[str, Any] = {}
    for pod in pods:
        for name, value in pod["spec"]["containers"][0]["resources"]["requests"].items():
            totals[name] = totals.get(name, 0) + parse_quantity(value)
    group = pod_group(job, SETTINGS)
    assert group is not None
    assert {k: parse_quantity(v) for k, v in group["spec"]["minResources"].items()} == totals
    assert group["spec"]["minResources"]["rdma/hca"] == "2"  # only workers ask for it


@pytest.mark.parametrize(
    ("text", "spelled"),
    [("500m", "500m"), ("1.5", "1500m"), ("2Gi", "2Gi"), ("1536Mi", "1536Mi"),
     ("3", "3"), ("10G", "10G"), ("1500M", "1500M"), ("4096Mi", "4Gi")],
)  # fmt: skip
def test_quantities_keep_their_value(text: str, spelled: str) -> None:
    assert format_quantity(parse_quantity(text)) == spelled
    assert parse_quantity(spelled) == parse_quantity(text)


def test_no_gang_makes_no_pod_group_and_leaves_the_pods_alone() -> None:
    job = api_job()
    assert pod_group(job, SETTINGS) is None
    assert not any(o["kind"] == "PodGroup" for o in support_objects(job, SETTINGS, ray_token="x"))
    pod = worker_pod(job, 0, attempt=0, settings=SETTINGS)
    assert "schedulerName" not in pod["spec"]
    assert not any("scheduling" in k or "kueue" in k for k in pod["metadata"]["labels"])


def test_volcano_pods_name_their_pod_group_and_are_scheduled_by_volcano() -> None:
    job = api_job(scheduling={"gang": "volcano"}, pod={"annotations": {"team": "a"}})
    for pod in (head_pod(job, attempt=2, settings=SETTINGS),
                worker_pod(job, 1, attempt=2, settings=SETTINGS)):  # fmt: skip
        assert pod["spec"]["schedulerName"] == "volcano"
        assert pod["metadata"]["annotations"]["scheduling.k8s.io/group-name"] == "t"
        assert pod["metadata"]["annotations"]["team"] == "a"  # the user's stay


def test_coscheduling_pods_carry_the_pod_group_label_and_the_plugins_scheduler() -> None:
    job = api_job(scheduling={"gang": "coscheduling"})
    for pod in (head_pod(job, attempt=0, settings=SETTINGS),
                worker_pod(job, 0, attempt=0, settings=SETTINGS)):  # fmt: skip
        assert pod["spec"]["schedulerName"] == "scheduler-plugins-scheduler"
        assert pod["metadata"]["labels"]["scheduling.x-k8s.io/pod-group"] == "t"


def test_the_users_scheduler_name_wins_over_the_gangs_default() -> None:
    job = api_job(scheduling={"gang": "coscheduling"}, pod={"schedulerName": "gang-profile"})
    assert worker_pod(job, 0, attempt=0, settings=SETTINGS)["spec"]["schedulerName"] == (
        "gang-profile"
    )


def test_kueue_pods_form_one_pod_group_per_attempt() -> None:
    data = api_job_dict(distributed={"workers": 3})
    data["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": "team-a"}
    job = parse_job(data)
    for attempt in (0, 1):
        pods = [head_pod(job, attempt=attempt, settings=SETTINGS)] + [
            worker_pod(job, rank, attempt=attempt, settings=SETTINGS) for rank in range(3)
        ]
        for pod in pods:
            meta = pod["metadata"]
            assert meta["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
            # A restart deletes every pod: its new pods are a new Workload, queued anew.
            assert meta["labels"]["kueue.x-k8s.io/pod-group-name"] == f"t-{attempt}"
            # Kueue admits the group once it has seen this many pods: the head and 3 workers.
            assert meta["annotations"]["kueue.x-k8s.io/pod-group-total-count"] == "4"
            # No gang scheduler named: Kueue's gate holds the pods, the default scheduler binds.
            assert "schedulerName" not in pod["spec"]


def test_a_job_without_the_queue_label_is_no_kueue_pod_group() -> None:
    pod = worker_pod(api_job(), 0, attempt=0, settings=SETTINGS)
    assert "kueue.x-k8s.io/pod-group-name" not in pod["metadata"]["labels"]
    assert "kueue.x-k8s.io/pod-group-total-count" not in pod["metadata"].get("annotations", {})


# --------------------------------------------------------------------------- reconcile

KEY = JobKey("ml", "t")


def _reconciler(kube: FakeKube) -> Reconciler:
    return Reconciler(cast(Kube, kube), OperatorConfig(), Metrics(), clock=lambda: at(0))


def test_the_pod_group_is_made_before_any_pod_and_only_once() -> None:
    kube = FakeKube()
    kube.put(api_job_dict(distributed={"workers": 2}, scheduling={"gang": "volcano"}))
    r = _reconciler(kube)
    for _ in range(3):
        r.reconcile(KEY)
    created = [(kind, name) for verb, kind, name in kube.writes if verb == "create"]
    assert created[0] == ("PodGroup", "t")
    assert created.index(("PodGroup", "t")) < created.index(("Pod", "t-head"))
    assert [c for c in kube.create_calls if c[0] == "PodGroup"] == [("PodGroup", "t")]
    (group,) = kube.of_kind("PodGroup")
    assert group["spec"]["minMember"] == 3
    job = kube.objects[("TrainingJob", "ml", "t")]
    assert job["status"]["phase"] == "Starting"


def test_a_job_whose_gang_scheduler_is_not_installed_fails_without_a_pod() -> None:
    kube = FakeKube()
    kube.missing_apis.add("scheduling.x-k8s.io/v1alpha1")
    kube.put(api_job_dict(scheduling={"gang": "coscheduling"}))
    r = _reconciler(kube)
    out = r.reconcile(KEY)
    assert out.action is Action.FAIL
    assert kube.of_kind("Pod") == []
    status = kube.objects[("TrainingJob", "ml", "t")]["status"]
    assert status["phase"] == "Failed"
    (failed,) = [c for c in status["conditions"] if c["type"] == "Failed"]
    assert failed["reason"] == "GangSchedulerMissing"
    assert "podgroups.scheduling.x-k8s.io" in failed["message"]
    assert "install scheduler-plugins" in failed["message"]
    assert "remove spec.scheduling.gang" in failed["message"]
    # Failed for good: a second pass makes no pod and tries no PodGroup again.
    calls = len(kube.create_calls)
    r.reconcile(KEY)
    assert kube.of_kind("Pod") == []
    assert not [c for c in kube.create_calls[calls:] if c[0] in ("Pod", "PodGroup")]
