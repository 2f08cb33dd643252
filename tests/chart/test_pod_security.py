"""Every pod kubetrain makes passes the Pod Security Standards' "restricted" profile.

A namespace labelled `pod-security.kubernetes.io/enforce: restricted` (1.25+) refuses a pod that
breaks one of these rules; a stranger's GPU cluster may well label its training namespaces so.
The rules are the profile's, as Kubernetes documents them (baseline's included), checked here on
the chart's default render and on the training pods the operator renders.
"""

from __future__ import annotations

from collections.abc import Iterator

from kubetrain_operator.config import PodSettings
from kubetrain_operator.kubeobj import Obj
from kubetrain_operator.render import head_pod, worker_pod
from tests.chart.conftest import render
from tests.operator.helpers import api_job

# Volume types the restricted profile allows.
ALLOWED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}  # fmt: skip
ALLOWED_SECCOMP = {"RuntimeDefault", "Localhost"}


def violations(pod_spec: Obj) -> Iterator[str]:
    """What the restricted profile refuses in a pod spec."""
    pod_ctx = pod_spec.get("securityContext") or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(flag):
            yield f"{flag} is set"
    for volume in pod_spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            yield f"volume {volume['name']} is {kinds - ALLOWED_VOLUMES}"
    containers = [*pod_spec.get("initContainers", []), *pod_spec["containers"]]
    for c in containers:
        ctx = c.get("securityContext") or {}
        name = c["name"]
        if ctx.get("privileged"):
            yield f"{name}: privileged"
        if ctx.get("allowPrivilegeEscalation") is not False:
            yield f"{name}: allowPrivilegeEscalation is not false"
        caps = ctx.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            yield f"{name}: capabilities do not drop ALL"
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            yield f"{name}: adds capabilities {caps['add']}"
        if not ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")):
            yield f"{name}: runAsNonRoot is not true"
        if ctx.get("runAsUser", pod_ctx.get("runAsUser")) == 0:
            yield f"{name}: runs as user 0"
        seccomp = (ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get("type")
        if seccomp not in ALLOWED_SECCOMP:
            yield f"{name}: seccompProfile is {seccomp}"
        if any(p.get("hostPort") for p in c.get("ports") or []):
            yield f"{name}: uses a hostPort"


def test_the_charts_default_render_passes_the_restricted_profile(helm: str) -> None:
    pods = [
        o["spec"]["template"]["spec"]
        for o in render(helm)
        if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")
    ]
    assert pods, "the chart renders the operator's Deployment"
    for spec in pods:
        assert list(violations(spec)) == []


def test_every_training_pod_passes_the_restricted_profile() -> None:
    settings = PodSettings()
    jobs = [
        api_job(),
        api_job(distributed={"resourcesPerWorker": {"gpu": 1}}, metrics={"enabled": True}),
        api_job(
            checkpoint={"storagePath": "/ckpt", "claimName": "c"},
            dataset={"source": "cifar10", "path": "/data/c", "claimName": "d"},
            model={"name": "cnn"},
            distributed={"backend": "deepspeed", "deepspeed": {"configMapRef": "ds"}},
        ),
    ]
    for job in jobs:
        for pod in (head_pod(job, attempt=0, settings=settings),
                    worker_pod(job, 0, attempt=0, settings=settings)):  # fmt: skip
            assert list(violations(pod["spec"])) == [], pod["metadata"]["name"]


def test_the_check_finds_what_the_profile_refuses() -> None:
    pod = worker_pod(api_job(), 0, attempt=0, settings=PodSettings())["spec"]
    pod["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    pod["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    pod["securityContext"]["seccompProfile"] = {"type": "Unconfined"}
    found = list(violations(pod))
    assert any("allowPrivilegeEscalation" in v for v in found)
    assert any("hostPath" in v for v in found)
    assert any("seccompProfile is Unconfined" in v for v in found)
