"""Gang scheduling on a real cluster: the job's PodGroup is made before its pods, owned by the
job, and goes with it (garbage collection). No gang scheduler needs to run: where the PodGroup
CRDs are missing, the test installs the trimmed stand-ins of tests/crds/podgroups.yaml, and the
pods stay Pending (nothing serves their schedulerName), which is all it looks at."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from e2e.tests.conftest import example_job, wait_for_job
from e2e.tests.kube import REPO, Kubectl, Obj, wait_for

STAND_INS = REPO / "tests" / "crds" / "podgroups.yaml"
# gang: the PodGroup resource (for kubectl), where a pod names its group (metadata field and
# key), and the scheduler its pods ask for.
GANGS = {
    "volcano": ("podgroups.v1beta1.scheduling.volcano.sh", "annotations",
                "scheduling.k8s.io/group-name", "volcano"),
    "coscheduling": ("podgroups.v1alpha1.scheduling.x-k8s.io", "labels",
                     "scheduling.x-k8s.io/pod-group", "scheduler-plugins-scheduler"),
}  # fmt: skip


@pytest.fixture(scope="module")
def pod_group_crds(kubectl: Kubectl) -> Iterator[None]:
    """The PodGroup CRDs: the cluster's own if it has them, else the stand-ins (removed after)."""
    crds = [d for d in yaml.safe_load_all(STAND_INS.read_text()) if d]
    installed = []
    for crd in crds:
        name = crd["metadata"]["name"]
        if kubectl.get("crd", name) is None:
            kubectl.create(crd)
            installed.append(name)
    for crd in crds:
        kubectl.run("wait", "--for=condition=Established", "--timeout=30s",
                    f"crd/{crd['metadata']['name']}")  # fmt: skip
    yield
    for name in installed:
        kubectl.delete("crd", name)


@pytest.mark.parametrize("gang", ["volcano", "coscheduling"])
def test_the_pod_group_is_made_owned_and_deleted_with_the_job(
    kubectl: Kubectl, namespace: str, checkpoint_claim: str, pod_group_crds: None, gang: str
) -> None:
    resource, field, key, scheduler = GANGS[gang]
    name = f"gang-{gang}"
    job = example_job(name, namespace, claim=checkpoint_claim)
    job["spec"]["scheduling"] = {"gang": gang}
    kubectl.apply(job)
    wait_for_job(kubectl, name, namespace, "its pods created",
                 lambda s: s.get("phase") == "Starting", timeout=60)  # fmt: skip
    uid = kubectl.get("trainingjob", name, namespace=namespace)["metadata"]["uid"]  # type: ignore[index]

    group = kubectl.get(resource, name, namespace=namespace)
    assert group is not None, f"no {resource} {name}"
    (owner,) = group["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("TrainingJob", name, uid)
    workers = job["spec"]["distributed"]["workers"]
    assert group["spec"]["minMember"] == 1 + workers

    pods: list[Obj] = kubectl.items("pods", namespace=namespace,
                                    selector=f"kubetrain.io/job-name={name}")  # fmt: skip
    assert len(pods) == 1 + workers
    for pod in pods:
        assert pod["metadata"].get(field, {}).get(key) == name, pod["metadata"]
        assert pod["spec"]["schedulerName"] == scheduler

    kubectl.delete("trainingjob", name, namespace=namespace)
    wait_for(f"{resource} {name} to go with its job",
             lambda: kubectl.get(resource, name, namespace=namespace) is None or None,
             timeout=60)  # fmt: skip
