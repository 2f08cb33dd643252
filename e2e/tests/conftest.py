"""The end-to-end suite's fixtures: a live cluster from $KUBECONFIG, the operator, a namespace.

    KUBECONFIG=$(e2e/cluster.sh up) .venv/bin/pytest -m e2e e2e/tests     # or: e2e/run.sh

How the operator runs (KUBETRAIN_E2E_OPERATOR):
  chart     (default) `helm upgrade --install` of charts/kubetrain, its image loaded beforehand
            by e2e/images/build.py; the last test uninstalls it.
  host      `kubetrain-operator` from this checkout's venv, on this machine, against the cluster
            (no operator image needed; CRDs applied from crds/).
  external  already running; the suite installs nothing.

Figures the suite measures (time to Succeeded, accuracy, ...) are written as JSON to
$KUBETRAIN_E2E_FIGURES (default e2e/.figures.json) when the session ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.tests.kube import REPO, Kubectl, KubectlError, Obj, find_kubectl, wait_for

RELEASE = os.environ.get("KUBETRAIN_E2E_RELEASE", "kubetrain")
OPERATOR_NAMESPACE = os.environ.get("KUBETRAIN_E2E_OPERATOR_NAMESPACE", "kubetrain-system")
TRAINER_IMAGE = os.environ.get("KUBETRAIN_E2E_TRAINER_IMAGE", "kubetrain/trainer:0.1.0-cpu")
OPERATOR_IMAGE_TAG = os.environ.get("KUBETRAIN_E2E_OPERATOR_TAG", "0.1.0")
# The examples ask 1 CPU per worker. The local cluster's node has 2 CPUs in all: two workers,
# the head and the operator fit only with less. Ray still gives each worker 1 CPU (rounded up).
WORKER_CPU = os.environ.get("KUBETRAIN_E2E_WORKER_CPU", "500m")
HEAD_CPU = os.environ.get("KUBETRAIN_E2E_HEAD_CPU", "250m")
CHART = REPO / "charts" / "kubetrain"
LOCAL_CLUSTER_DIR = Path(os.environ.get("KUBETRAIN_CLUSTER_DIR", "/tmp/kubetrain-cluster"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here is e2e; the chart's uninstall comes last (it takes the operator away)."""
    for item in items:
        if "/e2e/tests/" in str(item.path):
            item.add_marker(pytest.mark.e2e)
    items.sort(key=lambda item: item.path.name == "test_uninstall.py")


# --------------------------------------------------------------------------- figures


@dataclass
class Figures:
    """Numbers measured along the way, for the report (not assertions)."""

    values: dict[str, Any] = field(default_factory=dict)

    def record(self, key: str, value: Any) -> None:
        self.values[key] = value
        print(f"[figure] {key} = {value}", file=sys.stderr)


@pytest.fixture(scope="session")
def figures() -> Iterator[Figures]:
    found = Figures()
    yield found
    path = Path(os.environ.get("KUBETRAIN_E2E_FIGURES", REPO / "e2e" / ".figures.json"))
    path.write_text(json.dumps(found.values, indent=2, sort_keys=True) + "\n")


# --------------------------------------------------------------------------- cluster


@pytest.fixture(scope="session")
def kubectl() -> Kubectl:
    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig:
        pytest.skip("KUBECONFIG is not set: start a cluster (e2e/cluster.sh up, or e2e/run.sh)")
    binary = find_kubectl()
    if binary is None:
        pytest.skip("no kubectl: put one on PATH or set $KUBECTL")
    k = Kubectl(binary, kubeconfig)
    try:
        nodes = k.items("nodes")
    except KubectlError as exc:
        pytest.fail(f"the cluster in {kubeconfig} does not answer: {exc}")
    if not nodes:
        pytest.fail(f"the cluster in {kubeconfig} has no nodes: pods cannot run")
    return k


def is_local_cluster(kubectl: Kubectl) -> bool:
    """The e2e/cluster.sh cluster: its node is this machine, its pod IPs are routable here."""
    return Path(kubectl.kubeconfig).resolve() == (LOCAL_CLUSTER_DIR / "admin.kubeconfig").resolve()


# --------------------------------------------------------------------------- operator


@dataclass
class Operator:
    mode: str
    namespace: str | None  # where the chart installed it (None: on the host)
    metrics_url: str | None = None  # host mode: where its /metrics is
    installed: bool = True
    manifest: list[Obj] = field(default_factory=list)  # what the chart created
    process: subprocess.Popen[bytes] | None = None

    def pod_selector(self) -> str:
        return f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=operator"


def find_helm() -> str | None:
    venv_helm = REPO / ".venv" / "bin" / "helm"
    return shutil.which("helm") or (str(venv_helm) if venv_helm.exists() else None)


def helm(kubectl: Kubectl, *args: str) -> str:
    binary = find_helm()
    assert binary is not None
    proc = subprocess.run(
        [binary, "--kubeconfig", kubectl.kubeconfig, *args],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def _install_chart(kubectl: Kubectl) -> Operator:
    if not (CHART / "Chart.yaml").exists():
        pytest.fail("charts/kubetrain is missing; run with KUBETRAIN_E2E_OPERATOR=host")
    if find_helm() is None:
        pytest.fail("helm is not installed: scripts/get-helm.sh puts one in .venv/bin")
    t0 = time.monotonic()
    # As charts/kubetrain/README.md tells users: Helm installs crds/ once and never upgrades
    # them, so a cluster that had an older chart keeps an older schema (which prunes new status
    # fields) unless they are applied. --validate=false: see the Helm flags below.
    kubectl.run("apply", "--validate=false", "-f", str(CHART / "crds"))
    helm(
        kubectl, "upgrade", "--install", RELEASE, str(CHART),
        "--namespace", OPERATOR_NAMESPACE, "--create-namespace",
        "--set", f"operator.image.tag={OPERATOR_IMAGE_TAG}",
        # The images are loaded into the node, never pulled.
        "--set", "operator.image.pullPolicy=IfNotPresent",
        "--set", f"operator.headPod.cpu={HEAD_CPU}",
        # Client-side apply: this 1.20 API server predates the CRD's x-kubernetes-validations,
        # which Helm's server-side apply will not send it (it drops them; 1.25+ enforces them).
        "--server-side=false",
        "--wait", "--timeout", "5m",
    )  # fmt: skip
    manifest = [
        doc for doc in yaml.safe_load_all(helm(kubectl, "get", "manifest", RELEASE,
                                                "--namespace", OPERATOR_NAMESPACE)) if doc
    ]  # fmt: skip
    operator = Operator("chart", OPERATOR_NAMESPACE, manifest=manifest)
    wait_for(
        "the operator pod to be Ready",
        lambda: any(
            c["type"] == "Ready" and c["status"] == "True"
            for p in kubectl.items(
                "pods", namespace=OPERATOR_NAMESPACE, selector=operator.pod_selector()
            )
            for c in p.get("status", {}).get("conditions", [])
        ),
        timeout=180,
    )
    print(f"[e2e] chart installed in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    return operator


def _run_on_host(kubectl: Kubectl, tmp: Path) -> Operator:
    for manifest in ("crds/trainingjob.yaml",):
        # --validate=false: this kubectl and API server (1.20) predate x-kubernetes-validations.
        kubectl.run("apply", "--validate=false", "-f", str(REPO / manifest))
    from kubetrain_operator.render.install import peering_crds

    for crd in peering_crds():
        kubectl.apply(crd)
    metrics_port = 18000
    log = (tmp / "operator.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "kubetrain_operator", "--kubeconfig", kubectl.kubeconfig,
         "--standalone", "--metrics-port", str(metrics_port), "--health-port", "18080",
         "--head-cpu", HEAD_CPU,
         "--bind", "0.0.0.0"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    return Operator("host", None, f"127.0.0.1:{metrics_port}", process=process)


@pytest.fixture(scope="session")
def operator(kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    mode = os.environ.get("KUBETRAIN_E2E_OPERATOR", "chart")
    if mode == "chart":
        op = _install_chart(kubectl)
    elif mode == "host":
        op = _run_on_host(kubectl, tmp_path_factory.mktemp("operator"))
    elif mode == "external":
        op = Operator("external", None)
    else:
        pytest.fail(f"KUBETRAIN_E2E_OPERATOR={mode!r}: use chart, host or external")
    yield op
    if op.process is not None:
        op.process.terminate()
        op.process.wait(timeout=30)
    if op.mode == "chart" and op.installed:
        helm(kubectl, "uninstall", RELEASE, "--namespace", OPERATOR_NAMESPACE, "--wait")


# --------------------------------------------------------------------------- jobs


@pytest.fixture(scope="session")
def namespace(kubectl: Kubectl, operator: Operator) -> Iterator[str]:
    name = f"kubetrain-e2e-{uuid.uuid4().hex[:6]}"
    kubectl.create_namespace(name)
    yield name
    # Jobs carry no finalizer: they go with their namespace, operator or not.
    kubectl.run("delete", "namespace", name, "--timeout=180s")


def checkpoint_host_dir(namespace: str) -> Path:
    """Where the local cluster's checkpoint claim (below) keeps its files on this machine."""
    return Path("/tmp") / f"{namespace}-checkpoints"


@pytest.fixture(scope="session")
def checkpoint_claim(kubectl: Kubectl, namespace: str) -> Iterator[str]:
    """A claim that the head and workers of a job share, so a replaced worker resumes.

    On the local cluster (one node, this machine) a hostPath PersistentVolume under /tmp; on
    others a claim from the default StorageClass (one node, such as kind: ReadWriteOnce is
    enough; several nodes need ReadWriteMany: KUBETRAIN_E2E_ACCESS_MODE).
    """
    claim = "e2e-checkpoints"
    access = os.environ.get("KUBETRAIN_E2E_ACCESS_MODE", "ReadWriteOnce")
    pv_name = f"{namespace}-checkpoints"
    host_dir: Path | None = None
    spec: Obj = {"accessModes": [access], "resources": {"requests": {"storage": "1Gi"}}}
    if is_local_cluster(kubectl):
        host_dir = checkpoint_host_dir(namespace)
        host_dir.mkdir(mode=0o777)
        host_dir.chmod(0o1777)  # hostPath ignores fsGroup: the pods' user must write here
        kubectl.create({
            "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv_name},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": [access],
                     "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
                     "hostPath": {"path": str(host_dir), "type": "Directory"},
                     "claimRef": {"namespace": namespace, "name": claim}},
        })  # fmt: skip
        spec |= {"storageClassName": "", "volumeName": pv_name}
    kubectl.create({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": claim, "namespace": namespace}, "spec": spec,
    })  # fmt: skip
    yield claim
    kubectl.delete("pvc", claim, namespace=namespace)
    if host_dir is not None:
        kubectl.delete("pv", pv_name)
        shutil.rmtree(host_dir, ignore_errors=True)


def example_job(
    name: str, namespace: str, *, claim: str | None = None, path: str = "examples/mnist-mlp.yaml"
) -> Obj:
    """An example's TrainingJob as a user applies it, in the test's namespace, sized for a small
    node, with its checkpoints on `claim` (the head and the workers must share them), or on no
    claim at all when `claim` is None (the example's own claim is left out)."""
    docs = yaml.safe_load_all((REPO / path).read_text())
    job: Obj = next(d for d in docs if isinstance(d, dict) and d.get("kind") == "TrainingJob")
    job["metadata"] = {"name": name, "namespace": namespace}
    spec = job["spec"]
    spec.setdefault("pod", {}).setdefault("image", TRAINER_IMAGE)
    spec["distributed"].setdefault("resourcesPerWorker", {})["cpu"] = WORKER_CPU
    checkpoint = spec.setdefault("checkpoint", {})
    checkpoint.pop("claimName", None)
    if claim is not None:
        checkpoint["claimName"] = claim
    return job


def job_status(kubectl: Kubectl, name: str, namespace: str) -> Obj:
    job = kubectl.get("trainingjob", name, namespace=namespace)
    return dict(job.get("status") or {}) if job else {}


def wait_for_job(
    kubectl: Kubectl,
    name: str,
    namespace: str,
    what: str,
    until: Callable[[Obj], bool],
    *,
    timeout: float,
    every: float = 1.0,
) -> Obj:
    """The job's status once `until` accepts it; a job that ends before that fails the test."""

    def check() -> Obj | None:
        status = job_status(kubectl, name, namespace)
        if until(status):
            return status
        if status.get("phase") in ("Succeeded", "Failed"):
            raise AssertionError(f"job {name} ended {status['phase']} before {what}:"
                                 f" {json.dumps(status, indent=1)}")  # fmt: skip
        return None

    try:
        return wait_for(f"job {name}: {what}", check, timeout=timeout, every=every)
    except AssertionError:
        dump_job(kubectl, name, namespace)
        raise


def wait_for_phase(kubectl: Kubectl, name: str, namespace: str, phases: set[str],
                   *, timeout: float) -> Obj:  # fmt: skip
    """The job's status once its phase is one of `phases`."""
    return wait_for_job(kubectl, name, namespace, f"phase {'/'.join(sorted(phases))}",
                        lambda s: s.get("phase") in phases, timeout=timeout)  # fmt: skip


def dump_job(kubectl: Kubectl, name: str, namespace: str) -> None:
    """What a failing test needs to say why: the status, the pods, their logs, the events."""
    print(json.dumps(job_status(kubectl, name, namespace), indent=1), file=sys.stderr)
    with contextlib.suppress(KubectlError):
        print(kubectl.run("get", "pods", "-n", namespace, "-o", "wide"), file=sys.stderr)
        print(kubectl.run("get", "events", "-n", namespace), file=sys.stderr)
        for pod in kubectl.items("pods", namespace=namespace,
                                 selector=f"kubetrain.io/job-name={name}"):  # fmt: skip
            pod_name = pod["metadata"]["name"]
            logs = kubectl.run("logs", "-n", namespace, pod_name, "--tail=60", check=False)
            print(f"--- {pod_name}\n{logs}", file=sys.stderr)
