"""Debian's Prometheus on this machine, scraping a cluster's training pods and the operator.

Debian builds Prometheus without Kubernetes service discovery, so targets come from file-based
discovery instead: a thread lists the pods every second (the same selection a `kubernetes_sd`
pod role with the usual `prometheus.io/scrape` relabelling would make) and rewrites the files
that Prometheus watches. Pod IPs must be routable from here (true on e2e/cluster.sh's cluster).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from e2e.tests.kube import Kubectl, KubectlError, Obj, wait_for

PROMETHEUS = shutil.which("prometheus")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def annotated_targets(pods: list[Obj]) -> list[Obj]:
    """Running pods that ask to be scraped (prometheus.io/scrape), as file_sd target groups.

    Labelled as the chart's PodMonitor labels them (job, namespace and rank from the pod's
    metadata, honor_labels off): the labels the pod's own series carry are not trusted."""
    groups = []
    for pod in pods:
        notes = pod["metadata"].get("annotations") or {}
        ip = pod.get("status", {}).get("podIP")
        if notes.get("prometheus.io/scrape") != "true" or not ip:
            continue
        if pod["status"].get("phase") != "Running":
            continue
        groups.append({
            "targets": [f"{ip}:{notes.get('prometheus.io/port', '80')}"],
            "labels": {
                "pod": pod["metadata"]["name"],
                "namespace": pod["metadata"]["namespace"],
                **_owner(pod["metadata"].get("labels") or {}),
            },
        })  # fmt: skip
    return groups


def _owner(labels: dict[str, str]) -> dict[str, str]:
    """The TrainingJob and rank a pod's labels name (see charts/kubetrain/templates/podmonitor)."""
    out = {}
    if "kubetrain.io/job-name" in labels:
        out["job"] = labels["kubetrain.io/job-name"]
    if "kubetrain.io/rank" in labels:
        out["rank"] = labels["kubetrain.io/rank"]
    return out


def port_targets(pods: list[Obj], port_name: str) -> list[Obj]:
    """Running pods' container port named `port_name`, as file_sd target groups."""
    groups = []
    for pod in pods:
        ip = pod.get("status", {}).get("podIP")
        ports = [p for c in pod["spec"]["containers"] for p in c.get("ports", [])]
        port = next((p["containerPort"] for p in ports if p.get("name") == port_name), None)
        if ip and port and pod["status"].get("phase") == "Running":
            labels = {"pod": pod["metadata"]["name"], "namespace": pod["metadata"]["namespace"]}
            groups.append({"targets": [f"{ip}:{port}"], "labels": labels})
    return groups


class Prometheus:
    def __init__(self, workdir: Path) -> None:
        if PROMETHEUS is None:
            raise RuntimeError("Debian's prometheus is not installed (apt-get install prometheus)")
        self.binary = PROMETHEUS
        self.workdir = workdir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, discover: dict[str, Callable[[], list[Obj]]], *, honor: set[str]) -> None:
        """Starts scraping: one job per `discover` entry, its targets refreshed every second."""
        config = ["global: {scrape_interval: 2s, scrape_timeout: 2s}", "scrape_configs:"]
        for job in discover:
            path = self.workdir / f"{job}.json"
            path.write_text("[]")
            config += [
                f"  - job_name: {job}",
                f"    honor_labels: {str(job in honor).lower()}",
                f"    file_sd_configs: [{{files: ['{path}'], refresh_interval: 1s}}]",
            ]
        (self.workdir / "prometheus.yml").write_text("\n".join(config) + "\n")
        self._thread = threading.Thread(target=self._discover, args=(discover,), daemon=True)
        self._thread.start()
        log = (self.workdir / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={self.workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for("prometheus to be ready", self._ready, timeout=60, every=0.3)

    def _ready(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log_tail()
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2):
                return True
        except OSError:
            return False

    def _discover(self, discover: dict[str, Callable[[], list[Obj]]]) -> None:
        while not self._stop.is_set():
            for job, targets in discover.items():
                try:
                    groups = targets()
                except KubectlError:
                    continue  # the API server was busy: try again next round
                tmp = self.workdir / f".{job}.json"
                tmp.write_text(json.dumps(groups))
                tmp.replace(self.workdir / f"{job}.json")  # atomic: never a half-written file
            self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def log_tail(self) -> str:
        return (self.workdir / "prometheus.log").read_text()[-3000:]

    def _get(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as resp:
            body = json.load(resp)
        assert body["status"] == "success", body
        return body["data"]

    def series(self, match: str) -> list[dict[str, str]]:
        """Every series matching `match` in the whole TSDB (also those of pods long gone)."""
        return list(self._get("/api/v1/series", **{"match[]": match, "start": "0"}))

    def query(self, promql: str) -> list[Obj]:
        return list(self._get("/api/v1/query", query=promql)["result"])

    def targets_seen(self) -> list[Obj]:
        return list(self._get("/api/v1/targets")["activeTargets"])


def pods_lister(
    kubectl: Kubectl, namespace: str, selector: str | None = None
) -> Callable[[], list[Obj]]:
    return lambda: kubectl.items("pods", namespace=namespace, selector=selector)
