"""Every file in examples/ runs on the cluster as written, changed only by the size overlay.

Each example is applied whole (its PersistentVolumeClaims and its TrainingJob) into a namespace of
its own, through `size_overlay` (e2e/tests/overlay.py, whose docstring is the list of changes),
and must end Succeeded with its metric in status. A new file in examples/ is a new case here: the
cases are the directory's listing, so an example that cannot run fails CI.

What the examples need from outside comes as it would on an air-gapped cluster:
- downloads (MNIST, CIFAR-10, IMDB, MobileNetV2's ImageNet weights, BERT from the Hugging Face
  hub) from a mirror pod in the cluster (e2e/tests/hub_mirror.py behind a Service), which the
  chart's `mirrors` values name, so the operator gives every pod the settings and the trainer's
  real download code runs (checksums from the mirror's `.sha256` sidecars);
- data already on a volume (the image folders): a hostPath PersistentVolume bound to the
  example's data claim, holding two classes of digits as PNGs;
- every other claim: an empty hostPath PersistentVolume bound to it (the node is this machine).

Local cluster only (e2e/cluster.sh: hostPath volumes filled from here) and the chart's operator
(its values carry the mirror settings).
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from e2e.tests.conftest import (
    CHART,
    RELEASE,
    TRAINER_IMAGE,
    Figures,
    Operator,
    dump_job,
    helm,
    is_local_cluster,
    job_status,
)
from e2e.tests.kube import REPO, Kubectl, KubectlError, Obj, wait_for
from e2e.tests.mirror_content import (
    HUB_SERVER,
    expected_fetches,
    write_image_folder,
    write_mirror_root,
)
from e2e.tests.overlay import size_overlay

EXAMPLES = REPO / "examples"
COMPRESSED = EXAMPLES / "compressed-mlp.yaml"
EXAMPLE_FILES = sorted(p for p in EXAMPLES.glob("*.yaml") if p != COMPRESSED)
MIRROR_SERVICE = "kubetrain-mirror"
MIRROR_PORT = 8080
JOB_TIMEOUT = float(os.environ.get("KUBETRAIN_E2E_EXAMPLE_TIMEOUT", "900"))
IMAGE_SOURCES = {"image_folder", "csv"}  # data read from a claim, never downloaded


def documents(path: Path) -> list[Obj]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def training_job(docs: list[Obj]) -> Obj:
    jobs = [d for d in docs if d.get("kind") == "TrainingJob"]
    assert len(jobs) == 1, f"an example holds one TrainingJob, this one {len(jobs)}"
    return jobs[0]


# --------------------------------------------------------------------------- the mirror


@dataclass
class Mirror:
    namespace: str
    url: str  # http://kubetrain-mirror.<namespace>.svc.cluster.local
    host_dir: Path

    def log(self, kubectl: Kubectl) -> list[list[str]]:
        """The requests served so far: [client address, method, path, status] each."""
        out = kubectl.run("logs", "-n", self.namespace, "mirror", check=False)
        return [line.split() for line in out.splitlines() if len(line.split()) == 4]


def _pod_security() -> Obj:
    return {
        "runAsUser": 1000, "runAsGroup": 1000, "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }  # fmt: skip


def _mirror_pod(namespace: str, host_dir: Path) -> Obj:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "mirror", "namespace": namespace, "labels": {"app": "mirror"}},
        "spec": {
            "securityContext": _pod_security(),
            "containers": [{
                "name": "mirror", "image": TRAINER_IMAGE, "imagePullPolicy": "IfNotPresent",
                "command": ["python", f"/mirror/{HUB_SERVER.name}", "/mirror", str(MIRROR_PORT)],
                "ports": [{"containerPort": MIRROR_PORT}],
                "readinessProbe": {"tcpSocket": {"port": MIRROR_PORT}, "periodSeconds": 1},
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
                "securityContext": {"readOnlyRootFilesystem": True,
                                    "allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]}},
                "volumeMounts": [{"name": "files", "mountPath": "/mirror", "readOnly": True}],
            }],
            "volumes": [{"name": "files",
                         "hostPath": {"path": str(host_dir), "type": "Directory"}}],
        },
    }  # fmt: skip


def _set_mirrors(kubectl: Kubectl, operator: Operator, url: str | None) -> None:
    """helm upgrade with the mirrors values (None: back to none), and the operator rolled out."""
    values = {"datasets": f"{url}/datasets", "weights": f"{url}/weights", "huggingFace": url}
    sets = [f"mirrors.{k}={v if url else ''}" for k, v in values.items()]
    assert operator.namespace is not None
    sets = [a for s in sets for a in ("--set", s)]
    helm(kubectl, "upgrade", RELEASE, str(CHART), "--namespace", operator.namespace,
         "--reset-then-reuse-values", "--server-side=false", *sets,
         "--wait", "--timeout", "5m")  # fmt: skip
    flag = f"--pod-env=KUBETRAIN_DATASETS_MIRROR={url}/datasets"

    def rolled_out() -> bool:
        pods = kubectl.items("pods", namespace=operator.namespace, selector=operator.pod_selector())
        if len(pods) != 1 or pods[0]["metadata"].get("deletionTimestamp"):
            return False  # the old one is still going
        args = [a for c in pods[0]["spec"]["containers"] for a in c.get("args", [])]
        ready = any(c["type"] == "Ready" and c["status"] == "True"
                    for c in pods[0].get("status", {}).get("conditions", []))  # fmt: skip
        return ready and ((flag in args) if url else not any("_MIRROR=" in a for a in args))

    wait_for("the operator to run with the new mirror settings", rolled_out, timeout=180)


@pytest.fixture(scope="module")
def mirror(kubectl: Kubectl, operator: Operator, figures: Figures) -> Iterator[Mirror]:
    """The mirror pod and Service, and the chart upgraded to send every job's downloads there."""
    if not is_local_cluster(kubectl):
        pytest.skip("the examples' data goes onto hostPath volumes: the local cluster only")
    if operator.mode != "chart":
        pytest.skip("the mirror settings reach the pods through the chart's values")
    t0 = time.monotonic()
    namespace = f"kubetrain-e2e-mirror-{uuid.uuid4().hex[:6]}"
    host_dir = Path("/tmp") / namespace
    jobs = [training_job(documents(p)) for p in EXAMPLE_FILES]
    write_mirror_root(host_dir, jobs)
    kubectl.create_namespace(namespace)
    try:
        kubectl.create(_mirror_pod(namespace, host_dir))
        kubectl.create({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": MIRROR_SERVICE, "namespace": namespace},
            "spec": {"selector": {"app": "mirror"},
                     "ports": [{"port": 80, "targetPort": MIRROR_PORT}]},
        })  # fmt: skip
        kubectl.run(
            "wait", "-n", namespace, "--for=condition=Ready", "pod/mirror", "--timeout=120s"
        )
        url = f"http://{MIRROR_SERVICE}.{namespace}.svc.cluster.local"
        _set_mirrors(kubectl, operator, url)
        figures.record("examples.mirror_setup_seconds", round(time.monotonic() - t0, 1))
        yield Mirror(namespace, url, host_dir)
    finally:
        with contextlib.suppress(AssertionError, KubectlError):
            _set_mirrors(kubectl, operator, None)
        kubectl.run("delete", "namespace", namespace, "--wait=false", check=False)
        shutil.rmtree(host_dir, ignore_errors=True)


# --------------------------------------------------------------------------- one example


@dataclass
class Example:
    """One example applied into its namespace, with hostPath volumes for its claims."""

    path: Path
    namespace: str
    docs: list[Obj]  # as applied (sized)
    volumes: dict[str, Path] = field(default_factory=dict)  # claim -> host dir
    pod_ips: set[str] = field(default_factory=set)

    @property
    def job(self) -> Obj:
        return training_job(self.docs)

    @property
    def name(self) -> str:
        return str(self.job["metadata"]["name"])


def _bind_claim(kubectl: Kubectl, claim: Obj, namespace: str, host_dir: Path) -> None:
    """A hostPath PersistentVolume for `claim` (its size and access modes), bound to it alone."""
    name = claim["metadata"]["name"]
    size = claim["spec"]["resources"]["requests"]["storage"]
    kubectl.create({
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": host_dir.name},
        "spec": {"capacity": {"storage": size}, "accessModes": claim["spec"]["accessModes"],
                 "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
                 "hostPath": {"path": str(host_dir), "type": "Directory"},
                 "claimRef": {"namespace": namespace, "name": name}},
    })  # fmt: skip


@pytest.fixture
def example(request: pytest.FixtureRequest, kubectl: Kubectl, mirror: Mirror) -> Iterator[Example]:
    path: Path = request.param
    namespace = f"e2e-{path.stem}-{uuid.uuid4().hex[:4]}"
    docs = [size_overlay(d) for d in documents(path)]
    ex = Example(path, namespace, docs)
    kubectl.create_namespace(namespace)
    try:
        dataset = ex.job["spec"]["dataset"]
        for claim in (d for d in docs if d.get("kind") == "PersistentVolumeClaim"):
            host_dir = Path("/tmp") / f"{namespace}-{claim['metadata']['name']}"
            host_dir.mkdir()
            host_dir.chmod(0o1777)  # hostPath ignores fsGroup: the pods' user must write here
            if claim["metadata"]["name"] == dataset.get("claimName") and (
                dataset["source"] in IMAGE_SOURCES
            ):
                write_image_folder(host_dir)  # data already on the volume
            _bind_claim(kubectl, claim, namespace, host_dir)
            ex.volumes[claim["metadata"]["name"]] = host_dir
        yield ex
    finally:
        kubectl.run("delete", "namespace", namespace, "--wait=false", check=False)
        for host_dir in ex.volumes.values():
            kubectl.delete("pv", host_dir.name)
            shutil.rmtree(host_dir, ignore_errors=True)


def _run(kubectl: Kubectl, ex: Example) -> tuple[Obj, float]:
    """Apply the example's documents; the job's status once Succeeded, and the seconds it took."""
    name, namespace = ex.name, ex.namespace
    t0 = time.monotonic()
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all(ex.docs))
    if ex.job["spec"].get("runPolicy", {}).get("suspend"):
        # Created suspended: no pods until unsuspended, which is what a queue's admission does.
        wait_for(f"job {name} to be Suspended",
                 lambda: job_status(kubectl, name, namespace).get("phase") == "Suspended",
                 timeout=60)  # fmt: skip
        assert not kubectl.items("pods", namespace=namespace), "a suspended job has no pods"
        kubectl.run("patch", "tj", name, "-n", namespace, "--type=merge",
                    "-p", '{"spec":{"runPolicy":{"suspend":false}}}')  # fmt: skip

    def finished() -> Obj | None:
        for pod in kubectl.items("pods", namespace=namespace):
            if ip := pod.get("status", {}).get("podIP"):
                ex.pod_ips.add(ip)
        status = job_status(kubectl, name, namespace)
        if status.get("phase") == "Failed":
            raise AssertionError(f"job {name} Failed: {json.dumps(status, indent=1)}")
        return status if status.get("phase") == "Succeeded" else None

    try:
        status = wait_for(f"job {name} to succeed", finished, timeout=JOB_TIMEOUT, every=2)
    except AssertionError:
        dump_job(kubectl, name, namespace)
        raise
    return status, time.monotonic() - t0


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=[p.stem for p in EXAMPLE_FILES],
                         indirect=True)  # fmt: skip
def test_example_runs_as_written(
    example: Example, kubectl: Kubectl, mirror: Mirror, figures: Figures
) -> None:
    status, seconds = _run(kubectl, example)
    figures.record(f"examples.{example.path.stem}.seconds_to_succeeded", round(seconds, 1))
    spec = example.job["spec"]

    # Its metric in status, for the last epoch.
    metric = spec["training"].get("metric", "accuracy")
    assert isinstance(status.get("metrics", {}).get(f"val_{metric}"), float), status
    assert str(status.get("metricSummary", "")).startswith(f"{metric}="), status
    epochs = spec["training"]["epochs"]
    assert status.get("progress") == f"{epochs}/{epochs}", status
    assert status.get("checkpoint"), f"no checkpoint in status: {status}"
    figures.record(f"examples.{example.path.stem}.metric", status.get("metricSummary"))

    # What came from the mirror: each file its pods had to fetch, fetched by them, and a dataset
    # fetched into its claim (once for the job) as the mirror serves it.
    served = [r for r in mirror.log(kubectl) if r[0] in example.pod_ips and r[3] == "200"]
    for pattern in expected_fetches(example.job):
        assert any(r[1] == "GET" and fnmatch.fnmatch(r[2], pattern + "*") for r in served), (
            f"no pod of {example.name} fetched {pattern} from the mirror; it served them: {served}"
        )
    data_claim = spec["dataset"].get("claimName")
    for fetched in (p for p in expected_fetches(example.job) if p.startswith("/datasets/")):
        assert data_claim, f"{example.name} downloads {fetched} but keeps it on no claim"
        name = fetched.rsplit("/", 1)[1]
        on_claim = example.volumes[data_claim] / name
        assert on_claim.is_file(), f"{name} is not in the claim {data_claim}"
        assert _sha256(on_claim) == _sha256(mirror.host_dir / "datasets" / name)
        gets = [r for r in served if r[1] == "GET" and r[2] == fetched]
        assert len(gets) == 1, f"{fetched} was fetched {len(gets)} times for one job: {gets}"
    print(f"[e2e] {example.path.name}: Succeeded in {seconds:.0f} s, {status['metricSummary']}",
          file=sys.stderr)  # fmt: skip


def test_the_mirror_speaks_enough_hub_for_from_pretrained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hub_mirror.py against this venv's transformers, in-process: the model and tokenizer of a
    hub id load through HF_ENDPOINT from the packaged MiniLM's files (the pods' path)."""
    import threading

    from e2e.tests.hub_mirror import make_server
    from e2e.tests.mirror_content import write_hub_repo

    write_hub_repo(tmp_path / "hub", "bert-base-uncased")
    server = make_server(tmp_path, host="127.0.0.1", port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        code = (
            "from transformers import AutoModelForSequenceClassification as M, AutoTokenizer as T\n"
            "m = M.from_pretrained('bert-base-uncased', num_labels=2)\n"
            "t = T.from_pretrained('bert-base-uncased')\n"
            "print(type(m).__name__, t('a good film')['input_ids'])\n"
        )
        # A child process: huggingface_hub reads HF_ENDPOINT once, when it is imported.
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=300, check=False, env=dict(os.environ))  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[0] == "BertForSequenceClassification", proc.stdout


# The trained model as an artifact: the compressed example leaves its exported files on its
# claim, and its report in status and beside the files (its own test: it runs it once).


@pytest.mark.parametrize("example", [COMPRESSED], ids=[COMPRESSED.stem], indirect=True)
def test_a_compressed_job_leaves_its_model_on_the_claim_and_its_report_in_status(
    example: Example, kubectl: Kubectl, figures: Figures
) -> None:
    status, _ = _run(kubectl, example)
    spec = example.job["spec"]
    claim = example.volumes[spec["checkpoint"]["claimName"]]
    # ./runs is /kubetrain/runs in the pods; the claim is mounted there.
    exported = claim / example.name / "model"
    assert status.get("exportedModel") == f"/kubetrain/runs/{example.name}/model", status
    report = json.loads((exported / "report.json").read_text())
    names = [v["name"] for v in report["variants"]]
    assert names == ["original", "dynamic-int8", "static-int8", "pruned-50"], report
    for variant in report["variants"]:
        assert (exported / variant["name"] / "model.pt").stat().st_size == variant["size_bytes"]
        assert (exported / variant["name"] / "model.torchscript.pt").is_file()
    original = report["variants"][0]
    for variant in report["variants"][1:3]:  # int8: smaller by the issue's 3x
        assert original["size_bytes"] >= 3 * variant["size_bytes"], report
    summary = status.get("modelReport", "")
    for name in names:
        assert name in summary, status
    assert "50% zero" in summary, summary
    figures.record("examples.compressed-mlp.model_report", summary)
    # Each variant measured, which the operator serves as kubetrain_model_* until deletion: the
    # API server kept the field (a schema without it would prune it silently).
    variants = [(v["name"], v["sizeBytes"], v["nonzero"]) for v in status.get("modelVariants", [])]
    assert variants == [(v["name"], v["size_bytes"], v["nonzero"]) for v in report["variants"]]
