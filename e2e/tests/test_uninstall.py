"""`helm uninstall` takes everything the chart made (runs last: the operator goes with it)."""

from __future__ import annotations

import pytest

from e2e.tests.conftest import RELEASE, Operator, helm
from e2e.tests.kube import Kubectl, Obj, wait_for


def _still_there(kubectl: Kubectl, obj: Obj) -> bool:
    meta = obj["metadata"]
    namespace = meta.get("namespace")
    kind = f"{obj['kind'].lower()}.{obj['apiVersion'].split('/')[0]}" if "/" in obj[
        "apiVersion"
    ] else obj["kind"].lower()  # fmt: skip
    return kubectl.get(kind, meta["name"], namespace=namespace) is not None


def test_chart_uninstall_leaves_nothing_behind(kubectl: Kubectl, operator: Operator) -> None:
    if operator.mode != "chart":
        pytest.skip(f"the operator was not installed by the chart here ({operator.mode})")
    assert operator.namespace is not None
    assert operator.manifest, "helm get manifest returned nothing"
    # As the chart's NOTES say: TrainingJobs first, while the operator can still finish them.
    kubectl.run("delete", "trainingjobs", "--all", "--all-namespaces", "--timeout=180s")
    helm(kubectl, "uninstall", RELEASE, "--namespace", operator.namespace, "--wait")
    operator.installed = False
    for obj in operator.manifest:
        obj.setdefault("metadata", {}).setdefault("namespace", None)
        if obj["kind"] not in _CLUSTER_SCOPED and not obj["metadata"]["namespace"]:
            obj["metadata"]["namespace"] = operator.namespace

    def leftovers() -> list[str]:
        return [f"{o['kind']}/{o['metadata']['name']}" for o in operator.manifest
                if _still_there(kubectl, o)]  # fmt: skip

    wait_for("the release's objects to go", lambda: not leftovers() or None, timeout=120)
    selector = f"app.kubernetes.io/instance={RELEASE}"
    kinds = "all,configmaps,serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings"

    def labelled() -> list[str]:
        found = kubectl.items(kinds, selector=selector) + kubectl.items(
            kinds, namespace=operator.namespace, selector=selector
        )
        return [f"{o['kind']}/{o['metadata']['name']}" for o in found]

    # The operator's pod takes its termination grace period to go.
    wait_for("the release's pods to go", lambda: not labelled() or None, timeout=120)
    kubectl.run("delete", "namespace", operator.namespace, "--wait=false")


_CLUSTER_SCOPED = {
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "ClusterKopfPeering",
    "Namespace",
    "PriorityClass",
}
