"""A real control plane (etcd, kube-apiserver, kube-controller-manager) and a real operator.

The cluster and its fixtures (`cluster`, `kube`) are shared with the chart's tests: see
tests/kube_cluster.py. There are no nodes: the tests play the kubelet by patching pod status.
Pods get a scheduler name nobody serves, so on a full cluster too no scheduler or kubelet
touches them.

The operator runs as a subprocess (`python -m kubetrain_operator`), as in a pod.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kubetrain.api import GROUP, PLURAL, VERSION
from kubetrain.api.constants import CRD_NAME
from kubetrain_operator.kube import MERGE_PATCH, ApiError, Kube
from kubetrain_operator.kubeobj import Obj
from tests.conftest import ROOT, job_dict
from tests.kube_cluster import Cluster, free_port, make_namespace, wait_for

CRD = ROOT / "crds" / "trainingjob.yaml"
NO_SCHEDULER = "kubetrain-test-no-scheduler"  # no scheduler serves it: pods stay unbound


def rfc3339_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --------------------------------------------------------------------------- the cluster


@pytest.fixture(scope="session")
def crd(cluster: Cluster, kube: Kube) -> None:
    # --validate=false: this kubectl and API server (1.20) predate the CRD's
    # x-kubernetes-validations, which the server then drops (1.25+ enforces them).
    applied = cluster.run_kubectl("apply", "--validate=false", "-f", str(CRD))
    assert applied.returncode == 0, applied.stderr

    def established() -> bool:
        found = kube._call(
            "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD_NAME}"
        )
        conds = ((found or {}).get("status") or {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conds)

    wait_for("the TrainingJob CRD to be established", established)
    # Discovery lags behind Established by a moment; kubectl and kopf both need it.
    wait_for(
        "the TrainingJob API to be served",
        lambda: kube._call("GET", f"/apis/{GROUP}/{VERSION}/{PLURAL}") is not None,
    )


# --------------------------------------------------------------------------- the operator


@dataclass
class Operator:
    """`python -m kubetrain_operator` in a subprocess."""

    cluster: Cluster
    namespaces: list[str]
    log_path: Path
    extra: list[str] = field(default_factory=list)
    metrics_port: int = field(default_factory=free_port)
    health_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Operator:
        args = [
            sys.executable, "-m", "kubetrain_operator",
            "--kubeconfig", self.cluster.kubeconfig,
            "--metrics-port", str(self.metrics_port), "--health-port", str(self.health_port),
            "--bind", "127.0.0.1", "--image-pull-grace", "3", "--resync", "5",
            *[arg for ns in self.namespaces for arg in ("--namespace", ns)],
            *self.extra,
        ]  # fmt: skip
        if "--priority" not in self.extra:
            args.append("--standalone")
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        wait_for("the operator to be ready", self.ready, timeout=30)
        return self

    def ready(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log()
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.health_port}/readyz", timeout=1
            ) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            return str(r.read().decode())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


@pytest.fixture(scope="session")
def operator(
    cluster: Cluster, crd: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    """One operator for the tests whose namespaces match `op-*`."""
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    op = Operator(cluster, ["op-*"], log).start()
    yield op
    op.stop()


# --------------------------------------------------------------------------- namespaces & jobs


@pytest.fixture
def ns(kube: Kube, request: pytest.FixtureRequest) -> Iterator[str]:
    # The namespace before the operator: kopf (1.45) skips the listing its namespace watch starts
    # with, so an `op-*` namespace made between its first list and that watch is never seen
    # until it changes, and the first test's job went unhandled (3 runs in 22).
    name = make_namespace(kube, "op")
    operator: Operator = request.getfixturevalue("operator")
    yield name
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        print(f"--- operator log (tail) ---\n{operator.log()}")
    with contextlib.suppress(ApiError):
        kube._call("DELETE", f"/api/v1/namespaces/{name}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)


class Jobs:
    """TrainingJobs and their pods in one namespace, through the real API server."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.ns = namespace

    def path(self, name: str, sub: str = "") -> str:
        base = f"/apis/{GROUP}/{VERSION}/namespaces/{self.ns}/{PLURAL}/{name}"
        return f"{base}/{sub}" if sub else base

    def apply(self, name: str, labels: dict[str, str] | None = None, **spec: Any) -> Obj:
        # Checkpoints on s3://: the operator refuses a local storagePath that no other pod sees.
        data = job_dict(**({"checkpoint": {"storagePath": "s3://bucket/runs"}} | spec))
        data["metadata"] = {"name": name, "namespace": self.ns, "labels": labels or {}}
        data["spec"].setdefault("pod", {})["schedulerName"] = NO_SCHEDULER
        created = self.kube._call(
            "POST", f"/apis/{GROUP}/{VERSION}/namespaces/{self.ns}/{PLURAL}", body=data
        )
        assert created is not None
        return created

    def get(self, name: str) -> Obj | None:
        return self.kube.get_job(namespace=self.ns, name=name)

    def status(self, name: str) -> Obj:
        return (self.get(name) or {}).get("status") or {}

    def condition(self, name: str, ctype: str) -> Obj | None:
        for cond in self.status(name).get("conditions") or []:
            if cond["type"] == ctype:
                return dict(cond)
        return None

    def patch_spec(self, name: str, spec: Obj) -> None:
        self.kube._call("PATCH", self.path(name), body={"spec": spec}, content_type=MERGE_PATCH)

    def wait_phase(self, name: str, phase: str, timeout: float = 20.0) -> Obj:
        status: Obj = wait_for(
            f"{self.ns}/{name} to be {phase}",
            lambda: (s := self.status(name)).get("phase") == phase and s,
            timeout,
        )
        return status

    def pods(self, name: str) -> dict[str, Obj]:
        items = self.kube.list_pods(namespace=self.ns, selector=f"kubetrain.io/job-name={name}")
        live = [p for p in items if not p["metadata"].get("deletionTimestamp")]
        return {p["metadata"]["name"]: p for p in live}

    def wait_pods(self, name: str, count: int, timeout: float = 20.0) -> dict[str, Obj]:
        pods: dict[str, Obj] = wait_for(
            f"{count} pods of {self.ns}/{name}",
            lambda: len(p := self.pods(name)) == count and p,
            timeout,
        )
        return pods

    def events(self, name: str) -> list[Obj]:
        found = self.kube._call("GET", f"/api/v1/namespaces/{self.ns}/events") or {}
        return [e for e in found.get("items", []) if e["involvedObject"].get("name") == name]

    def event_reasons(self, name: str) -> list[str]:
        return [e["reason"] for e in self.events(name)]

    def list(self, plural: str, api: str = "/api/v1") -> list[Obj]:
        found = self.kube._call("GET", f"{api}/namespaces/{self.ns}/{plural}") or {}
        return list(found.get("items", []))


@pytest.fixture
def jobs(kube: Kube, ns: str) -> Jobs:
    return Jobs(kube, ns)


# --------------------------------------------------------------------------- playing the kubelet


class Kubelet:
    """Writes pod status the way the kubelet (and the scheduler) would."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.ns = namespace

    def _patch(self, pod: str, status: Obj) -> None:
        self.kube._call(
            "PATCH",
            f"/api/v1/namespaces/{self.ns}/pods/{pod}/status",
            body={"status": status},
            content_type=MERGE_PATCH,
        )

    def _container(self, pod: str) -> str:
        return "head" if pod.endswith("-head") else "worker"

    def run(self, pod: str, *, ready: bool = False) -> None:
        now = rfc3339_now()
        ready_s = "True" if ready else "False"
        self._patch(pod, {
            "phase": "Running",
            "startTime": now,
            "podIP": "10.244.0.7",
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": ready_s, "lastTransitionTime": now},
                {"type": "Ready", "status": ready_s, "lastTransitionTime": now},
            ],
            "containerStatuses": [{
                "name": self._container(pod), "ready": ready, "restartCount": 0, "started": True,
                "image": "kubetrain/trainer:0.1.0-cpu", "imageID": "sha256:1",
                "containerID": "containerd://1", "state": {"running": {"startedAt": now}},
            }],
        })  # fmt: skip

    def run_all(self, pods: dict[str, Obj], *, head_ready: bool = True) -> None:
        for name in pods:
            self.run(name, ready=head_ready and name.endswith("-head"))

    def exit(self, pod: str, code: int, *, reason: str = "Error", message: str = "") -> None:
        now = rfc3339_now()
        terminated = {
            "exitCode": code, "reason": reason, "message": message,
            "startedAt": now, "finishedAt": now, "containerID": "containerd://1",
        }  # fmt: skip
        self._patch(pod, {
            "phase": "Succeeded" if code == 0 else "Failed",
            "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now}],
            "containerStatuses": [{
                "name": self._container(pod), "ready": False, "restartCount": 0,
                "image": "kubetrain/trainer:0.1.0-cpu", "imageID": "sha256:1",
                "state": {"terminated": terminated},
            }],
        })  # fmt: skip

    def waiting(self, pod: str, reason: str, message: str, last: Obj | None = None) -> None:
        status: Obj = {
            "name": self._container(pod), "ready": False, "restartCount": 0,
            "image": "kubetrain/trainer:missing", "imageID": "",
            "state": {"waiting": {"reason": reason, "message": message}},
        }  # fmt: skip
        if last is not None:
            status["lastState"] = {"terminated": last}
            status["restartCount"] = 5
        self._patch(pod, {"phase": "Pending", "containerStatuses": [status]})

    def unschedulable(self, pod: str, message: str) -> None:
        cond = {
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": message, "lastTransitionTime": rfc3339_now(),
        }  # fmt: skip
        self._patch(pod, {"phase": "Pending", "conditions": [cond]})


@pytest.fixture
def kubelet(kube: Kube, ns: str) -> Kubelet:
    return Kubelet(kube, ns)


def dump(obj: object) -> str:
    return json.dumps(obj, indent=1, default=str)[:3000]
