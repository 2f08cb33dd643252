"""The cluster half of bench/startup.py: time to first epoch on the end-to-end cluster.

Not a test (no assertion on time; pytest collects it only when named): it uses the e2e
fixtures (the cluster, the operator from the chart, a namespace, a checkpoint claim) and prints
side by side, alternating which goes first:
  - kubetrain: `kubectl apply` of examples/mnist-mlp.yaml → phase Running → epoch 1 in status
    → Succeeded;
  - a plain pod of the same trainer image running bench/plain_ddp.py under torchrun (2
    processes, gloo) on the same model and data, asking the CPU the two workers ask together:
    pod created → Running → `epoch 1/` in its log → Succeeded.

    python bench/startup.py --cluster   # KUBETRAIN_E2E_PATHS=<this file> e2e/run.sh --down -s
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timezone

from e2e.tests.conftest import TRAINER_IMAGE, WORKER_CPU, Figures, example_job
from e2e.tests.kube import REPO, Kubectl, Obj, wait_for
from kubetrain.api.quantities import cpu_cores

POLL_S = 0.25


def _timeline(marks: dict[str, Callable[[], bool]], timeout: float) -> dict[str, float]:
    """Seconds from now until each mark first holds (checked in order, every POLL_S)."""
    t0 = time.monotonic()
    seen: dict[str, float] = {}
    while len(seen) < len(marks):
        for name, check in marks.items():
            if name not in seen and check():
                seen[name] = round(time.monotonic() - t0, 2)
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"only {seen} within {timeout} s")
        time.sleep(POLL_S)
    return seen


def kubetrain_run(kubectl: Kubectl, namespace: str, claim: str, name: str) -> dict[str, float]:
    job = example_job(name, namespace, claim=claim)

    def status() -> Obj:
        got = kubectl.get("trainingjob", name, namespace=namespace) or {}
        return dict(got.get("status") or {})

    applied = time.time()
    kubectl.apply(job)
    times = _timeline({
        "running": lambda: status().get("phase") in ("Running", "Succeeded"),
        "first_epoch": lambda: (status().get("epoch") or 0) >= 1,
        "done": lambda: status().get("phase") in ("Succeeded", "Failed"),
    }, timeout=900)  # fmt: skip
    assert status().get("phase") == "Succeeded", status()
    for line in head_timeline(kubectl, namespace, name, applied):
        print(f"    {line}")
    kubectl.delete("trainingjob", name, namespace=namespace)
    selector = f"kubetrain.io/job-name={name}"
    wait_for(f"the pods of {name} to go",
             lambda: not kubectl.items("pods", namespace=namespace, selector=selector),
             timeout=180)  # fmt: skip
    return times


def head_timeline(kubectl: Kubectl, namespace: str, name: str, applied: float) -> list[str]:
    """When each pod's container started and each phase the driver logs began, in seconds
    since the apply (the driver logs with times: `2026-12-06 22:55:01,123 INFO …`)."""
    lines = []
    for pod in kubectl.items("pods", namespace=namespace, selector=f"kubetrain.io/job-name={name}"):
        for cs in pod.get("status", {}).get("containerStatuses", []):
            state = cs.get("state", {})
            started = (state.get("running") or state.get("terminated") or {}).get("startedAt")
            if started:
                at = datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp()
                lines.append((at - applied, f"container of {pod['metadata']['name']} started"))
    log = kubectl.run("logs", "-n", namespace, f"{name}-head", check=False)
    for line in log.splitlines():
        found = _LOGGED.match(line)
        if found is None or (found["what"].startswith("epoch ") and "epoch 1/" not in line):
            continue  # not the driver's, or an epoch after the first
        stamp = datetime.strptime(found["at"], "%Y-%m-%d %H:%M:%S,%f")
        at = stamp.replace(tzinfo=timezone.utc).timestamp()
        lines.append((at - applied, f"driver: {found['what'][:90]}"))
    return [f"{at:6.1f} s  {what}" for at, what in sorted(lines)]


_LOGGED = re.compile(r"^(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO (?P<what>.*)$")


def plain_run(kubectl: Kubectl, namespace: str, name: str) -> dict[str, float]:
    job = example_job(name, namespace)
    script = (REPO / "bench" / "plain_ddp.py").read_text()
    kubectl.apply({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
        "data": {"plain_ddp.py": script},
    })  # fmt: skip
    cpu = f"{round(2000 * cpu_cores(WORKER_CPU))}m"  # what the two kubetrain workers ask together
    pod: Obj = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "torchrun", "image": TRAINER_IMAGE, "imagePullPolicy": "IfNotPresent",
                "command": ["python", "-m", "torch.distributed.run", "--nproc_per_node=2",
                            "/bench/plain_ddp.py", json.dumps(job)],
                "env": [{"name": "PLAIN_DDP_OUT", "value": "/tmp/out.json"},
                        {"name": "OMP_NUM_THREADS", "value": "1"}],
                "resources": {"requests": {"cpu": cpu, "memory": "2Gi"},
                              "limits": {"cpu": cpu, "memory": "2Gi"}},
                "volumeMounts": [{"name": "bench", "mountPath": "/bench"},
                                 {"name": "tmp", "mountPath": "/tmp"}],
            }],
            "volumes": [{"name": "bench", "configMap": {"name": name}},
                        {"name": "tmp", "emptyDir": {}}],
        },
    }  # fmt: skip

    def phase() -> str:
        got = kubectl.get("pod", name, namespace=namespace) or {}
        return str((got.get("status") or {}).get("phase", ""))

    def printed_first_epoch() -> bool:
        if phase() not in ("Running", "Succeeded"):
            return False
        log = kubectl.run("logs", "-n", namespace, name, check=False)
        return "epoch 1/" in log

    kubectl.create(pod)
    times = _timeline({
        "running": lambda: phase() in ("Running", "Succeeded"),
        "first_epoch": printed_first_epoch,
        "done": lambda: phase() in ("Succeeded", "Failed"),
    }, timeout=900)  # fmt: skip
    assert phase() == "Succeeded", kubectl.run("logs", "-n", namespace, name, check=False)
    kubectl.delete("pod", name, namespace=namespace)
    kubectl.delete("configmap", name, namespace=namespace)
    # The next run starts on a node this one has left (its pods hold CPU until gone).
    wait_for(f"pod {name} to go", lambda: not kubectl.get("pod", name, namespace=namespace),
             timeout=180)  # fmt: skip
    return times


def test_startup_side_by_side(
    kubectl: Kubectl, namespace: str, checkpoint_claim: str, figures: Figures
) -> None:
    repeats = 3
    runs: dict[str, list[dict[str, float]]] = {"plain": [], "kubetrain": []}
    for i in range(repeats):
        order = [("plain", lambda i=i: plain_run(kubectl, namespace, f"plain-{i}")),
                 ("kubetrain", lambda i=i: kubetrain_run(kubectl, namespace, checkpoint_claim,
                                                         f"startup-{i}"))]  # fmt: skip
        for what, run in order if i % 2 == 0 else order[::-1]:
            times = run()
            runs[what].append(times)
            print(f"repeat {i + 1} {what:9s} {times}", flush=True)
    for mark in ("running", "first_epoch", "done"):
        plain = statistics.median(r[mark] for r in runs["plain"])
        ours = statistics.median(r[mark] for r in runs["kubetrain"])
        figures.record(f"startup.{mark}.plain", plain)
        figures.record(f"startup.{mark}.kubetrain", ours)
        print(f"{mark:12s} plain {plain:6.2f} s  kubetrain {ours:6.2f} s  ratio {ours / plain:.2f}")
    after_running = [r["first_epoch"] - r["running"] for r in runs["kubetrain"]]
    plain_after = [r["first_epoch"] - r["running"] for r in runs["plain"]]
    print(
        f"Running → first epoch: plain {statistics.median(plain_after):.2f} s, kubetrain "
        f"{statistics.median(after_running):.2f} s"
    )
