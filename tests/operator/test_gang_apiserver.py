"""Gang scheduling against a real API server (tests/apiserver.py) with trimmed PodGroup CRDs
(tests/crds/podgroups.yaml): the reconciler makes the PodGroup, owned by the job, before any pod;
without the CRD the job fails with GangSchedulerMissing and has no pod. (This API server has no
garbage collector: deletion with the job is e2e/tests/test_gang.py's.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from kubetrain_operator.config import OperatorConfig
from kubetrain_operator.kubeobj import Obj
from kubetrain_operator.metrics import Metrics
from kubetrain_operator.reconcile import JobKey, Reconciler
from tests.apiserver import ApiServer, apply_crds
from tests.conftest import ROOT, job_dict

pytestmark = [pytest.mark.apiserver, pytest.mark.slow]

POD_GROUP_CRDS = ROOT / "tests" / "crds"
GROUPS = {
    "volcano": "scheduling.volcano.sh/v1beta1",
    "coscheduling": "scheduling.x-k8s.io/v1alpha1",
}


def _served(apiserver: ApiServer, api_version: str) -> bool:
    listing = apiserver.request("GET", f"/apis/{api_version}") or {}
    return any(r["name"] == "podgroups" for r in listing.get("resources", []))


def _namespace(apiserver: ApiServer) -> str:
    ns = f"gang-{uuid.uuid4().hex[:6]}"
    apiserver.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    return ns


def _job(apiserver: ApiServer, namespace: str, gang: str) -> Obj:
    data = job_dict(checkpoint={"storagePath": "s3://bucket/runs"},
                    distributed={"workers": 2}, scheduling={"gang": gang})  # fmt: skip
    data["metadata"] = {"name": "tj", "namespace": namespace}
    return apiserver.create(data)


def _pass_until_settled(r: Reconciler, key: JobKey) -> None:
    for _ in range(4):
        if r.reconcile(key).requeue_after != 0:
            return


def _pods(apiserver: ApiServer, namespace: str) -> list[Obj]:
    listing = apiserver.request("GET", f"/api/v1/namespaces/{namespace}/pods") or {}
    return list(listing.get("items", []))


@pytest.fixture
def reconciler(apiserver: ApiServer) -> Reconciler:
    return Reconciler(apiserver.kube(), OperatorConfig(), Metrics())


# First in this module: the session's API server has no PodGroup CRD until the fixture below.
def test_without_the_pod_group_crd_the_job_fails_naming_it_and_has_no_pod(
    apiserver: ApiServer, reconciler: Reconciler
) -> None:
    assert not _served(apiserver, GROUPS["coscheduling"]), "run this before the CRDs are applied"
    ns = _namespace(apiserver)
    _job(apiserver, ns, "coscheduling")
    _pass_until_settled(reconciler, JobKey(ns, "tj"))
    job = apiserver.request("GET", f"/apis/kubetrain.io/v1alpha1/namespaces/{ns}/trainingjobs/tj")
    assert job is not None
    status = job["status"]
    assert status["phase"] == "Failed"
    (failed,) = [c for c in status["conditions"] if c["type"] == "Failed"]
    assert failed["reason"] == "GangSchedulerMissing"
    assert "podgroups.scheduling.x-k8s.io" in failed["message"]
    assert _pods(apiserver, ns) == []


@pytest.fixture
def pod_group_crds(apiserver: ApiServer) -> Iterator[None]:
    if not all(_served(apiserver, v) for v in GROUPS.values()):
        apply_crds(apiserver, POD_GROUP_CRDS)
    yield


@pytest.mark.parametrize("gang", ["volcano", "coscheduling"])
def test_the_operator_makes_the_pod_group_owned_by_the_job_before_its_pods(
    apiserver: ApiServer, reconciler: Reconciler, pod_group_crds: None, gang: str
) -> None:
    ns = _namespace(apiserver)
    job = _job(apiserver, ns, gang)
    _pass_until_settled(reconciler, JobKey(ns, "tj"))
    group = apiserver.request("GET", f"/apis/{GROUPS[gang]}/namespaces/{ns}/podgroups/tj")
    assert group is not None, f"no {gang} PodGroup"
    (owner,) = group["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == (
        "TrainingJob", job["metadata"]["uid"], True
    )  # fmt: skip
    assert group["spec"]["minMember"] == 3  # the head and 2 workers
    assert group["spec"]["minResources"]["cpu"] == "3"  # 1 (head) + 2 x 1 (workers)
    pods = _pods(apiserver, ns)
    assert len(pods) == 3
    # Made before the pods: this one etcd numbers its writes in order, and nothing wrote to
    # these objects since (no scheduler, no kubelet).
    made = int(group["metadata"]["resourceVersion"])
    assert all(made < int(p["metadata"]["resourceVersion"]) for p in pods)
    for pod in pods:
        meta = pod["metadata"]
        if gang == "volcano":
            assert meta["annotations"]["scheduling.k8s.io/group-name"] == "tj"
            assert pod["spec"]["schedulerName"] == "volcano"
        else:
            assert meta["labels"]["scheduling.x-k8s.io/pod-group"] == "tj"
            assert pod["spec"]["schedulerName"] == "scheduler-plugins-scheduler"
