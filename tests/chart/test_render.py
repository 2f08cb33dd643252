"""`helm lint` and `helm template`: what the rendered objects promise a user, parsed as objects."""

from __future__ import annotations

import argparse
import json
import re

import pytest

from kubetrain_operator.__main__ import _parser
from kubetrain_operator.config import PodSettings
from kubetrain_operator.render import worker_pod
from kubetrain_operator.render.install import operator_rules
from tests.chart.conftest import (
    CHART,
    NAMESPACE,
    RELEASE,
    Obj,
    by_kind,
    one,
    render,
    run_helm,
    set_args,
)
from tests.operator.helpers import api_job

NAMESPACED = {"watchNamespaces": '["team-a", "team-b"]'}
MONITORING = {
    "metrics.serviceMonitor.enabled": "true",
    "trainingPods.podMonitor.enabled": "true",
    "prometheusRule.enabled": "true",
    "grafanaDashboard.enabled": "true",
}
# Where each resource the operator is granted lives: a Role can only grant the namespaced ones.
# A resource missing here means operator_rules() grew: decide its scope in "kubetrain.rules"
# (charts/kubetrain/templates/_helpers.tpl) and here.
SCOPE = {
    "trainingjobs": "Namespaced",
    "trainingjobs/status": "Namespaced",
    "trainingjobs/finalizers": "Namespaced",
    "pods": "Namespaced",
    "configmaps": "Namespaced",
    "services": "Namespaced",
    "serviceaccounts": "Namespaced",
    "secrets": "Namespaced",
    "networkpolicies": "Namespaced",
    "roles": "Namespaced",
    "rolebindings": "Namespaced",
    "events": "Namespaced",
    "podgroups": "Namespaced",
    "kopfpeerings": "Namespaced",
    "clusterkopfpeerings": "Cluster",
    "customresourcedefinitions": "Cluster",
    "namespaces": "Cluster",
}
CLUSTER_KINDS = {"ClusterRole", "ClusterRoleBinding", "ClusterKopfPeering"}


def container(objects: list[Obj]) -> Obj:
    (c,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(c)


def operator_flags(objects: list[Obj]) -> argparse.Namespace:
    """The Deployment's args as the operator's own parser reads them (unknown flags fail)."""
    return _parser().parse_args(container(objects)["args"])


@pytest.mark.parametrize(
    "values", [{}, NAMESPACED, MONITORING, {**NAMESPACED, **MONITORING}], ids=str
)
def test_helm_lint_strict_passes(helm: str, values: dict[str, str]) -> None:
    done = run_helm(helm, "lint", "--strict", str(CHART), *set_args(values))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout


def test_every_object_carries_the_release_labels(helm: str) -> None:
    """`kubectl get ... -l app.kubernetes.io/instance=<release>` finds all of a release."""
    for values in ({}, {**NAMESPACED, **MONITORING}):
        for obj in render(helm, values):
            labels = obj["metadata"]["labels"]
            assert labels["app.kubernetes.io/instance"] == RELEASE, obj["metadata"]
            assert labels["app.kubernetes.io/part-of"] == "kubetrain"


# --------------------------------------------------------------------------- cluster-wide mode


def test_cluster_wide_rbac_is_exactly_the_operators_rules(helm: str) -> None:
    objects = render(helm)
    role = one(objects, "ClusterRole")
    assert role["rules"] == operator_rules()
    binding = one(objects, "ClusterRoleBinding")
    account = one(objects, "ServiceAccount")["metadata"]["name"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
    ]
    spec = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == account
    assert not by_kind(objects, "Role") and not by_kind(objects, "RoleBinding")


def test_cluster_wide_operator_watches_all_namespaces_with_peering(helm: str) -> None:
    objects = render(helm)
    flags = operator_flags(objects)
    assert flags.namespace == []
    assert flags.standalone is False
    assert flags.peering == "kubetrain"
    peering = one(objects, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "kubetrain"
    assert one(objects, "Deployment")["spec"]["strategy"]["type"] == "RollingUpdate"


def test_the_operator_runs_non_root_on_a_read_only_filesystem(helm: str) -> None:
    objects = render(helm)
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    security = container(objects)["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"] for m in container(objects)["volumeMounts"]}
    assert mounts == {"/tmp"}


def test_probes_and_ports_are_the_ones_the_operator_serves(helm: str) -> None:
    objects = render(helm)
    c = container(objects)
    flags = operator_flags(objects)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"metrics": flags.metrics_port, "health": flags.health_port}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
    service = one(objects, "Service")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": flags.metrics_port, "targetPort": "metrics", "protocol": "TCP"}
    ]
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_operator_settings_reach_its_flags(helm: str) -> None:
    objects = render(
        helm,
        {
            "operator.imagePullGraceSeconds": "12",
            "operator.resyncSeconds": "7.5",
            "operator.reconcileThreads": "4",
            "operator.headPod": '{"cpu": "500m", "memory": "1Gi"}',
            "operator.logLevel": '"DEBUG"',
            "operator.extraArgs": '["--bind=0.0.0.0"]',
            "metrics.port": "9100",
        },
    )
    flags = vars(operator_flags(objects))
    assert (
        flags
        | {
            "image_pull_grace": 12.0,
            "resync": 7.5,
            "threads": 4,
            "head_cpu": "500m",
            "head_memory": "1Gi",
            "log_level": "DEBUG",
            "metrics_port": 9100,
            "bind": "0.0.0.0",
        }
        == flags
    )


def test_the_operator_image(helm: str) -> None:
    assert container(render(helm))["image"] == "kubetrain/operator:0.1.0"  # appVersion
    tagged = render(helm, {"operator.image": '{"repository": "r.example/op", "tag": "dev"}'})
    assert container(tagged)["image"] == "r.example/op:dev"
    digest = "sha256:" + "a" * 64
    pinned = render(helm, {"operator.image.digest": json.dumps(digest)})
    assert container(pinned)["image"] == f"kubetrain/operator@{digest}"


def test_standalone_means_one_replica_that_never_overlaps(helm: str) -> None:
    objects = render(helm, {"peering.enabled": "false"})
    assert operator_flags(objects).standalone is True
    assert one(objects, "Deployment")["spec"]["strategy"]["type"] == "Recreate"
    assert not by_kind(objects, "ClusterKopfPeering") and not by_kind(objects, "KopfPeering")
    done = run_helm(
        helm, "template", "x", str(CHART), "--set", "peering.enabled=false,operator.replicas=2"
    )
    assert done.returncode != 0
    assert "operator.replicas > 1 needs peering.enabled=true" in done.stderr


# --------------------------------------------------------------------------- namespaced mode


def test_namespaced_mode_grants_nothing_cluster_wide(helm: str) -> None:
    objects = render(helm, NAMESPACED)
    assert not [o for o in objects if o["kind"] in CLUSTER_KINDS]
    assert all(o["metadata"].get("namespace") for o in objects), "a cluster-scoped object"
    roles = {o["metadata"]["namespace"]: o for o in by_kind(objects, "Role")}
    bindings = {o["metadata"]["namespace"]: o for o in by_kind(objects, "RoleBinding")}
    assert set(roles) == set(bindings) == {"team-a", "team-b"}
    account = one(objects, "ServiceAccount")["metadata"]["name"]
    for ns, binding in bindings.items():
        assert binding["roleRef"]["name"] == roles[ns]["metadata"]["name"]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
        ]


def test_namespaced_roles_have_the_operators_namespaced_rules(helm: str) -> None:
    granted = {r for rule in operator_rules() for r in rule["resources"]}
    assert granted <= SCOPE.keys(), f"scope unknown for {granted - SCOPE.keys()}: see SCOPE"
    expected = []
    for rule in operator_rules():
        kept = [r for r in rule["resources"] if SCOPE[r] == "Namespaced"]
        if kept:
            expected.append({**rule, "resources": kept})
    for role in by_kind(render(helm, NAMESPACED), "Role"):
        assert role["rules"] == expected


def test_namespaced_operator_watches_only_its_namespaces(helm: str) -> None:
    objects = render(helm, NAMESPACED)
    assert operator_flags(objects).namespace == ["team-a", "team-b"]
    peerings = by_kind(objects, "KopfPeering")
    assert {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in peerings} == {
        ("team-a", "kubetrain"),
        ("team-b", "kubetrain"),
    }


# --------------------------------------------------------------------------- monitoring


def test_monitoring_objects_are_off_by_default(helm: str) -> None:
    kinds = {o["kind"] for o in render(helm)}
    assert kinds.isdisjoint({"ServiceMonitor", "PodMonitor", "PrometheusRule", "ConfigMap"})


def test_the_service_monitor_scrapes_the_metrics_service(helm: str) -> None:
    objects = render(helm, MONITORING)
    monitor = one(objects, "ServiceMonitor")
    service = one(objects, "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    # The model gauges' namespace and job are the TrainingJob's, not the operator's Service's.
    assert endpoint["honorLabels"] is True


def test_the_pod_monitor_selects_the_workers_the_operator_creates(helm: str) -> None:
    """Checked against render/objects.py's worker pod, not against a copy of its labels."""
    job = api_job(metrics={"enabled": True}, distributed={"ranksPerPod": 3})
    worker = worker_pod(job, 0, attempt=0, settings=PodSettings())
    monitor = one(render(helm, MONITORING), "PodMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= worker["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    (c,) = worker["spec"]["containers"]
    # Every rank's port is scraped (Prometheus anchors the regex), and no other port.
    (keep,) = [r for r in endpoint["relabelings"] if r.get("action") == "keep"]
    assert keep["sourceLabels"] == ["__meta_kubernetes_pod_container_port_name"]
    names = [p["name"] for p in c["ports"]]
    assert names == ["metrics", "metrics-1", "metrics-2"]
    assert all(re.fullmatch(keep["regex"], name) for name in names)
    assert not any(re.fullmatch(keep["regex"], name) for name in ("gcs", "dashboard", "health"))
    # Whose series they are comes from the pod's metadata: user code runs in the pod.
    assert endpoint["honorLabels"] is False
    relabeled = {
        r["targetLabel"]: r["sourceLabels"] for r in endpoint["relabelings"] if "targetLabel" in r
    }
    assert relabeled["job"] == ["__meta_kubernetes_pod_label_kubetrain_io_job_name"]
    assert relabeled["namespace"] == ["__meta_kubernetes_namespace"]
    assert relabeled["rank"] == ["__meta_kubernetes_pod_label_kubetrain_io_rank"]
    assert monitor["spec"]["namespaceSelector"] == {"any": True}
    namespaced = one(render(helm, {**NAMESPACED, **MONITORING}), "PodMonitor")
    assert namespaced["spec"]["namespaceSelector"] == {"matchNames": ["team-a", "team-b"]}


def test_the_dashboard_config_map_is_the_dashboard_file(helm: str) -> None:
    cm = one(render(helm, MONITORING), "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(cm["data"]["kubetrain.json"])
    assert dashboard == json.loads((CHART / "dashboards" / "kubetrain.json").read_text())


def test_the_prometheus_rule_has_the_alerts(helm: str) -> None:
    rule = one(render(helm, MONITORING), "PrometheusRule")
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert alerts == {
        "KubetrainJobFailed",
        "KubetrainJobStuckBeforeRunning",
        "KubetrainRestartStorm",
        "KubetrainOperatorDown",
    }
    # Without the ServiceMonitor, `up` has no known job label: no operator-down alert.
    alone = one(render(helm, {"prometheusRule.enabled": "true"}), "PrometheusRule")
    assert "KubetrainOperatorDown" not in {
        r["alert"] for g in alone["spec"]["groups"] for r in g["rules"]
    }


# --------------------------------------------------------------------------- bad values


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"operator.replicas": "-1"}, "at '/operator/replicas': minimum"),
        ({"watchNamespaces": '["team-*"]'}, "at '/watchNamespaces/0'"),
        ({"operator.image.pullPolicy": '"Sometimes"'}, "at '/operator/image/pullPolicy'"),
        ({"operator.headPod.memory": '"lots"'}, "at '/operator/headPod/memory'"),
        ({"metrics.port": "70000"}, "at '/metrics/port': maximum"),
        ({"prometheusRule.restartStorm.window": '"30 minutes"'}, "restartStorm/window"),
        ({"oprator": '{"replicas": 2}'}, "additional properties 'oprator' not allowed"),
        ({"operator.replica": "2"}, "additional properties 'replica' not allowed"),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else "",
)
def test_bad_values_are_refused_naming_the_field(
    helm: str, values: dict[str, str], message: str
) -> None:
    done = run_helm(helm, "template", "x", str(CHART), *set_args(values))
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


def test_mirrors_and_training_pod_env_reach_every_job_pod_through_the_operator(
    helm: str,
) -> None:
    from kubetrain.api import mirrors

    objects = render(
        helm,
        {
            "mirrors": json.dumps(
                {"datasets": "http://mirror.internal/datasets/", "weights": "/models/weights",
                 "huggingFace": "http://hf.internal"}
            ),
            "trainingPods.env": '{"HTTPS_PROXY": "http://proxy:3128"}',
        },
    )  # fmt: skip
    assert dict(operator_flags(objects).pod_env) == {
        mirrors.DATASETS_MIRROR: "http://mirror.internal/datasets/",
        mirrors.WEIGHTS_MIRROR: "/models/weights",
        mirrors.HF_ENDPOINT: "http://hf.internal",
        "HTTPS_PROXY": "http://proxy:3128",
    }
    assert operator_flags(render(helm)).pod_env == []  # the official sites by default


def test_the_network_policy_values_reach_the_operators_flags(helm: str) -> None:
    flags = operator_flags(render(helm))
    assert flags.network_policy is True
    assert json.loads(flags.metrics_from) == [{"namespaceSelector": {}}]
    narrowed = '[{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]'
    flags = operator_flags(render(helm, {"networkPolicy.metricsFrom": narrowed}))
    assert json.loads(flags.metrics_from) == json.loads(narrowed)
    assert operator_flags(render(helm, {"networkPolicy.enabled": "false"})).network_policy is False


def test_the_operator_may_create_secrets_but_never_read_them(helm: str) -> None:
    rules = [r for r in operator_rules() if "secrets" in r["resources"]]
    assert rules == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}]
