"""A job's Ray cluster is closed to everything but its own pods (issue 17).

While a job trains, an intruder pod, one in another namespace and one in the job's own namespace
without the job's token, tries Ray's own client against the job's head: `ray.init` (which calls
the GCS) and `ray start --address` (joining as a node). Ray's token authentication refuses both;
the job goes on to Succeed. The job's NetworkPolicy exists too, but this cluster's network plugin
(the bridge CNI, no policy controller) does not enforce it: what refuses the intruders here is
the token, and the policy's content is checked by tests/operator/test_render.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from e2e.tests.conftest import (
    TRAINER_IMAGE,
    Figures,
    example_job,
    wait_for_phase,
)
from e2e.tests.kube import Kubectl, Obj, wait_for

# Runs Ray's client against the head as an intruder would, and prints one line per attempt.
INTRUDER = r"""
import json, os, subprocess, sys
address = sys.argv[1]
out = {}
try:
    import ray
    ray.init(address=address, log_to_driver=False)
    out["gcs"] = "joined: " + json.dumps(ray.cluster_resources())
except Exception as exc:
    out["gcs"] = "refused: " + type(exc).__name__ + ": " + str(exc)[:300]
try:
    joined = subprocess.run(
        ["ray", "start", f"--address={address}", "--num-cpus=1", "--disable-usage-stats"],
        capture_output=True, text=True, timeout=120,
    )
    code = joined.returncode
    out["node"] = ("joined" if code == 0 else "refused") + f" (exit {code})"
except subprocess.TimeoutExpired:
    out["node"] = "refused (no node after 120 s)"
print("INTRUDER " + json.dumps(out), flush=True)
"""


def intruder_pod(name: str, namespace: str, head: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "intruder",
                "image": TRAINER_IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "command": ["python", "-c", INTRUDER, head],
                "env": [{"name": "HOME", "value": "/tmp"}],
                "resources": {"requests": {"cpu": "100m", "memory": "512Mi"},
                              "limits": {"memory": "1Gi"}},
            }],
        },
    }  # fmt: skip


def intruder_says(kubectl: Kubectl, name: str, namespace: str) -> dict[str, str]:
    def said() -> dict[str, str] | None:
        pod = kubectl.get("pod", name, namespace=namespace) or {}
        if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            return None
        for line in kubectl.run("logs", name, "-n", namespace).splitlines():
            if line.startswith("INTRUDER "):
                return dict(json.loads(line.removeprefix("INTRUDER ")))
        raise AssertionError(kubectl.run("logs", name, "-n", namespace))

    return wait_for(f"intruder {name} to finish", said, timeout=240, every=2)


@pytest.fixture
def other_namespace(kubectl: Kubectl) -> Iterator[str]:
    name = f"intruders-{int(time.time())}"
    kubectl.create_namespace(name)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


def test_pods_without_the_jobs_token_can_neither_call_its_gcs_nor_join_it(
    kubectl: Kubectl, namespace: str, checkpoint_claim: str, other_namespace: str,
    figures: Figures,
) -> None:  # fmt: skip
    name = "fenced"
    job = example_job(name, namespace, claim=checkpoint_claim)
    job["spec"]["training"]["epochs"] = 40  # trains while the intruders try
    kubectl.apply(job)
    wait_for_phase(kubectl, name, namespace, {"Running"}, timeout=600)
    head = f"{name}-head.{namespace}.svc:6379"
    t0 = time.monotonic()
    for pod_name, pod_namespace in (("from-elsewhere", other_namespace),
                                    ("same-namespace", namespace)):  # fmt: skip
        kubectl.apply(intruder_pod(pod_name, pod_namespace, head))
    outside = intruder_says(kubectl, "from-elsewhere", other_namespace)
    inside = intruder_says(kubectl, "same-namespace", namespace)
    kubectl.run("delete", "pod", "same-namespace", "-n", namespace, "--wait=false")
    figures.record("security.intruders_seconds", round(time.monotonic() - t0, 1))
    for said in (outside, inside):
        assert said["gcs"].startswith("refused"), said
        assert said["node"].startswith("refused"), said
    policy = kubectl.get("networkpolicy", f"{name}-ray", namespace=namespace)
    assert policy is not None and policy["spec"]["podSelector"] == {
        "matchLabels": {"kubetrain.io/job-name": name}
    }
    status = wait_for_phase(kubectl, name, namespace, {"Succeeded", "Failed"}, timeout=900)
    assert status["phase"] == "Succeeded", status
    kubectl.delete("trainingjob", name, namespace=namespace)


@pytest.mark.parametrize("name", ["1-starts-with-a-digit", "a" * 60])
def test_a_job_name_no_pod_could_carry_is_refused_with_no_pods(
    kubectl: Kubectl, namespace: str, checkpoint_claim: str, name: str
) -> None:
    # This API server (1.20) ignores the CRD's x-kubernetes-validations; 1.25+ refuses the
    # apply itself (tests/api/test_cel_rules.py). Here the operator refuses it.
    job = example_job(name, namespace, claim=checkpoint_claim)
    kubectl.apply(job)
    status = wait_for_phase(kubectl, name, namespace, {"Failed"}, timeout=30)
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "InvalidSpec" and "metadata.name" in failed["message"], failed
    owned = kubectl.items("pods", namespace=namespace, selector=f"kubetrain.io/job-name={name}")
    assert owned == []
    kubectl.delete("trainingjob", name, namespace=namespace)
