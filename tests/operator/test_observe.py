"""Failure classification from pod status dicts shaped like the kubelet's and scheduler's."""

from __future__ import annotations

import pytest

from kubetrain_operator.observe import PodView, key_line
from kubetrain_operator.render import Role
from tests.operator.helpers import head, terminated, unschedulable, waiting, worker


def test_identity_from_labels() -> None:
    view = PodView(worker(3, attempt=2))
    assert (view.name, view.role, view.rank, view.attempt) == ("t-worker-3", Role.WORKER, 3, 2)
    assert PodView(head()).rank is None
    assert PodView(head()).owned_by("0b9c5a1e-0000-4000-8000-000000000001")
    assert not PodView(head()).owned_by("someone-else")


def test_ready_needs_running_and_the_ready_condition() -> None:
    assert PodView(head(phase="Running", ready=True)).ready
    assert not PodView(head(phase="Running", ready=False)).ready
    assert not PodView(head(phase="Pending")).ready


def test_image_pull_errors_are_blockers_naming_pod_and_container() -> None:
    msg = 'rpc error: code = NotFound desc = failed to pull "kubetrain/trainer:bad": not found'
    fault = PodView(worker(0, containers=waiting("ErrImagePull", msg))).blocker()
    assert fault is not None
    assert (fault.reason, fault.pod, fault.container) == ("ErrImagePull", "t-worker-0", "worker")
    assert "kubetrain/trainer:bad" in fault.message and "not found" in fault.message
    backoff = PodView(worker(0, containers=waiting("ImagePullBackOff", "Back-off pulling")))
    assert backoff.blocker().reason == "ImagePullBackOff"  # type: ignore[union-attr]
    invalid = PodView(worker(0, containers=waiting("InvalidImageName", "bad ref")))
    assert invalid.blocker().reason == "ErrImagePull"  # type: ignore[union-attr]


def test_unschedulable_quotes_the_scheduler() -> None:
    fault = PodView(worker(1, conditions=unschedulable())).blocker()
    assert fault is not None and fault.reason == "Unschedulable"
    assert fault.message == (
        "pod t-worker-1: unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
    )


def test_crash_loop_quotes_the_last_exit() -> None:
    last = {"exitCode": 1, "reason": "Error", "message": "ModuleNotFoundError: No module named x"}
    fault = PodView(
        worker(0, phase="Running", containers=waiting("CrashLoopBackOff", "back-off 5m", last=last))
    ).blocker()
    assert fault is not None and fault.reason == "CrashLoopBackOff"
    assert "last exit code 1" in fault.message and "No module named x" in fault.message


def test_config_error_is_a_blocker_with_the_kubelets_reason() -> None:
    fault = PodView(
        worker(0, containers=waiting("CreateContainerConfigError", 'secret "s3" not found'))
    ).blocker()
    assert fault is not None
    assert (fault.reason, fault.detail) == ("CreateContainerConfigError", 'secret "s3" not found')


def test_a_healthy_pending_pod_has_no_blocker() -> None:
    assert PodView(worker(0)).blocker() is None
    assert PodView(worker(0, containers=waiting("ContainerCreating"))).blocker() is None


def test_oom_killed_is_retryable_only_when_configured() -> None:
    pod = PodView(worker(0, phase="Failed", containers=terminated(137, reason="OOMKilled")))
    fault = pod.failure(retry_on_oom=False)
    assert fault is not None
    assert (fault.reason, fault.exit_code, fault.retryable) == ("OOMKilled", 137, False)
    assert "memory" in fault.message
    assert pod.failure(retry_on_oom=True).retryable  # type: ignore[union-attr]


def test_exit_codes_1_to_127_are_permanent_and_quote_the_error_line_of_the_log_tail() -> None:
    log_tail = "Traceback (most recent call last):\n  ...\nValueError: bad learning rate"
    pod = PodView(head(phase="Failed", containers=terminated(1, message=log_tail, name="head")))
    fault = pod.failure(retry_on_oom=False)
    assert fault is not None
    assert (fault.reason, fault.exit_code, fault.retryable) == ("NonZeroExit", 1, False)
    assert (
        fault.message
        == "pod t-head container head: exited with code 1: ValueError: bad learning rate"
    )


# The tail of a worker pod whose `ray start` refuses too little memory, as the kubelet quotes it.
RAY_START_TAIL = (
    '  File "/usr/local/lib/python3.11/site-packages/ray/_private/services.py", line 2287, in '
    "determine_plasma_store_config\n    raise ValueError(\n    ^^^^^^^^^^^^^^^^^\n"
    "ValueError: Attempting to cap object store memory usage at 24454348 bytes, but the minimum "
    "allowed is 78643200 bytes.\n^^^^^^^^^^^^\n"
)


@pytest.mark.parametrize(
    ("tail", "line"),
    [
        (RAY_START_TAIL, "ValueError: Attempting to cap object store memory usage at 24454348 "
                         "bytes, but the minimum allowed is 78643200 bytes."),
        ("epoch 3/10\nTraceback (most recent call last):\n  File \"x.py\", line 1, in f\n"
         "ray.exceptions.RaySystemError: System error: lost\n", "ray.exceptions.RaySystemError: "
         "System error: lost"),
        ("kubetrain driver: invalid job: spec.model.inputSize is 5\n",
         "kubetrain driver: invalid job: spec.model.inputSize is 5"),
        ("loading\nsegfault in the data loader\n^^^^\n", "segfault in the data loader"),
    ],
)  # fmt: skip
def test_the_error_line_is_picked_from_frames_and_markers(tail: str, line: str) -> None:
    assert key_line(tail) == line
    pod = PodView(worker(0, phase="Failed", containers=terminated(1, message=tail)))
    fault = pod.failure(retry_on_oom=False)
    assert fault is not None and fault.detail == f"exited with code 1: {line}"
    assert "^^^" not in fault.message


def test_a_head_exiting_2_fails_the_job_as_invalid_not_as_a_crash() -> None:
    said = "kubetrain driver: spec.model.inputSize is 5 but each sample has 3 features"
    pod = PodView(head(phase="Failed", containers=terminated(2, message=said, name="head")))
    fault = pod.failure(retry_on_oom=False)
    assert fault is not None
    assert (fault.reason, fault.retryable) == ("InvalidSpec", False)
    assert fault.detail == f"exited with code 2: {said}"
    # A worker pod's exit 2 is its Ray node's, not the driver's verdict.
    worker_pod = PodView(worker(0, phase="Failed", containers=terminated(2)))
    assert worker_pod.failure(retry_on_oom=False).reason == "NonZeroExit"  # type: ignore[union-attr]


def test_exit_codes_128_to_255_are_retryable() -> None:
    for code in (128, 137, 143, 255):
        pod = PodView(worker(0, phase="Failed", containers=terminated(code)))
        assert pod.failure(retry_on_oom=False).retryable, code  # type: ignore[union-attr]
    assert (
        not PodView(worker(0, phase="Failed", containers=terminated(127)))
        .failure(retry_on_oom=True)
        .retryable
    )  # type: ignore[union-attr]


def test_evicted_pod_without_container_exit_is_retryable() -> None:
    pod = PodView(
        worker(0, phase="Failed", reason="Evicted", message="The node was low on resource: memory.")
    )
    fault = pod.failure(retry_on_oom=False)
    assert fault is not None
    assert (fault.reason, fault.retryable, fault.container) == ("Evicted", True, None)
    assert "low on resource" in fault.message


def test_long_termination_messages_keep_their_end() -> None:
    text = "x" * 5000 + "THE END"
    pod = PodView(head(phase="Failed", containers=terminated(2, message=text)))
    fault = pod.failure(retry_on_oom=False)
    assert fault is not None and fault.message.endswith("THE END") and len(fault.detail) < 1100


def test_running_and_finished_pods_are_not_failures() -> None:
    assert PodView(worker(0, phase="Running")).failure(retry_on_oom=False) is None
    assert PodView(worker(0, phase="Succeeded")).blocker() is None
