"""Operating the operator: bad input at apply, spec edits, restarts, the driver's RBAC, peering."""

from __future__ import annotations

import json
import ssl
import tempfile
from pathlib import Path

import pytest
import yaml

from kubetrain.api import GROUP, PLURAL, VERSION, parse_job
from kubetrain.api.status import ProgressStatus
from kubetrain.pods.status_sink import StatusWriter
from kubetrain_operator.kube import Kube
from tests.conftest import EXAMPLES, example_dict, job_dict
from tests.kube_cluster import service_account_token
from tests.operator.kube.conftest import (
    Cluster,
    Jobs,
    Kubelet,
    Operator,
    make_namespace,
    wait_for,
)

pytestmark = pytest.mark.kube


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"distributed": {"workers": 0}}, "spec.distributed.workers"),
        ({"model": {"name": "resnet"}}, "spec.model.name"),
        ({"runPolicy": {"cleanPodPolicy": "Sometimes"}}, "spec.runPolicy.cleanPodPolicy"),
        ({"training": {"optimizer": {"lr": -1}}}, "spec.training.optimizer.lr"),
    ],
)
def test_invalid_jobs_are_refused_at_apply_naming_the_field(
    cluster: Cluster,
    ns: str,
    patch: dict,
    field: str,  # type: ignore[type-arg]
) -> None:
    data = job_dict(**patch)
    data["metadata"] = {"name": "invalid", "namespace": ns}
    applied = cluster.run_kubectl("apply", "-f", "-", stdin=yaml.safe_dump(data))
    assert applied.returncode != 0
    assert field in applied.stderr, applied.stderr


def test_editing_the_model_of_a_running_job_is_refused_without_damage(
    jobs: Jobs, kubelet: Kubelet
) -> None:
    jobs.apply("edit", distributed={"workers": 1})
    pods = jobs.wait_pods("edit", 2)
    kubelet.run_all(pods)
    jobs.wait_phase("edit", "Running")
    uids = {p["metadata"]["uid"] for p in pods.values()}
    jobs.patch_spec("edit", {"model": {"name": "cnn"}, "distributed": {"workers": 3}})
    refused = wait_for(
        "SpecChangeRefused",
        lambda: (c := jobs.condition("edit", "SpecChangeRefused")) and c["status"] == "True" and c,
    )
    assert "spec.model.name" in refused["message"]
    assert "spec.distributed.workers" in refused["message"]
    status = jobs.status("edit")
    assert status["phase"] == "Running" and status["observedGeneration"] == 2
    assert {p["metadata"]["uid"] for p in jobs.pods("edit").values()} == uids
    assert "SpecChangeRefused" in jobs.event_reasons("edit")


def test_a_restarted_operator_duplicates_nothing(
    cluster: Cluster, kube: Kube, crd: None, tmp_path: Path
) -> None:
    ns = make_namespace(kube, "restart")
    first = Operator(cluster, [ns], tmp_path / "first.log").start()
    try:
        jobs, kubelet = Jobs(kube, ns), Kubelet(kube, ns)
        jobs.apply("r", distributed={"workers": 2})
        pods = jobs.wait_pods("r", 3)
        kubelet.run("r-worker-0")
        wait_for("the first operator to see worker 0", lambda: "r-worker-0" not in (
            jobs.condition("r", "PodsReady") or {}).get("message", "r-worker-0"))  # fmt: skip
        first.stop()
        seen = {e["metadata"]["name"] for e in jobs.events("r")}
        before = {
            "pods": {n: p["metadata"]["uid"] for n, p in pods.items()},
            "objects": sorted(
                o["metadata"]["uid"]
                for plural in ("services", "configmaps", "serviceaccounts")
                for o in jobs.list(plural)
                if o["metadata"]["name"].startswith("r-")
            ),
        }
        # While no operator runs, the kubelet moves on: the new one must catch up.
        kubelet.run("r-worker-1")
        kubelet.run("r-head", ready=True)
        second = Operator(cluster, [ns], tmp_path / "second.log").start()
        try:
            jobs.wait_phase("r", "Running")
            after = {
                "pods": {n: p["metadata"]["uid"] for n, p in jobs.pods("r").items()},
                "objects": sorted(
                    o["metadata"]["uid"]
                    for plural in ("services", "configmaps", "serviceaccounts")
                    for o in jobs.list(plural)
                    if o["metadata"]["name"].startswith("r-")
                ),
            }
            assert after == before
            status = jobs.status("r")
            assert status["restarts"] == 0 and status["workerRestarts"] == 0
            new = [e["reason"] for e in jobs.events("r") if e["metadata"]["name"] not in seen]
            assert "ObjectsCreated" not in new and "TrainingStarted" in new
        finally:
            second.stop()
    finally:
        first.stop()
        kube._call("DELETE", f"/api/v1/namespaces/{ns}")


def test_the_driver_may_patch_its_own_status_and_nothing_else(
    cluster: Cluster, kube: Kube, jobs: Jobs, ns: str
) -> None:
    jobs.apply("mine", distributed={"workers": 1})
    jobs.apply("other", distributed={"workers": 1})
    jobs.wait_pods("mine", 2)
    jobs.wait_phase("other", "Starting")
    token = service_account_token(kube, ns, "mine-driver")
    cfg = kube.api.configuration
    context = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
    with tempfile.NamedTemporaryFile("w", suffix=".token") as f:
        f.write(token)
        f.flush()

        def writer(name: str) -> StatusWriter:
            url = f"{cfg.host}/apis/{GROUP}/{VERSION}/namespaces/{ns}/{PLURAL}/{name}/status"
            return StatusWriter(url, Path(f.name), context)

        assert writer("mine").patch(ProgressStatus(epoch=2, total_epochs=10, progress="2/10"))
        assert not writer("other").patch(ProgressStatus(epoch=99))
    status = jobs.status("mine")
    assert (status["epoch"], status["progress"]) == (2, "2/10")
    assert "epoch" not in jobs.status("other")
    # The printer columns show the driver's progress.
    table = cluster.run_kubectl("get", "tj", "mine", "-n", ns)
    assert "2/10" in table.stdout, table.stdout


def test_a_job_carries_no_finalizer_and_deletes_while_no_operator_runs(
    cluster: Cluster, kube: Kube, crd: None, tmp_path: Path
) -> None:
    # A finalizer would leave `kubectl delete tj` hanging for as long as no operator runs.
    ns = make_namespace(kube, "nofin")
    own = Operator(cluster, [ns], tmp_path / "operator.log")
    jobs = Jobs(kube, ns)
    try:
        own.start()
        jobs.apply("f", distributed={"workers": 1})
        jobs.wait_pods("f", 2)
        jobs.wait_phase("f", "Starting")
        assert not (jobs.get("f") or {})["metadata"].get("finalizers")
        own.stop()
        kube._call("DELETE", jobs.path("f"))
        wait_for("the job to be deleted with no operator", lambda: jobs.get("f") is None,
                 timeout=5)  # fmt: skip
        wait_for("its pods to be collected", lambda: jobs.pods("f") == {}, timeout=60)
    finally:
        own.stop()
        kube._call("DELETE", f"/api/v1/namespaces/{ns}")


def _peering_crd() -> dict:  # type: ignore[type-arg]
    from kubetrain_operator.render.install import peering_crds

    (namespaced,) = [c for c in peering_crds() if c["spec"]["scope"] == "Namespaced"]
    return namespaced


def test_peering_lets_only_one_replica_act(
    cluster: Cluster, kube: Kube, crd: None, tmp_path: Path
) -> None:
    applied = cluster.run_kubectl("apply", "-f", "-", stdin=json.dumps(_peering_crd()))
    assert applied.returncode == 0, applied.stderr
    ns = make_namespace(kube, "peer")
    from kubetrain_operator.render.install import peering_object

    wait_for("the KopfPeering API", lambda: kube._call("GET", "/apis/kopf.dev/v1/kopfpeerings"))
    kube._call(
        "POST", f"/apis/kopf.dev/v1/namespaces/{ns}/kopfpeerings",
        body=peering_object("kubetrain", namespace=ns),
    )  # fmt: skip
    low = Operator(cluster, [ns], tmp_path / "low.log", extra=["--priority", "1"])
    high = Operator(cluster, [ns], tmp_path / "high.log", extra=["--priority", "2"])
    try:
        low.start()
        high.start()
        wait_for("the low-priority replica to pause", lambda: "Pausing operations" in low.log())
        jobs = Jobs(kube, ns)
        jobs.apply("p", distributed={"workers": 1})
        jobs.wait_pods("p", 2)
        jobs.wait_phase("p", "Starting")
        created = f"{ns}/p: Create"
        wait_for("the leading replica to log the creation", lambda: created in high.log())
        assert created not in low.log()
        high.stop()  # leaves the peering: the other replica takes over
        wait_for("the other replica to resume", lambda: "Resuming operations" in low.log())
        Kubelet(kube, ns).run_all(jobs.pods("p"))
        jobs.wait_phase("p", "Running")
        assert "Traceback" not in low.log() + high.log()
    finally:
        high.stop()
        low.stop()
        kube._call("DELETE", f"/api/v1/namespaces/{ns}")


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_the_api_servers_defaults_change_nothing_an_example_runs(
    cluster: Cluster, kube: Kube, ns: str, example: str
) -> None:
    """What the cluster stores for an applied example trains exactly as `kubetrain run` would:
    the CRD's defaults switch nothing on (an optional section absent stays absent)."""
    data = example_dict(example)
    data["metadata"] = {"name": "defaults", "namespace": ns}
    data["spec"].setdefault("runPolicy", {})["suspend"] = True  # no pods: only the spec matters
    applied = cluster.run_kubectl("apply", "-f", "-", stdin=yaml.safe_dump(data))
    assert applied.returncode == 0, applied.stderr
    stored = kube._call("GET", f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{PLURAL}/defaults")
    assert stored is not None
    assert parse_job(stored).spec == parse_job(data).spec
