"""The alerts and the dashboard: valid PromQL, on metrics the code exports, firing when they should.

The alert tests run the rendered PrometheusRule through `promtool test rules` (Debian's
prometheus package) with made-up series, so each alert is seen to fire and to stay quiet.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetrain.trainer.telemetry import WorkerMetrics
from kubetrain_operator.metrics import Metrics
from tests.chart.conftest import CHART, NAMESPACE, RELEASE, one, render
from tests.chart.test_render import MONITORING

DASHBOARD = json.loads((CHART / "dashboards" / "kubetrain.json").read_text())
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


def exported_series() -> set[str]:
    """Every series name the operator and the trainer export, from their own registries."""
    names: set[str] = set()
    registries = (Metrics().registry, WorkerMetrics("j", "ns", 0, "accuracy").registry)
    for registry in registries:
        for family in registry.collect():
            names |= {family.name + s for s in SUFFIXES.get(family.type, ("",))}
    return names


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b(kubetrain_[a-z_]+)\b", expr))


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in DASHBOARD["panels"] for t in p.get("targets", [])]


def alert_rules(helm: str) -> list[dict[str, Any]]:
    rule = one(render(helm, MONITORING), "PrometheusRule")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


# --------------------------------------------------------------------------- no promtool needed


def test_the_alerts_and_the_dashboard_use_only_exported_metrics(helm: str) -> None:
    exported = exported_series()
    exprs = [r["expr"] for r in alert_rules(helm)] + dashboard_exprs()
    used = set().union(*(metric_names(e) for e in exprs))
    assert used, "no kubetrain metric found in the expressions"
    assert used <= exported, f"not exported by the operator or the trainer: {used - exported}"


def test_the_dashboard_shows_what_the_issue_asks_for() -> None:
    """Jobs by phase, loss and metric per job, samples/s per rank, startup time."""
    by_title = {
        p["title"]: " ".join(t["expr"] for t in p.get("targets", [])) for p in DASHBOARD["panels"]
    }
    assert "by (phase)" in by_title["Jobs by phase"]
    assert "kubetrain_train_loss" in by_title["Training loss"]
    assert "by (namespace, job)" in by_title["Training loss"]
    assert 'metric="$metric"' in by_title["Validation $metric"]
    assert "by (namespace, job, rank)" in by_title["Samples/s per rank"]
    assert (
        "kubetrain_job_startup_seconds_bucket"
        in by_title["Startup time (creation to all pods Running)"]
    )
    # Issue 21: the exported model beside its compressed variants, after the job has ended.
    model = by_title["Model variants: size and $metric"]
    assert "kubetrain_model_size_bytes" in model and 'metric="$metric"' in model
    assert model.count("by (namespace, job, variant)") == 4
    variables = {v["name"] for v in DASHBOARD["templating"]["list"]}
    assert variables == {"datasource", "namespace", "job", "metric"}
    for panel in DASHBOARD["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert len({p["id"] for p in DASHBOARD["panels"]}) == len(DASHBOARD["panels"])


def test_every_alert_says_what_to_do(helm: str) -> None:
    for rule in alert_rules(helm):
        assert rule["labels"]["severity"]
        assert rule["annotations"]["summary"]
        assert "kubectl" in rule["annotations"]["description"], rule["alert"]


# --------------------------------------------------------------------------- promtool


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool (Debian's prometheus package) is not installed")
    return found


def _promtool(promtool: str, *args: str, cwd: Path) -> None:
    done = subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.prometheus
def test_the_dashboard_queries_are_valid_promql(promtool: str, tmp_path: Path) -> None:
    """promtool parses each query as a recording rule, Grafana's variables filled in."""
    fill = {"$__rate_interval": "2m", "$namespace": ".*", "$job": ".*", "$metric": "accuracy"}
    rules = []
    for i, expr in enumerate(dashboard_exprs()):
        for var, value in fill.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:query{i}", "expr": expr})
    (tmp_path / "dashboard.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "d", "rules": rules}]})
    )
    _promtool(promtool, "check", "rules", "dashboard.yaml", cwd=tmp_path)


def _series(name: str, values: str, **labels: str) -> dict[str, str]:
    inner = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def _case(
    series: list[dict[str, str]], alert: str, fires_at: dict[str, list[dict[str, str]]]
) -> dict[str, Any]:
    """One promtool test: `fires_at` maps an evaluation time to the alerts' labels then."""
    return {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {
                "eval_time": t,
                "alertname": alert,
                "exp_alerts": [{"exp_labels": labels} for labels in expected],
            }
            for t, expected in fires_at.items()
        ],
    }


W = {"severity": "warning"}
UP = {"job": f"{RELEASE}-kubetrain-metrics", "namespace": NAMESPACE}
FORGED = {"job": "mnist-mlp", "namespace": "team-a", "rank": "0"}  # as the PodMonitor labels it
ALERT_CASES = {
    "failed: the first failure of a reason (its series appears at 1), then quiet": _case(
        [_series("kubetrain_jobs_failed_total", "_x5 1x30", reason="OOMKilled", **UP)],
        "KubetrainJobFailed",
        {"4m": [], "7m": [W | {"reason": "OOMKilled"}], "25m": []},
    ),
    "failed: a counter that goes up": _case(
        [_series("kubetrain_jobs_failed_total", "1x20 2x20", reason="BackoffLimitExceeded", **UP)],
        "KubetrainJobFailed",
        {"15m": [], "22m": [W | {"reason": "BackoffLimitExceeded"}], "35m": []},
    ),
    "stuck: a job Pending then Starting, 20 minutes in all": _case(
        [
            _series("kubetrain_jobs", "1x8 0x30", phase="Pending", **UP),
            _series("kubetrain_jobs", "0x8 1x12 0x20", phase="Starting", **UP),
        ],
        "KubetrainJobStuckBeforeRunning",
        {"10m": [], "17m": [W], "19m": [W], "25m": []},
    ),
    "stuck: jobs that start within minutes never fire": _case(
        [
            _series(
                "kubetrain_jobs",
                "1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1 0 0",
                phase="Pending",
                **UP,
            ),
            _series(
                "kubetrain_jobs",
                "0 1 1 0 0 0 1 1 0 0 0 1 1 0 0 0 1 1 0 0 0 1 1",
                phase="Starting",
                **UP,
            ),
        ],
        "KubetrainJobStuckBeforeRunning",
        {"16m": [], "20m": []},
    ),
    "restart storm: restarts plus worker replacements above 5 in 30m": _case(
        [
            _series("kubetrain_jobs_restarted_total", "0 1 2 3 3x40", **UP),
            _series("kubetrain_workers_replaced_total", "0x4 1 2 3 3x40", **UP),
        ],
        "KubetrainRestartStorm",
        {"3m": [], "8m": [W], "45m": []},
    ),
    "restart storm: a few restarts are no storm": _case(
        [
            _series("kubetrain_jobs_restarted_total", "0 1 2 2x40", **UP),
            _series("kubetrain_workers_replaced_total", "0 0 1 2 2x40", **UP),
        ],
        "KubetrainRestartStorm",
        {"5m": [], "20m": []},
    ),
    # A training pod runs user code and is scraped too: what it exports under the operator's
    # metric names (labelled as its own job's series) must not raise an alert.
    "forged: a training pod's kubetrain_jobs_* series raise nothing": _case(
        [
            _series("kubetrain_jobs_failed_total", "_x5 1x30", reason="OOMKilled", **FORGED),
            _series("kubetrain_jobs", "1x30", phase="Pending", **FORGED),
            _series("kubetrain_jobs_restarted_total", "0 5 10 15 20x30", **FORGED),
        ],
        "KubetrainJobFailed",
        {"7m": []},
    ),
    "forged: no stuck job from a training pod's series": _case(
        [_series("kubetrain_jobs", "1x30", phase="Pending", **FORGED)],
        "KubetrainJobStuckBeforeRunning",
        {"25m": []},
    ),
    "forged: no restart storm from a training pod's series": _case(
        [_series("kubetrain_jobs_restarted_total", "0 5 10 15 20x30", **FORGED)],
        "KubetrainRestartStorm",
        {"8m": []},
    ),
    "operator down: no replica up for 5 minutes": _case(
        [_series("up", "1x5 0x20", **UP)],
        "KubetrainOperatorDown",
        {"5m": [], "9m": [], "12m": [{"severity": "critical", "namespace": NAMESPACE}]},
    ),
}


@pytest.mark.prometheus
def test_the_alert_rules_are_valid(helm: str, promtool: str, tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "k", "rules": alert_rules(helm)}]})
    )
    _promtool(promtool, "check", "rules", "rules.yaml", cwd=tmp_path)


@pytest.mark.prometheus
@pytest.mark.parametrize("case", list(ALERT_CASES))
def test_alerts_fire_when_they_should(helm: str, promtool: str, tmp_path: Path, case: str) -> None:
    # promtool compares annotations too; the wording is checked above, the firing here.
    rules = [{k: v for k, v in r.items() if k != "annotations"} for r in alert_rules(helm)]
    (tmp_path / "rules.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "k", "rules": rules}]})
    )
    test = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": [ALERT_CASES[case]]}
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test))
    _promtool(promtool, "test", "rules", "test.yaml", cwd=tmp_path)
