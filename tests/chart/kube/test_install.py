"""`helm install` and `helm uninstall` against a real API server (Kubernetes 1.20, no nodes).

- Everything the chart creates is there after the install, and gone after the uninstall, except
  the CRDs: Helm never deletes what a chart's crds/ directory installed (NOTES.txt says so and
  gives the command).
- The operator, run with the chart's ServiceAccount and nothing else, can run a job: the chart's
  RBAC is enough, cluster-wide and namespaced.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubetrain.api import GROUP, PLURAL, VERSION
from kubetrain_operator.kube import ApiError, Kube
from tests.chart.conftest import CHART, run_helm, set_args
from tests.chart.test_render import MONITORING
from tests.kube_cluster import Cluster, make_namespace, service_account_kubeconfig, wait_for
from tests.operator.kube.conftest import Jobs, Operator

pytestmark = pytest.mark.kube

CHART_CRDS = ("trainingjobs.kubetrain.io", "kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev")


def _monitoring_crd(kind: str, plural: str) -> dict[str, object]:
    """A stand-in for prometheus-operator's CRD: the API accepts any spec."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {
                    "type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }],
        },
    }  # fmt: skip


@pytest.fixture(scope="module")
def monitoring_crds(cluster: Cluster, kube: Kube) -> Iterator[None]:
    kinds = [("ServiceMonitor", "servicemonitors"), ("PodMonitor", "podmonitors"),
             ("PrometheusRule", "prometheusrules")]  # fmt: skip
    crds = {"apiVersion": "v1", "kind": "List", "items": [_monitoring_crd(*k) for k in kinds]}
    applied = cluster.run_kubectl("apply", "-f", "-", stdin=json.dumps(crds))
    assert applied.returncode == 0, applied.stderr
    for _, plural in kinds:
        wait_for(
            f"the {plural} API",
            lambda p=plural: kube._call("GET", f"/apis/monitoring.coreos.com/v1/{p}"),  # type: ignore[misc]
        )
    yield
    for _, plural in kinds:
        cluster.run_kubectl("delete", "crd", f"{plural}.monitoring.coreos.com", "--wait=false")


class Release:
    """One release of the chart, through helm and kubectl."""

    def __init__(self, helm: str, cluster: Cluster, namespace: str) -> None:
        self.helm, self.cluster, self.ns = helm, cluster, namespace
        self.name = f"kt-{uuid.uuid4().hex[:6]}"
        self.account = f"{self.name}-kubetrain"

    def _helm(self, *args: str) -> str:
        done = run_helm(self.helm, "--kubeconfig", self.cluster.kubeconfig, "-n", self.ns, *args)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def install(self, values: dict[str, str]) -> str:
        # Client-side apply: this 1.20 API server predates the CRD's x-kubernetes-validations,
        # which Helm's server-side apply refuses to send it (1.25+ takes them either way).
        return self._helm(
            "install", self.name, str(CHART), "--server-side=false", *set_args(values)
        )

    def uninstall(self) -> None:
        self._helm("uninstall", self.name, "--wait", "--timeout", "60s")

    def objects(self) -> list[str]:
        """Every object, of every listable kind, that carries the release's label."""
        kinds = self.cluster.run_kubectl("api-resources", "--verbs=list", "-o", "name")
        assert kinds.returncode == 0, kinds.stderr
        listable = [k for k in kinds.stdout.split() if k not in ("events", "events.events.k8s.io")]
        found = self.cluster.run_kubectl(
            "get", ",".join(listable), "-A", "-o", "name",
            "-l", f"app.kubernetes.io/instance={self.name}",
        )  # fmt: skip
        assert found.returncode == 0, found.stderr
        return sorted(found.stdout.split())

    def can_i(self, *args: str) -> bool:
        user = f"system:serviceaccount:{self.ns}:{self.account}"
        done = self.cluster.run_kubectl("auth", "can-i", *args, "--as", user)
        return done.stdout.strip() == "yes"


def _delete_namespace(kube: Kube, name: str) -> None:
    with contextlib.suppress(ApiError):
        kube._call("DELETE", f"/api/v1/namespaces/{name}")


def _crd_exists(kube: Kube, name: str) -> bool:
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    return bool(kube._call("GET", f"{crds}/{name}"))


def test_uninstall_leaves_nothing_but_the_crds(
    helm: str, cluster: Cluster, kube: Kube, monitoring_crds: None
) -> None:
    ns = make_namespace(kube, "chart")
    release = Release(helm, cluster, ns)
    try:
        notes = release.install(MONITORING)
        assert "kubectl get tj -w" in notes
        kinds = {name.split("/")[0] for name in release.objects()}
        assert kinds >= {
            "deployment.apps", "replicaset.apps", "pod", "service", "serviceaccount",
            "configmap", "clusterrole.rbac.authorization.k8s.io",
            "clusterrolebinding.rbac.authorization.k8s.io", "clusterkopfpeering.kopf.dev",
            "servicemonitor.monitoring.coreos.com", "podmonitor.monitoring.coreos.com",
            "prometheusrule.monitoring.coreos.com",
        }, kinds  # fmt: skip
        # The API server admitted the operator pod as the chart wrote it (no nodes: Pending).
        (pod,) = kube.list_pods(namespace=ns, selector=f"app.kubernetes.io/instance={release.name}")
        (container,) = pod["spec"]["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert all(_crd_exists(kube, crd) for crd in CHART_CRDS)

        release.uninstall()
        wait_for("the release's objects to be gone", lambda: not release.objects(), timeout=60)
        secrets = kube._call("GET", f"/api/v1/namespaces/{ns}/secrets") or {}
        left = [s["metadata"]["name"] for s in secrets.get("items", [])]
        # Only the namespace's own default token: no Helm release record, no operator token.
        assert [s for s in left if not s.startswith("default-token-")] == []
        # What Helm promises for crds/: they stay, and with them every TrainingJob.
        assert all(_crd_exists(kube, crd) for crd in CHART_CRDS)
    finally:
        _delete_namespace(kube, ns)


@pytest.mark.parametrize("mode", ["cluster-wide", "namespaced"])
def test_the_operator_runs_a_job_with_only_the_charts_rbac(
    helm: str, cluster: Cluster, kube: Kube, tmp_path: Path, mode: str
) -> None:
    ns = make_namespace(kube, "chart")
    watched = make_namespace(kube, "chart-jobs")
    other = make_namespace(kube, "chart-other")
    release = Release(helm, cluster, ns)
    operator: Operator | None = None
    try:
        values = {"watchNamespaces": json.dumps([watched])} if mode == "namespaced" else {}
        release.install(values)
        assert release.can_i("create", "pods", "-n", watched)
        assert not release.can_i("get", "secrets", "-n", watched)
        assert not release.can_i("delete", "services", "-n", watched)
        if mode == "namespaced":
            assert not release.can_i("create", "pods", "-n", other)
            assert not release.can_i("list", "trainingjobs.kubetrain.io", "-A")
            assert not release.can_i("list", "namespaces")
            assert not release.can_i("list", "customresourcedefinitions")
        else:
            assert release.can_i("create", "pods", "-n", other)

        kubeconfig = service_account_kubeconfig(kube, ns, release.account, tmp_path / "sa.yaml")
        as_account = Cluster(str(kubeconfig), cluster.kubectl)
        # Namespaced: peer through the KopfPeering the chart made. Cluster-wide, the operator
        # is still confined to one namespace here, so that it leaves other tests' jobs alone.
        extra = ["--priority", "1"] if mode == "namespaced" else []
        operator = Operator(as_account, [watched], tmp_path / "operator.log", extra=extra).start()
        jobs = Jobs(kube, watched)
        jobs.apply("rbac", distributed={"workers": 1})
        jobs.wait_pods("rbac", 2)
        jobs.wait_phase("rbac", "Starting")
        rbac_api = "/apis/rbac.authorization.k8s.io/v1"
        roles = {r["metadata"]["name"] for r in jobs.list("roles", rbac_api)}
        assert "rbac-driver" in roles  # the per-job Role: the operator may grant what it holds
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{watched}/{PLURAL}/rbac"
        kube._call("DELETE", path)
        wait_for("the job to go", lambda: jobs.get("rbac") is None)
        log = operator.log()
        assert "Traceback" not in log, log
        # A word of its own: a namespace's random suffix may hold the digits 403.
        assert not re.search(r"\b403\b", log) and "Forbidden" not in log, log
    finally:
        if operator is not None:
            operator.stop()
        release.uninstall()
        for name in (ns, watched, other):
            _delete_namespace(kube, name)
