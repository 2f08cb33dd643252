"""Every failure is named in the status and in an Event, with the pod and container at fault,
within seconds of the kubelet reporting it; none leaves a job Starting or Running."""

from __future__ import annotations

import time

import pytest

from tests.operator.kube.conftest import Jobs, Kubelet, wait_for

pytestmark = pytest.mark.kube

SECONDS = 10.0  # "within seconds": the operator reacts to the pod event, not to a resync


def _failed(jobs: Jobs, name: str, reason: str, timeout: float = SECONDS) -> dict:  # type: ignore[type-arg]
    jobs.wait_phase(name, "Failed", timeout=timeout)
    failed = jobs.condition(name, "Failed")
    assert failed is not None and failed["reason"] == reason, failed
    return failed


def _warned(jobs: Jobs, name: str, reason: str, *fragments: str) -> None:
    def found() -> bool:
        return any(
            e["type"] == "Warning" and e["reason"] == reason
            and all(f in e["message"] for f in fragments)
            for e in jobs.events(name)
        )  # fmt: skip

    wait_for(f"a Warning event {reason} naming {fragments}", found, timeout=SECONDS)


def test_image_pull_error_is_named_at_once_then_fails(jobs: Jobs, kubelet: Kubelet) -> None:
    jobs.apply("img", distributed={"workers": 1})
    jobs.wait_pods("img", 2)
    started = time.monotonic()
    kubelet.waiting(
        "img-worker-0", "ErrImagePull",
        'rpc error: code = NotFound desc = failed to pull "kubetrain/trainer:missing"',
    )  # fmt: skip
    ready = wait_for(
        "PodsReady=False/ErrImagePull",
        lambda: (c := jobs.condition("img", "PodsReady")) and c["reason"] == "ErrImagePull" and c,
    )
    assert time.monotonic() - started < SECONDS
    assert "pod img-worker-0 container worker" in ready["message"]
    # The operator under test has a 3 s grace for image pulls: back off at once, as a kubelet
    # does, so that the grace runs out on ImagePullBackOff however long the checks below take.
    kubelet.waiting("img-worker-0", "ImagePullBackOff", "Back-off pulling image")
    _warned(jobs, "img", "ErrImagePull", "img-worker-0", "kubetrain/trainer:missing")
    failed = _failed(jobs, "img", "ImagePullBackOff")
    assert "pod img-worker-0 container worker" in failed["message"]


def test_unschedulable_is_named_then_fails_at_the_startup_deadline(
    jobs: Jobs, kubelet: Kubelet
) -> None:
    jobs.apply("big", distributed={"workers": 1}, runPolicy={"startupDeadlineSeconds": 4})
    jobs.wait_pods("big", 2)
    message = "0/4 nodes are available: 4 Insufficient nvidia.com/gpu."
    kubelet.unschedulable("big-worker-0", message)
    wait_for(
        "PodsReady=False/Unschedulable",
        lambda: (c := jobs.condition("big", "PodsReady")) and c["reason"] == "Unschedulable",
        timeout=SECONDS,
    )
    _warned(jobs, "big", "Unschedulable", "big-worker-0", "Insufficient nvidia.com/gpu")
    failed = _failed(jobs, "big", "Unschedulable")
    assert "startupDeadlineSeconds (4 s)" in failed["message"]


def test_oom_killed(jobs: Jobs, kubelet: Kubelet) -> None:
    jobs.apply("oom", distributed={"workers": 2})
    kubelet.run_all(jobs.wait_pods("oom", 3))
    jobs.wait_phase("oom", "Running")
    kubelet.exit("oom-worker-1", 137, reason="OOMKilled")
    failed = _failed(jobs, "oom", "OOMKilled")
    assert "pod oom-worker-1 container worker" in failed["message"]
    _warned(jobs, "oom", "OOMKilled", "oom-worker-1")


def test_oom_killed_is_retried_when_configured(jobs: Jobs, kubelet: Kubelet) -> None:
    jobs.apply("oom2", distributed={"workers": 1}, runPolicy={"retryOnOom": True})
    kubelet.run_all(jobs.wait_pods("oom2", 2))
    jobs.wait_phase("oom2", "Running")
    kubelet.exit("oom2-head", 137, reason="OOMKilled")
    wait_for("a restart", lambda: jobs.status("oom2").get("restarts") == 1, timeout=SECONDS)
    restarting = jobs.condition("oom2", "Restarting")
    assert restarting is not None and "OOMKilled" in restarting["message"]


def test_crash_loop_back_off(jobs: Jobs, kubelet: Kubelet) -> None:
    jobs.apply("loop", distributed={"workers": 1})
    jobs.wait_pods("loop", 2)
    last = {"exitCode": 1, "reason": "Error", "message": "ImportError: no module named kubetrain"}
    kubelet.waiting("loop-head", "CrashLoopBackOff", "back-off 40s restarting failed container",
                    last=last)  # fmt: skip
    failed = _failed(jobs, "loop", "CrashLoopBackOff")
    assert "pod loop-head container head" in failed["message"]
    assert "ImportError" in failed["message"]


def test_non_zero_exit_quotes_the_last_log_lines(jobs: Jobs, kubelet: Kubelet) -> None:
    jobs.apply("bad", distributed={"workers": 1})
    kubelet.run_all(jobs.wait_pods("bad", 2))
    jobs.wait_phase("bad", "Running")
    tail = "epoch 3/10 loss 0.41\nTraceback (most recent call last):\nRuntimeError: loss is NaN"
    kubelet.exit("bad-head", 1, message=tail)
    failed = _failed(jobs, "bad", "NonZeroExit")
    assert "pod bad-head container head: exited with code 1" in failed["message"]
    assert "RuntimeError: loss is NaN" in failed["message"]
    assert "RuntimeError: loss is NaN" in jobs.status("bad")["message"]
    _warned(jobs, "bad", "NonZeroExit", "bad-head", "loss is NaN")
