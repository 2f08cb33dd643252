"""What goes wrong on real clusters: a worker pod lost, an image that does not exist, a job
deleted while it trains."""

from __future__ import annotations

import time

import pytest

from e2e.tests.conftest import (
    Figures,
    example_job,
    wait_for_job,
    wait_for_phase,
)
from e2e.tests.kube import Kubectl, Obj, wait_for
from kubetrain_operator.timestamps import parse_time


def _seconds_since(timestamp: str) -> float:
    created = parse_time(timestamp)
    assert created is not None, timestamp
    return time.time() - created.timestamp()


def test_worker_pod_deleted_mid_training_resumes_from_checkpoint_and_succeeds(
    kubectl: Kubectl, namespace: str, checkpoint_claim: str, figures: Figures
) -> None:
    name = "resume"
    job = example_job(name, namespace, claim=checkpoint_claim)
    # Long enough to lose a worker in the middle: a deleted pod's Ray node takes its
    # termination (seconds) to go, and the digits MLP trains an epoch in well under a second.
    job["spec"]["training"]["epochs"] = 200
    job["spec"]["dataset"]["batchSize"] = 16
    kubectl.apply(job)
    at_loss = wait_for_job(
        kubectl, name, namespace, "epoch 3 (with its checkpoint)",
        lambda s: s.get("epoch", 0) >= 3, timeout=600, every=0.5,
    )  # fmt: skip
    kubectl.delete("pod", f"{name}-worker-1", namespace=namespace)
    lost_at = time.monotonic()
    # Every epoch the status reports from here on: a run that started over would report 1, 2...
    epochs: list[int] = []

    def succeeded(status: Obj) -> bool:
        if isinstance(status.get("epoch"), int):
            epochs.append(status["epoch"])
        return status.get("phase") == "Succeeded"

    status = wait_for_job(kubectl, name, namespace, "Succeeded after losing a worker",
                          succeeded, timeout=900, every=0.5)  # fmt: skip
    figures.record("resume.seconds_from_loss_to_succeeded", round(time.monotonic() - lost_at, 1))
    figures.record("resume.epoch_at_loss", at_loss["epoch"])
    figures.record("resume.epochs_seen_after_loss", sorted(set(epochs)))
    figures.record("resume.val_accuracy", status["metrics"]["val_accuracy"])
    head_log = kubectl.run("logs", "-n", namespace, f"{name}-head")
    assert status["workerRestarts"] >= 1, status
    assert status["progress"] == "200/200", head_log[-5000:]
    # Ray Train saw the rank fail and went on (the driver logs it), from the checkpoint of an
    # epoch at or after the one seen before the loss: no earlier epoch was reported again.
    noise = ("(RayTrainWorker", "\x1b[36m(RayTrainWorker")
    noteworthy = [ln for ln in head_log.splitlines() if not ln.startswith(noise)]
    assert "; resuming from the last checkpoint" in head_log, "\n".join(noteworthy[-60:])
    assert min(epochs) >= at_loss["epoch"], epochs
    events = kubectl.events_for("TrainingJob", name, namespace)
    assert any(e["reason"] == "WorkerReplaced" for e in events), [e["reason"] for e in events]


def test_image_that_does_not_exist_fails_the_job_within_a_minute(
    kubectl: Kubectl, namespace: str, checkpoint_claim: str, figures: Figures
) -> None:
    name = "no-image"
    job = example_job(name, namespace, claim=checkpoint_claim)
    job["spec"]["pod"] = {"image": "kubetrain.local/no-such-image:0.0.0"}
    kubectl.apply(job)
    status = wait_for_phase(kubectl, name, namespace, {"Failed"}, timeout=90)
    created = kubectl.get("trainingjob", name, namespace=namespace)
    assert created is not None
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    failed_at = parse_time(failed["lastTransitionTime"])
    created_at = parse_time(created["metadata"]["creationTimestamp"])
    assert failed_at is not None and created_at is not None
    took = (failed_at - created_at).total_seconds()
    figures.record("no_image.seconds_to_failed", took)
    assert took <= 60, status
    assert failed["reason"] == "ImagePullBackOff", failed
    assert "kubetrain.local/no-such-image:0.0.0" in failed["message"]
    events = kubectl.events_for("TrainingJob", name, namespace)
    assert any(e["reason"] == "ImagePullBackOff" and e["type"] == "Warning" for e in events), [
        (e["type"], e["reason"]) for e in events
    ]


def test_deleting_a_running_job_leaves_no_pods_and_no_services(
    kubectl: Kubectl, namespace: str, checkpoint_claim: str, figures: Figures
) -> None:
    name = "doomed"
    job = example_job(name, namespace, claim=checkpoint_claim)
    job["spec"]["training"]["epochs"] = 500
    kubectl.apply(job)
    wait_for_phase(kubectl, name, namespace, {"Running"}, timeout=600)
    selector = f"kubetrain.io/job-name={name}"
    assert kubectl.items("pods", namespace=namespace, selector=selector)
    t0 = time.monotonic()
    kubectl.delete("trainingjob", name, namespace=namespace)

    def leftovers() -> list[str]:
        found = kubectl.items("pods,services,configmaps,serviceaccounts,roles,rolebindings",
                              namespace=namespace, selector=selector)  # fmt: skip
        return [f"{o['kind']}/{o['metadata']['name']}" for o in found]

    wait_for("the job's objects to go", lambda: not leftovers() or None, timeout=120)
    figures.record("delete.seconds_to_nothing_left", round(time.monotonic() - t0, 1))
    assert kubectl.get("trainingjob", name, namespace=namespace) is None


@pytest.mark.parametrize(
    ("name", "claimed", "patch", "says"),
    [
        # examples/mnist-mlp.yaml without its claim: ./runs on no shared disk cannot work.
        ("no-claim", False, {}, "spec.checkpoint.claimName: storagePath './runs' is a local"),
        # A model that does not fit its data: knowable from the spec alone.
        ("mismatch", True, {"model": {"inputSize": 100}},
         "spec.model.inputSize: is 100 but each digits image has 1x28x28 = 784 features"),
        # Too little memory for a Ray node: `ray start` would fail in every worker pod, forever.
        ("tiny-memory", True, {"distributed": {"resourcesPerWorker": {"memory": "150Mi"}}},
         "spec.distributed.resourcesPerWorker.memory: 150Mi is too little"),
    ],
)  # fmt: skip
def test_a_spec_mistake_fails_the_job_within_10_s_with_no_pods(
    kubectl: Kubectl, namespace: str, checkpoint_claim: str, figures: Figures,
    name: str, claimed: bool, patch: Obj, says: str,
) -> None:  # fmt: skip
    job = example_job(name, namespace, claim=checkpoint_claim if claimed else None)
    for section, fields in patch.items():
        for key, value in fields.items():
            if isinstance(value, dict):
                job["spec"][section].setdefault(key, {}).update(value)
            else:
                job["spec"][section][key] = value
    t0 = time.monotonic()
    kubectl.apply(job)
    status = wait_for_phase(kubectl, name, namespace, {"Failed"}, timeout=30)
    took = round(time.monotonic() - t0, 1)
    figures.record(f"invalid_spec.{name}.seconds_to_failed", took)
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "InvalidSpec", failed
    assert says in failed["message"], failed
    assert status.get("restarts", 0) == 0
    assert took <= 10, status
    selector = f"kubetrain.io/job-name={name}"
    owned = kubectl.items("pods,services,configmaps", namespace=namespace, selector=selector)
    assert owned == [], [f"{o['kind']}/{o['metadata']['name']}" for o in owned]


def test_worker_pods_failing_the_same_way_on_every_start_fail_the_job_with_that_error(
    kubectl: Kubectl, namespace: str, checkpoint_claim: str, figures: Figures
) -> None:
    """A worker whose Ray node can never start is not healing: after a bounded number of
    replacements the job is Failed, quoting the error line (not the traceback's frames).

    Ray's own knob makes the object store 10% of a pod's free memory: under 75 MiB in a 512Mi
    worker, so `ray start` refuses on every start, while the 2Gi head starts (the failure seen
    with too little memory, which the spec check now refuses before any pod)."""
    name = "hopeless-workers"
    job = example_job(name, namespace, claim=checkpoint_claim)
    job["spec"]["distributed"]["resourcesPerWorker"]["memory"] = "512Mi"
    job["spec"]["pod"]["env"] = [
        {"name": "RAY_DEFAULT_OBJECT_STORE_MEMORY_PROPORTION", "value": "0.1"}
    ]
    t0 = time.monotonic()
    kubectl.apply(job)
    status = wait_for_phase(kubectl, name, namespace, {"Failed"}, timeout=420)
    figures.record("hopeless_workers.seconds_to_failed", round(time.monotonic() - t0, 1))
    figures.record("hopeless_workers.worker_restarts", status.get("workerRestarts"))
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "WorkersFailRepeatedly", failed
    assert "ValueError: Attempting to cap object store memory usage" in failed["message"], failed
    assert "^^^" not in failed["message"] and 'File "' not in failed["message"], failed
    assert status.get("restarts", 0) == 0
    assert 1 <= status.get("workerRestarts", 0) <= 2 * 3, status  # 2 workers, 3 replacements


def test_a_worker_error_that_would_recur_fails_the_job_at_once_without_retries(
    kubectl: Kubectl, namespace: str, checkpoint_claim: str, figures: Figures
) -> None:
    """A model entrypoint no pod can import passes the spec check (only the image can tell),
    fails in every worker, and would fail on every retry: the job is Failed/InvalidSpec at the
    first occurrence, with no Ray Train retry and no whole-job restart."""
    name = "no-module"
    job = example_job(name, namespace, claim=checkpoint_claim)
    job["spec"]["model"] = {"name": "custom", "entrypoint": "kubetrain_no_such_module:build"}
    job["spec"]["distributed"]["maxFailures"] = 3
    t0 = time.monotonic()
    kubectl.apply(job)
    status = wait_for_phase(kubectl, name, namespace, {"Failed"}, timeout=300)
    figures.record("recurring_error.seconds_to_failed", round(time.monotonic() - t0, 1))
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "InvalidSpec", failed
    says = "spec.model.entrypoint: cannot import module 'kubetrain_no_such_module'"
    assert says in failed["message"], failed
    assert status.get("restarts", 0) == 0 and status.get("workerRestarts", 0) == 0, status
    head_log = kubectl.run("logs", "-n", namespace, f"{name}-head")
    assert "resuming from the last checkpoint" not in head_log
