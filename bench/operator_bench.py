"""Benchmark: 100 TrainingJobs applied at once against a real control plane.

    sudo .venv/bin/python bench/operator_bench.py [--jobs 100] [--repeats 3] [--baseline-root DIR]

Without --kubeconfig it brings up `e2e/cluster.sh up --control-plane-only` (root) in a directory
and on ports of its own, so that it disturbs neither the default cluster nor the one the
operator's kube tests use: by default /tmp/kubetrain-bench-cp, API 26443, etcd 22379/22380.
Flags (--cluster-dir, --api-port, --etcd-port, --etcd-peer-port) or the cluster script's own
variables (KUBETRAIN_CLUSTER_DIR, KUBETRAIN_API_PORT, KUBETRAIN_ETCD_PORT,
KUBETRAIN_ETCD_PEER_PORT) choose others; flags win. A cluster it started it takes down afterwards
(--keep-cluster leaves it up for the next run); one that was already up it leaves alone.

It runs the operator as a subprocess, applies the jobs from 16 threads, and watches pods and jobs
to time:

- apply -> all of a job's pods created (p50, p99, max), target p50 < 1 s;
- apply of the first job -> every job's status set, target < 30 s for 100 jobs;
- one reconcile pass (p50, p99, from the operator's own histogram, as histogram_quantile does);
- the operator's peak resident memory (VmHWM);
- then, playing the kubelet, pods Running -> the job's status says Running (p50, p99).

Each figure is the median over --repeats runs (3). With --baseline-root, a second operator (another
checkout, e.g. `git archive` of an earlier commit) runs interleaved with this one on the same
cluster, and the ratios this/baseline are printed: the VM's speed drifts by 10-30% from minute to
minute here, more than most changes move the figures. Prints the median run's figures, every
run's line, the medians (and ratios), and a JSON line with all of it for scripts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "operator")]

from cpu_time import cpu_seconds  # noqa: E402  (bench/, beside this script)
from kubetrain.api import GROUP, PLURAL, VERSION  # noqa: E402
from kubetrain_operator.kube import MERGE_PATCH, Kube, api_client  # noqa: E402
from kubetrain_operator.render.install import operator_rules  # noqa: E402
from ports import free_port  # noqa: E402

# The bench's own cluster: (flag, variable of e2e/cluster.sh, default).
CLUSTER_SETTINGS = (
    ("cluster_dir", "KUBETRAIN_CLUSTER_DIR", "/tmp/kubetrain-bench-cp"),
    ("api_port", "KUBETRAIN_API_PORT", "26443"),
    ("etcd_port", "KUBETRAIN_ETCD_PORT", "22379"),
    ("etcd_peer_port", "KUBETRAIN_ETCD_PEER_PORT", "22380"),
)
NO_SCHEDULER = "kubetrain-bench-no-scheduler"


def apply_crd(kube: Kube) -> None:
    """Creates or replaces the TrainingJob CRD, and waits until its API is served."""
    crd = yaml.safe_load((ROOT / "crds" / "trainingjob.yaml").read_text())
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    found = kube._call("GET", f"{path}/{crd['metadata']['name']}")
    if found is None:
        kube._call("POST", path, body=crd)
    else:
        crd["metadata"]["resourceVersion"] = found["metadata"]["resourceVersion"]
        kube._call("PUT", f"{path}/{crd['metadata']['name']}", body=crd)
    deadline = time.monotonic() + 60
    while kube._call("GET", f"/apis/{GROUP}/{VERSION}/{PLURAL}") is None:
        if time.monotonic() > deadline:
            raise SystemExit("the TrainingJob API is not served 60 s after applying the CRD")
        time.sleep(0.2)


def operator_kubeconfig(kube: Kube, ns: str, path: Path) -> Path:
    """A kubeconfig for the operator as the chart runs it: its own ServiceAccount, bound to the
    chart's rules (render/install.py), with a token. The admin's client certificate costs the API
    server a chain verification per request (8.6% of it in a CPU profile of the burst), but
    admin is in system:masters, which RBAC never evaluates: measured side by side, the
    ServiceAccount costs the API server more (bench/RESULTS.md)."""
    account, role = "kubetrain-operator", f"kubetrain-bench-operator-{ns}"
    kube._call("POST", f"/api/v1/namespaces/{ns}/serviceaccounts",
               body={"metadata": {"name": account}})  # fmt: skip
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    kube._call("POST", f"{rbac}/clusterroles",
               body={"metadata": {"name": role}, "rules": operator_rules()})  # fmt: skip
    kube._call("POST", f"{rbac}/clusterrolebindings", body={
        "metadata": {"name": role},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": ns}],
    })  # fmt: skip
    answer = kube._call(
        "POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{account}/token",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
              "spec": {"expirationSeconds": 3600}},
    )  # fmt: skip
    assert answer is not None
    cfg = kube.api.configuration
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "operator",
        "clusters": [{"name": "bench", "cluster": {
            "server": cfg.host, "certificate-authority": cfg.ssl_ca_cert}}],
        "users": [{"name": account, "user": {"token": answer["status"]["token"]}}],
        "contexts": [{"name": "operator", "context": {"cluster": "bench", "user": account}}],
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config))
    return path


def drop_operator_rbac(kube: Kube, ns: str) -> None:
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    for kind in ("clusterrolebindings", "clusterroles"):
        kube._call("DELETE", f"{rbac}/{kind}/kubetrain-bench-operator-{ns}")


def jobs_path(ns: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{PLURAL}"


def release_jobs(kube: Kube, ns: str) -> None:
    """Drops any finalizer from the jobs left in `ns`, so that deleting the namespace can finish:
    an operator from before kubetrain_operator/_kopf/daemons.py (`--operator-root`) puts kopf's
    on every job."""
    for job in (kube._call("GET", jobs_path(ns)) or {}).get("items", []):
        if job["metadata"].get("finalizers"):
            kube._call(
                "PATCH", f"{jobs_path(ns)}/{job['metadata']['name']}",
                body={"metadata": {"finalizers": None}}, content_type=MERGE_PATCH,
            )  # fmt: skip


def delete_namespace(kube: Kube, ns: str, operator: subprocess.Popen[bytes] | None) -> None:
    """Deletes the bench's namespace: the jobs first, while the operator still runs (an older
    one releases its finalizers), then whatever is left, released by hand."""
    if operator is not None and operator.poll() is None:
        kube._call("DELETE", jobs_path(ns))
        with contextlib.suppress(SystemExit):
            wait_gone(kube, "the jobs", lambda: (kube._call("GET", jobs_path(ns)) or {}).get(
                "items"), timeout=120)  # fmt: skip
        operator.terminate()
        operator.wait(timeout=30)
    release_jobs(kube, ns)
    kube._call("DELETE", f"/api/v1/namespaces/{ns}")
    wait_gone(kube, f"namespace {ns}", lambda: kube._call("GET", f"/api/v1/namespaces/{ns}"))


def wait_gone(kube: Kube, what: str, exists: Any, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} is still there after {timeout:.0f} s")
        time.sleep(0.5)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def component_pids(cluster_dir: str) -> dict[str, int]:
    pids = {}
    for name in ("etcd", "kube-apiserver", "kube-controller-manager"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            pids[name] = int((Path(cluster_dir) / "run" / name).read_text().split()[0])
    return pids


def api_requests(kube: Kube) -> dict[str, float]:
    """The API server's request counters (apiserver_request_total), by verb and resource.

    Kubernetes 1.20 counts a GET of one custom resource as a LIST: "LIST trainingjobs" is
    mostly the operator reading each job at the start of a pass.
    """
    params = kube.api.param_serialize(
        "GET", "/metrics", header_params={"Accept": "text/plain"}, auth_settings=["BearerToken"]
    )
    text = kube.api.call_api(*params).read().decode()  # type: ignore[no-untyped-call]
    counts: dict[str, float] = {}
    for labels, value in re.findall(r"^apiserver_request_total\{([^}]*)\} (\S+)$", text, re.M):
        fields = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if fields.get("verb") == "WATCH":
            continue  # long-running: counted once per watch, not per event
        sub = f"/{fields['subresource']}" if fields.get("subresource") else ""
        key = f"{fields.get('verb')} {fields.get('resource')}{sub}"
        counts[key] = counts.get(key, 0.0) + float(value)
    return counts


def histogram_quantile(text: str, name: str, q: float) -> float:
    """Prometheus' histogram_quantile over one unlabelled histogram in exposition text."""
    buckets: list[tuple[float, float]] = []
    for le, count in re.findall(rf'^{name}_bucket{{le="([^"]+)"}} (\S+)$', text, re.M):
        buckets.append((float("inf") if le == "+Inf" else float(le), float(count)))
    buckets.sort()
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return prev_le
            span = count - prev_count
            return prev_le + (le - prev_le) * ((rank - prev_count) / span if span else 0.0)
        prev_le, prev_count = le, count
    return float("nan")


class Watcher(threading.Thread):
    """Streams watch events of one collection and stamps each with our monotonic clock."""

    def __init__(self, kube: Kube, path: str, on_event: Any) -> None:
        super().__init__(daemon=True)
        self.kube, self.path, self.on_event = kube, path, on_event
        self.stop = False

    def run(self) -> None:
        api = self.kube.api
        while not self.stop:
            params = api.param_serialize(
                "GET", f"{self.path}?watch=true&timeoutSeconds=60",
                header_params={"Accept": "application/json"}, auth_settings=["BearerToken"],
            )  # fmt: skip
            response = api.rest_client.pool_manager.request(
                "GET", params[1], headers=params[2], preload_content=False, timeout=70
            )
            buffer = b""
            for chunk in response.stream(65536):
                if self.stop:
                    break
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        self.on_event(time.monotonic(), json.loads(line))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--jobs", type=int, default=100)
    p.add_argument("--workers", type=int, default=2, help="worker pods per job")
    p.add_argument("--kubeconfig", help="use this cluster instead of bringing one up")
    p.add_argument("--threads", type=int, default=16, help="client threads applying the jobs")
    p.add_argument("--operator-log-level", default="WARNING", help="e.g. INFO: a line per action")
    p.add_argument(
        "--operator-root", type=Path, default=ROOT,
        help="run the operator from this checkout (e.g. `git archive` of another commit), to"
        " compare two versions side by side",
    )  # fmt: skip
    p.add_argument(
        "--baseline-root", type=Path,
        help="also run the operator from this checkout, interleaved with --operator-root, and"
        " print the ratios of the medians (this / baseline) and the median of paired ratios",
    )  # fmt: skip
    p.add_argument("--repeats", type=int, default=3,
                   help="runs of each version; the figures are medians over them")  # fmt: skip
    p.add_argument(
        "--operator-arg", action="append", default=[], metavar="ARG",
        help="one more argument for the operator (repeatable), e.g. --operator-arg=--threads=8",
    )  # fmt: skip
    p.add_argument(
        "--operator-identity", choices=("admin", "serviceaccount"), default="admin",
        help="admin (default, as every entry in bench/RESULTS.md): the bench's admin kubeconfig;"
        " serviceaccount: as the chart runs it, a ServiceAccount token bound to its rules (RBAC"
        " is then checked on every request, which admin skips)",
    )  # fmt: skip
    cluster = p.add_argument_group("the bench's own cluster (without --kubeconfig)")
    for flag, variable, default in CLUSTER_SETTINGS:
        cluster.add_argument(
            f"--{flag.replace('_', '-')}", default=os.environ.get(variable, default),
            help=f"${variable}, else {default}",
        )  # fmt: skip
    cluster.add_argument("--keep-cluster", action="store_true", help="leave it up afterwards")
    args = p.parse_args()

    cluster_env = {variable: str(getattr(args, flag)) for flag, variable, _ in CLUSTER_SETTINGS}
    env = {**os.environ, **cluster_env}
    script = ROOT / "e2e" / "cluster.sh"
    started_cluster = False
    kubeconfig = args.kubeconfig
    if kubeconfig is None:
        mode_file = Path(args.cluster_dir) / "mode"
        if mode_file.exists() and mode_file.read_text().strip() != "control-plane-only":
            # `up --control-plane-only` would tear that cluster down to start its own.
            raise SystemExit(
                f"{args.cluster_dir} holds a {mode_file.read_text().strip()} cluster; pass"
                " --kubeconfig to use it, or --cluster-dir and the ports for a cluster of our own"
            )
        status = subprocess.run([str(script), "status"], env=env, capture_output=True)
        was_up = status.returncode == 0
        up = subprocess.run([str(script), "up", "--control-plane-only"], env=env,
                            capture_output=True, text=True)  # fmt: skip
        if up.returncode != 0:
            raise SystemExit(f"e2e/cluster.sh up failed:\n{up.stderr[-3000:]}")
        kubeconfig = up.stdout.strip().splitlines()[-1]
        started_cluster = not was_up
    versions = [("operator", args.operator_root)]
    if args.baseline_root is not None:
        versions.append(("baseline", args.baseline_root))
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in versions}
    try:
        # Interleaved, so that the VM's drift from minute to minute falls on both alike.
        for repeat in range(args.repeats):
            for label, root in versions:
                figures = measure(args, kubeconfig, root)
                runs[label].append(figures)
                print(f"[{repeat + 1}/{args.repeats}] {label}: {one_line(figures)}", flush=True)
    finally:
        if started_cluster and not args.keep_cluster:
            subprocess.run([str(script), "down"], env=env, capture_output=True)
    mine = runs["operator"]
    report(median_run(mine))
    summary = summarize(runs)
    print_summary(summary, repeats=args.repeats)
    print(json.dumps({"summary": summary, "runs": runs}))
    ok = summary["operator"]["pods_created_p50_s"] < 1.0
    ok = ok and summary["operator"]["every_status_set_s"] < 30.0
    return 0 if ok and all(f["jobs_with_all_pods"] == args.jobs for f in mine) else 1


# The figures a summary takes the median of, over the repeats of one operator version.
SUMMARY_FIGURES = (
    "pods_created_p50_s", "pods_created_p99_s", "every_status_set_s", "reconcile_p50_s",
    "operator_peak_rss_mib",
)  # fmt: skip


def one_line(f: dict[str, Any]) -> str:
    cpu = f["cpu_seconds_during_burst"]
    return (
        f"apply->pods p50 {f['pods_created_p50_s']:.3f} s, p99 {f['pods_created_p99_s']:.3f} s;"
        f" every status {f['every_status_set_s']:.2f} s; CPU s: "
        + ", ".join(f"{k.split()[0]} {v:.1f}" for k, v in cpu.items())
    )


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run whose apply->pods p50 is the median one (the lower middle for an even count)."""
    ordered = sorted(runs, key=lambda f: f["pods_created_p50_s"])
    return ordered[(len(ordered) - 1) // 2]


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    summary = {
        label: {k: round(statistics.median(f[k] for f in fs), 3) for k in SUMMARY_FIGURES}
        for label, fs in runs.items()
    }
    if "baseline" in runs:
        mine, base = summary["operator"], summary["baseline"]
        summary["ratio"] = {k: round(mine[k] / base[k], 3) for k in SUMMARY_FIGURES if base[k]}
        pairs = [m["pods_created_p50_s"] / b["pods_created_p50_s"]
                 for m, b in zip(runs["operator"], runs["baseline"], strict=True)]  # fmt: skip
        summary["ratio"]["pods_created_p50_paired_median"] = round(statistics.median(pairs), 3)
    return summary


def print_summary(summary: dict[str, dict[str, float]], *, repeats: int) -> None:
    print(f"medians over {repeats} run(s) each:")
    for label, figures in summary.items():
        shown = ", ".join(f"{k} {v}" for k, v in figures.items())
        print(f"  {label:9s} {shown}")
    print("  (target: operator pods_created_p50_s < 1 s, every_status_set_s < 30 s)")


def measure(args: argparse.Namespace, kubeconfig: str, operator_root: Path) -> dict[str, Any]:
    """Runs the operator, applies the jobs, plays the kubelet; returns the figures."""
    kube = Kube(api_client(kubeconfig=kubeconfig, pool_size=args.threads + 4))
    apply_crd(kube)
    # A previous run's namespace still being emptied would load the API server meanwhile.
    for old in (kube._call("GET", "/api/v1/namespaces") or {}).get("items", []):
        if old["metadata"]["name"].startswith("bench-"):
            delete_namespace(kube, old["metadata"]["name"], None)
    ns = f"bench-{uuid.uuid4().hex[:6]}"
    kube._call("POST", "/api/v1/namespaces", body={"metadata": {"name": ns}})
    while not kube._call("GET", f"/api/v1/namespaces/{ns}/serviceaccounts/default"):
        time.sleep(0.1)

    metrics_port, health_port = free_port(), free_port()
    root = operator_root.resolve()
    workdir = Path(tempfile.mkdtemp(prefix="operator-bench-"))
    log = workdir / "operator.log"
    operator_config = kubeconfig
    if args.operator_identity == "serviceaccount":
        operator_config = str(operator_kubeconfig(kube, ns, workdir / "operator.kubeconfig"))
    operator = subprocess.Popen(
        [sys.executable, "-m", "kubetrain_operator", "--kubeconfig", operator_config,
         "--standalone",
         "--namespace", ns, "--metrics-port", str(metrics_port), "--health-port", str(health_port),
         "--bind", "127.0.0.1", "--log-level", args.operator_log_level, *args.operator_arg],
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": f"{root / 'src'}:{root / 'operator'}"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/readyz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or operator.poll() is not None:
                    raise SystemExit(f"operator did not start; log in {log}") from None
                time.sleep(0.1)

        names = [f"job-{i:03d}" for i in range(args.jobs)]
        per_job = args.workers + 1
        applied: dict[str, float] = {}
        pods_seen: dict[str, set[str]] = {n: set() for n in names}
        pods_done: dict[str, float] = {}
        status_set: dict[str, float] = {}
        running_at: dict[str, float] = {}
        lock = threading.Lock()

        def on_pod(t: float, event: dict[str, Any]) -> None:
            obj = event["object"]
            job = obj["metadata"].get("labels", {}).get("kubetrain.io/job-name")
            if event["type"] != "ADDED" or job not in pods_seen:
                return
            with lock:
                pods_seen[job].add(obj["metadata"]["name"])
                if len(pods_seen[job]) == per_job and job not in pods_done:
                    pods_done[job] = t

        def on_job(t: float, event: dict[str, Any]) -> None:
            obj = event["object"]
            name = obj["metadata"]["name"]
            phase = (obj.get("status") or {}).get("phase")
            with lock:
                if phase and name not in status_set:
                    status_set[name] = t
                if phase == "Running" and name not in running_at:
                    running_at[name] = t

        watchers = [
            Watcher(kube, f"/api/v1/namespaces/{ns}/pods", on_pod),
            Watcher(kube, f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{PLURAL}", on_job),
        ]
        for w in watchers:
            w.start()
        time.sleep(1.0)  # the watches are established

        def apply(name: str) -> None:
            body = {
                "apiVersion": f"{GROUP}/{VERSION}", "kind": "TrainingJob",
                "metadata": {"name": name, "namespace": ns},
                "spec": {
                    "model": {"name": "mlp"}, "dataset": {"source": "digits"},
                    "distributed": {"workers": args.workers},
                    "pod": {"schedulerName": NO_SCHEDULER},
                },
            }  # fmt: skip
            t = time.monotonic()
            kube._call("POST", f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{PLURAL}", body=body)
            applied[name] = t

        components = component_pids(args.cluster_dir) if args.kubeconfig is None else {}
        pids = {"operator": operator.pid, **components}
        pids["bench (this process)"] = os.getpid()
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        requests_before = api_requests(kube)
        load_before = os.getloadavg()[0]
        t0 = time.monotonic()
        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(apply, names))
        apply_seconds = time.monotonic() - t0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (
            len(pods_done) < args.jobs or len(status_set) < args.jobs
        ):
            time.sleep(0.05)
        created = [pods_done[n] - applied[n] for n in names if n in pods_done]
        burst_seconds = time.monotonic() - t0
        cpu = {name: round(cpu_seconds(pid) - cpu_before[name], 2) for name, pid in pids.items()}
        requests_after = api_requests(kube)
        # Every client's: the operator's, the controller-manager's and our 100 job creations.
        requests = {
            k: int(n) for k, v in requests_after.items()
            if (n := v - requests_before.get(k, 0.0)) > 0
        }  # fmt: skip
        all_status = max(status_set.values()) - t0 if len(status_set) == args.jobs else float("nan")

        # Play the kubelet: every pod Running, heads Ready; time until the status says Running.
        flipped: dict[str, float] = {}

        def run_pods(name: str) -> None:
            for pod in [f"{name}-head"] + [f"{name}-worker-{r}" for r in range(args.workers)]:
                ready = "True" if pod.endswith("-head") else "False"
                kube._call(
                    "PATCH", f"/api/v1/namespaces/{ns}/pods/{pod}/status",
                    body={"status": {"phase": "Running",
                                     "conditions": [{"type": "Ready", "status": ready}]}},
                    content_type=MERGE_PATCH,
                )  # fmt: skip
            flipped[name] = time.monotonic()

        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(run_pods, names))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(running_at) < args.jobs:
            time.sleep(0.05)
        to_running = [running_at[n] - flipped[n] for n in names if n in running_at]

        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
            metrics_text = r.read().decode()
        hist = "kubetrain_reconcile_duration_seconds"
        passes = float(re.search(rf"^{hist}_count (\S+)$", metrics_text, re.M).group(1))  # type: ignore[union-attr]
        status_file = Path(f"/proc/{operator.pid}/status").read_text()
        peak_kib = int(re.search(r"VmHWM:\s+(\d+)", status_file).group(1))  # type: ignore[union-attr]
        for w in watchers:
            w.stop = True
    finally:
        print(f"operator log: {log}", file=sys.stderr)
        try:
            delete_namespace(kube, ns, operator)
        except SystemExit as exc:  # the figures are still worth printing
            print(f"cleanup: {exc}", file=sys.stderr)
        drop_operator_rbac(kube, ns)

    return {
        "jobs": args.jobs,
        "pods_per_job": per_job,
        "cpus": os.cpu_count(),
        "apply_all_seconds": round(apply_seconds, 3),
        "pods_created_p50_s": round(percentile(created, 0.5), 3),
        "pods_created_p99_s": round(percentile(created, 0.99), 3),
        "pods_created_max_s": round(max(created, default=float("nan")), 3),
        "jobs_with_all_pods": len(created),
        # When, from the first apply, the first and the last job had all their pods.
        "first_job_pods_at_s": round(min(pods_done.values(), default=t0 - 1) - t0, 3),
        "last_job_pods_at_s": round(max(pods_done.values(), default=t0 - 1) - t0, 3),
        "every_status_set_s": round(all_status, 3),
        "reconcile_passes": int(passes),
        "reconcile_p50_s": round(histogram_quantile(metrics_text, hist, 0.5), 4),
        "reconcile_p99_s": round(histogram_quantile(metrics_text, hist, 0.99), 4),
        "pods_running_to_status_running_p50_s": round(percentile(to_running, 0.5), 3),
        "pods_running_to_status_running_p99_s": round(percentile(to_running, 0.99), 3),
        "operator_peak_rss_mib": round(peak_kib / 1024, 1),
        "operator_identity": args.operator_identity,
        "cpu_seconds_during_burst": cpu,
        "burst_wall_seconds": round(burst_seconds, 2),
        "load_average_before": round(load_before, 2),
        "api_requests_during_burst": dict(sorted(requests.items(), key=lambda kv: -kv[1])),
    }


def report(figures: dict[str, Any]) -> None:
    cpu: dict[str, float] = figures["cpu_seconds_during_burst"]
    print(f"kubetrain operator benchmark: {figures['jobs']} TrainingJobs x"
          f" {figures['pods_per_job']} pods, {figures['cpus']} CPUs,"
          " real kube-apiserver + etcd; the operator as"
          f" {figures['operator_identity']}")  # fmt: skip
    print(f"  applied all jobs in                 {figures['apply_all_seconds']:.2f} s")
    print(f"  apply -> all pods created   p50     {figures['pods_created_p50_s']:.3f} s"
          "   (target < 1 s)")  # fmt: skip
    print(f"                              p99     {figures['pods_created_p99_s']:.3f} s"
          f"   (first job's pods at {figures['first_job_pods_at_s']:.2f} s,"
          f" last job's at {figures['last_job_pods_at_s']:.2f} s)")  # fmt: skip
    print(f"  first apply -> every status set     {figures['every_status_set_s']:.2f} s"
          "   (target < 30 s)")  # fmt: skip
    print(f"  reconcile pass              p50     {figures['reconcile_p50_s'] * 1000:.1f} ms"
          f"   ({figures['reconcile_passes']} passes, histogram_quantile)")  # fmt: skip
    print(f"                              p99     {figures['reconcile_p99_s'] * 1000:.1f} ms")
    print(f"  pods Running -> job Running p50     "
          f"{figures['pods_running_to_status_running_p50_s']:.3f} s")  # fmt: skip
    print(f"                              p99     "
          f"{figures['pods_running_to_status_running_p99_s']:.3f} s")  # fmt: skip
    print(f"  operator peak RSS                   {figures['operator_peak_rss_mib']:.0f} MiB")
    print(f"  CPU seconds in the {figures['burst_wall_seconds']:.1f} s burst: "
          + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
          + f"   (load average before: {figures['load_average_before']:.1f})")  # fmt: skip
    requests: dict[str, int] = figures["api_requests_during_burst"]
    print(f"  API requests in the burst: {sum(requests.values())} (all clients, no watches): "
          + ", ".join(f"{k} {v}" for k, v in list(requests.items())[:12]))  # fmt: skip
    print(json.dumps(figures))


if __name__ == "__main__":
    sys.exit(main())
