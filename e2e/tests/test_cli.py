"""The `kubetrain` cluster verbs on a real cluster, as a user runs them: submit, follow a
worker's log across that worker's replacement, wait, status, list; and wait on a job that fails.

What each command printed is recorded in the figures (`cli.*`): the README's cluster quick start
quotes them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from e2e.tests.conftest import Figures, dump_job, example_job, wait_for_job
from e2e.tests.kube import REPO, Kubectl, Obj, wait_for

KUBETRAIN = [sys.executable, "-m", "kubetrain.cli"]


def kubetrain(
    kubectl: Kubectl, *args: str, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """`kubetrain ARGS --kubeconfig <the suite's>`, to its end."""
    return subprocess.run(
        [*KUBETRAIN, *args, "--kubeconfig", kubectl.kubeconfig],
        capture_output=True, text=True, timeout=timeout, check=False, cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip


def _write(job: Obj, path: Path) -> Path:
    path.write_text(yaml.safe_dump(job))
    return path


def test_submit_follow_a_worker_across_its_replacement_then_wait(
    kubectl: Kubectl, namespace: str, checkpoint_claim: str, figures: Figures, tmp_path: Path
) -> None:
    name = "cli-follow"
    job = example_job(name, namespace, claim=checkpoint_claim)
    # Long enough to lose a worker in the middle (as test_failures' resume test).
    job["spec"]["training"]["epochs"] = 200
    job["spec"]["dataset"]["batchSize"] = 16
    submitted = kubetrain(kubectl, "submit", str(_write(job, tmp_path / "job.yaml")),
                          "-n", namespace)  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    assert submitted.stdout == f'trainingjob "{name}" created in namespace "{namespace}"\n'
    figures.record("cli.submit", submitted.stdout.strip())

    code: int | None = None
    out, err = (tmp_path / "logs.out").open("w"), (tmp_path / "logs.err").open("w")
    follower = subprocess.Popen(
        [*KUBETRAIN, "logs", name, "-n", namespace, "-f", "--rank", "0",
         "--kubeconfig", kubectl.kubeconfig],
        stdout=out, stderr=err, text=True, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        wait_for_job(kubectl, name, namespace, "epoch 3", lambda s: s.get("epoch", 0) >= 3,
                     timeout=600, every=0.5)  # fmt: skip
        first = kubectl.get("pod", f"{name}-worker-0", namespace=namespace)
        assert first is not None
        kubectl.delete("pod", f"{name}-worker-0", namespace=namespace)

        t0 = time.monotonic()
        waited = kubetrain(kubectl, "wait", name, "-n", namespace, "--timeout", "900",
                           timeout=960)  # fmt: skip
        if waited.returncode != 0:
            dump_job(kubectl, name, namespace)
        assert waited.returncode == 0, waited.stdout[-3000:] + waited.stderr
        figures.record("cli.wait_seconds_after_the_loss", round(time.monotonic() - t0, 1))
        lines = waited.stdout.splitlines()
        assert lines[-1] == f'trainingjob "{name}" Succeeded'
        assert any(f"{name}  Running  epoch " in line for line in lines), lines[:5]
        figures.record("cli.wait_last_lines", lines[-3:])

        # The job is over: the follower ends by itself once the worker's pod is gone.
        code = follower.wait(timeout=180)
    finally:
        if follower.poll() is None:
            follower.terminate()
            follower.wait(timeout=30)
        out.close()
        err.close()
    log = (tmp_path / "logs.out").read_text()
    notes = (tmp_path / "logs.err").read_text()
    figures.record("cli.logs_follow_notes", notes.splitlines())
    assert code == 0, notes
    second = kubectl.get("pod", f"{name}-worker-0", namespace=namespace)
    replaced = [line for line in notes.splitlines() if "was replaced (uid " in line]
    assert replaced, f"no replacement noted:\n{notes}\n--- log tail:\n{log[-3000:]}"
    assert first["metadata"]["uid"] not in replaced[0]
    if second is not None:  # still there (cleanPodPolicy): the note names its uid
        assert second["metadata"]["uid"] in replaced[0]
    # Both worker pods' Ray nodes started, one after the other, in the one followed log.
    assert log.count("Ray runtime started") >= 2, log[-5000:]

    status = kubetrain(kubectl, "status", name, "-n", namespace)
    assert status.returncode == 0, status.stderr
    assert "Phase:       Succeeded" in status.stdout.splitlines()
    assert "(worker pods replaced: " in status.stdout
    figures.record("cli.status", status.stdout.splitlines())
    listed = kubetrain(kubectl, "list", "-n", namespace)
    assert listed.returncode == 0 and any(
        row.split()[:3] == [name, "Succeeded", "200/200"] for row in listed.stdout.splitlines()
    ), listed.stdout
    figures.record("cli.list", listed.stdout.splitlines())
    metrics = kubetrain(kubectl, "metrics", name, "-n", namespace)
    assert metrics.returncode == 0 and "val_accuracy" in metrics.stdout, metrics.stderr
    figures.record("cli.metrics", metrics.stdout.splitlines())


def test_wait_on_a_job_that_fails_exits_1_naming_the_reason_and_the_pod(
    kubectl: Kubectl, namespace: str, checkpoint_claim: str, figures: Figures, tmp_path: Path
) -> None:
    name = "cli-no-image"
    job = example_job(name, namespace, claim=checkpoint_claim)
    job["spec"]["pod"] = {"image": "kubetrain.local/no-such-image:0.0.0"}
    path = _write(job, tmp_path / "job.yaml")
    assert kubetrain(kubectl, "submit", str(path), "-n", namespace).returncode == 0
    waited = kubetrain(kubectl, "wait", name, "-n", namespace, "--timeout", "120", timeout=180)
    figures.record("cli.wait_failed_stderr", waited.stderr.splitlines())
    assert waited.returncode == 1, waited.stdout + waited.stderr
    first = waited.stderr.splitlines()[0]
    assert first.startswith(f'kubetrain: trainingjob "{name}" failed: ImagePullBackOff: pod '), (
        first
    )
    assert "kubetrain.local/no-such-image:0.0.0" in first

    again = kubetrain(kubectl, "submit", str(path), "-n", namespace)
    assert again.returncode == 3
    assert f'trainingjob "{name}" already exists in namespace "{namespace}" (Failed' in again.stderr
    deleted = kubetrain(kubectl, "delete", name, "-n", namespace)
    assert deleted.returncode == 0, deleted.stderr
    wait_for("the job to go", lambda: kubectl.get("trainingjob", name, namespace=namespace) is None,
             timeout=60)  # fmt: skip
