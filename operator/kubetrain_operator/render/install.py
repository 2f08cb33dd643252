"""Cluster-level manifests the operator needs: its RBAC rules and kopf's peering resources.

Pure data, for the Helm chart and for tests; `README.md` lists the same rules for humans.
"""

from __future__ import annotations

from kubetrain.api import GROUP, PLURAL
from kubetrain_operator.kubeobj import Obj
from kubetrain_operator.render.gang import GANG_APIS, POD_GROUP_PLURAL

PEERING_GROUP = "kopf.dev"


def operator_rules() -> list[Obj]:
    """Every API call the operator makes, and why (a ClusterRole, or a Role per namespace)."""
    return [
        # Watch jobs, patch them (kopf's annotations), and delete a finished job after its TTL.
        {"apiGroups": [GROUP], "resources": [PLURAL],
         "verbs": ["get", "list", "watch", "patch", "delete"]},
        {"apiGroups": [GROUP], "resources": [f"{PLURAL}/status"], "verbs": ["get", "patch"]},
        # Owner references with blockOwnerDeletion, where OwnerReferencesPermissionEnforcement
        # is on, need update on the owner's finalizers.
        {"apiGroups": [GROUP], "resources": [f"{PLURAL}/finalizers"], "verbs": ["update"]},
        {"apiGroups": [""], "resources": ["pods"],
         "verbs": ["get", "list", "watch", "create", "delete"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "patch"]},
        {"apiGroups": [""], "resources": ["services", "serviceaccounts"],
         "verbs": ["get", "create"]},
        # Each job's Ray token: created, never read (no get, no list: no Secret's value).
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
        # Each job's NetworkPolicy fencing its Ray ports.
        {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"],
         "verbs": ["get", "create"]},
        # The per-job driver Role grants a subset of the operator's own TrainingJob rights, so
        # creating it needs no `escalate` or `bind`.
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"],
         "verbs": ["get", "create"]},
        # Each gang-scheduled job's PodGroup (spec.scheduling.gang): Volcano's, coscheduling's.
        # Deleted with its job by garbage collection, like the other children.
        {"apiGroups": [api.group for api in GANG_APIS.values()],
         "resources": [POD_GROUP_PLURAL], "verbs": ["get", "create"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
        # kopf: peering between replicas, and discovery of the resources it watches.
        {"apiGroups": [PEERING_GROUP], "resources": ["kopfpeerings", "clusterkopfpeerings"],
         "verbs": ["get", "list", "watch", "patch"]},
        {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
         "verbs": ["list", "watch"]},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
    ]  # fmt: skip


def _peering_crd(kind: str, plural: str, scope: str) -> Obj:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{PEERING_GROUP}"},
        "spec": {
            "group": PEERING_GROUP,
            "scope": scope,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    # kopf writes one status entry per replica, keyed by its identity.
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


def peering_crds() -> list[Obj]:
    """kopf's peering resources: replicas find each other there; the highest priority acts."""
    return [
        _peering_crd("ClusterKopfPeering", "clusterkopfpeerings", "Cluster"),
        _peering_crd("KopfPeering", "kopfpeerings", "Namespaced"),
    ]


def peering_object(name: str, *, namespace: str | None = None) -> Obj:
    """The peering object replicas share: cluster-wide, or one per watched namespace."""
    meta: Obj = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    kind = "KopfPeering" if namespace is not None else "ClusterKopfPeering"
    return {"apiVersion": f"{PEERING_GROUP}/v1", "kind": kind, "metadata": meta}
