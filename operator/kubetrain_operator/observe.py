"""Typed views over raw pod dicts: what a pod is, and what went wrong with it, if anything.

Handlers and the policy never index pod JSON; they ask a `PodView`. The views read what the kubelet
and the scheduler write (`status.phase`, `conditions`, `containerStatuses`), so tests can build
them from realistic pod status dicts, and the kube tests can drive them by patching pod status.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubetrain.api import Reason
from kubetrain.api.status import fault_message
from kubetrain.pods.contract import EXIT_INVALID
from kubetrain_operator.render.names import (
    LABEL_ATTEMPT,
    LABEL_RANK,
    LABEL_ROLE,
    Role,
)
from kubetrain_operator.timestamps import parse_time

# Waiting reasons that mean "the image cannot be pulled" (the kubelet retries them with backoff).
_IMAGE_PULL = {
    "ErrImagePull": Reason.ERR_IMAGE_PULL,
    "ImagePullBackOff": Reason.IMAGE_PULL_BACK_OFF,
    "InvalidImageName": Reason.ERR_IMAGE_PULL,
    "ErrImageNeverPull": Reason.ERR_IMAGE_PULL,
}
# Waiting reasons that block a container from starting until something outside changes.
_CONFIG_ERRORS = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")

# Exit codes 128+n mean "killed by signal n": preemption, eviction, node loss. Worth a retry.
_FIRST_SIGNAL_EXIT = 128
_MAX_MESSAGE = 1000  # characters of a termination message kept in status and events


def _tail(text: str, limit: int = _MAX_MESSAGE) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]


# `ValueError: …`, `ray.exceptions.RaySystemError: …`, `kubetrain: …`: a line that says
# what went wrong, as opposed to a traceback's frames and its `^^^^` markers.
_ERROR_LINE = re.compile(
    r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Failed|Mismatch|Recur)"
    r"(?:\(.*\))?: \S|^kubetrain[\w ]*: \S"
)
_FRAME_NOISE = re.compile(
    r"^(?:Traceback \(most recent call last\):|File \".*\", line \d+|[\^~ ]+)$"
)


def key_line(text: str) -> str:
    """The line of a log tail or termination message that names the error: the last exception
    line, else the last line that is not part of a traceback's frames."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if _ERROR_LINE.match(line):
            return line
    meaningful = [line for line in lines if not _FRAME_NOISE.match(line)]
    return meaningful[-1] if meaningful else text.strip()


@dataclass(frozen=True)
class Fault:
    """Something wrong with one pod, named the way the user will read it."""

    reason: str  # a `Reason` value where one fits, else the kubelet's own reason
    pod: str
    container: str | None
    detail: str
    retryable: bool
    exit_code: int | None = None

    @property
    def message(self) -> str:
        return fault_message(self.pod, self.container, self.detail)


def owned_by(obj: Mapping[str, Any] | None, uid: str) -> bool:
    """Whether `obj` has an owner reference to the object with `uid` (None owns nothing)."""
    refs = ((obj or {}).get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid for ref in refs)


# Pod conditions that say the pod was taken, not that it failed: Kueue marks the pods of a
# workload it evicts (TerminationTarget/StoppedByKueue) before deleting them, and Kubernetes 1.26+
# marks a pod the scheduler preempts (DisruptionTarget/PreemptionByScheduler).
_PREEMPTION_CONDITIONS = (
    ("TerminationTarget", ("StoppedByKueue",)),
    ("DisruptionTarget", ("PreemptionByScheduler", "PreemptionByKubeScheduler")),
)


@dataclass(frozen=True)
class PodView:
    raw: Mapping[str, Any]

    # ------------------------------------------------------------------ identity

    @property
    def meta(self) -> Mapping[str, Any]:
        return self.raw.get("metadata") or {}

    @property
    def name(self) -> str:
        return str(self.meta.get("name", ""))

    @property
    def labels(self) -> Mapping[str, str]:
        return self.meta.get("labels") or {}

    @property
    def role(self) -> Role | None:
        try:
            return Role(self.labels.get(LABEL_ROLE, ""))
        except ValueError:
            return None

    @property
    def rank(self) -> int | None:
        value = self.labels.get(LABEL_RANK)
        return int(value) if value is not None and value.isdigit() else None

    @property
    def attempt(self) -> int | None:
        value = self.labels.get(LABEL_ATTEMPT)
        return int(value) if value is not None and value.isdigit() else None

    def owned_by(self, uid: str) -> bool:
        return owned_by(self.raw, uid)

    @property
    def created(self) -> datetime | None:
        return parse_time(self.meta.get("creationTimestamp"))

    @property
    def deleting(self) -> bool:
        return self.meta.get("deletionTimestamp") is not None

    # ------------------------------------------------------------------ state

    @property
    def status(self) -> Mapping[str, Any]:
        return self.raw.get("status") or {}

    @property
    def phase(self) -> str:
        return str(self.status.get("phase", "Pending"))

    @property
    def running(self) -> bool:
        return self.phase == "Running"

    @property
    def succeeded(self) -> bool:
        return self.phase == "Succeeded"

    @property
    def finished(self) -> bool:
        return self.phase in ("Succeeded", "Failed")

    def condition(self, ctype: str) -> Mapping[str, Any] | None:
        for cond in self.status.get("conditions") or []:
            if cond.get("type") == ctype:
                return dict(cond)
        return None

    @property
    def gates(self) -> tuple[str, ...]:
        """The scheduling gates that hold the pod back (Kueue's admission), if any."""
        gates = (self.raw.get("spec") or {}).get("schedulingGates") or []
        return tuple(str(g.get("name", "")) for g in gates)

    @property
    def preempted(self) -> str | None:
        """Who took the pod for other work, and why: Kueue stopping its workload, or the scheduler
        preempting it for a pod of higher priority. None for any other end."""
        for ctype, reasons in _PREEMPTION_CONDITIONS:
            cond = self.condition(ctype) or {}
            if cond.get("status") == "True" and cond.get("reason") in reasons:
                return str(cond.get("message") or cond.get("reason"))
        return None

    @property
    def gated(self) -> bool:
        """Waiting for whoever holds its scheduling gates: queued, not stuck."""
        scheduled = self.condition("PodScheduled") or {}
        held = (scheduled.get("status"), scheduled.get("reason")) == ("False", "SchedulingGated")
        return not self.finished and (bool(self.gates) or held)

    @property
    def ready(self) -> bool:
        cond = self.condition("Ready")
        return self.running and cond is not None and cond.get("status") == "True"

    def _containers(self) -> list[Mapping[str, Any]]:
        return list(self.status.get("containerStatuses") or [])

    # ------------------------------------------------------------------ faults

    def failure(self, *, retry_on_oom: bool) -> Fault | None:
        """Why a pod in phase Failed failed: OOMKilled, an exit code, or the kubelet's reason."""
        if self.phase != "Failed":
            return None
        for cs in self._containers():
            terminated = (cs.get("state") or {}).get("terminated")
            if not terminated or terminated.get("exitCode", 0) == 0:
                continue
            code = int(terminated["exitCode"])
            container = str(cs.get("name", ""))
            text = _tail(str(terminated.get("message") or ""))
            if terminated.get("reason") == "OOMKilled":
                detail = f"OOMKilled (exit code {code}): raise resourcesPerWorker.memory"
                return Fault(
                    Reason.OOM_KILLED.value, self.name, container, detail, retry_on_oom, code
                )
            detail = f"exited with code {code}" + (f": {key_line(text)}" if text else "")
            retryable = code >= _FIRST_SIGNAL_EXIT
            invalid = code == EXIT_INVALID and self.role is Role.HEAD  # the head's verdict
            exit_reason = Reason.INVALID_SPEC if invalid else Reason.NON_ZERO_EXIT
            return Fault(exit_reason.value, self.name, container, detail, retryable, code)
        # No container exit to blame: evicted, node lost, admission error. Worth another try.
        reason = str(self.status.get("reason") or "PodFailed")
        detail = str(self.status.get("message") or f"pod failed ({reason})")
        return Fault(reason, self.name, None, _tail(detail), True)

    def blocker(self) -> Fault | None:
        """What keeps a pod from running: image pull, scheduling, a crash loop, bad config."""
        if self.finished:
            return None
        for cs in self._containers():
            waiting = (cs.get("state") or {}).get("waiting") or {}
            reason = str(waiting.get("reason") or "")
            container = str(cs.get("name", ""))
            message = _tail(str(waiting.get("message") or ""))
            if reason in _IMAGE_PULL:
                detail = f"cannot pull image {cs.get('image', '')!s}" + (
                    f": {message}" if message else ""
                )
                return Fault(_IMAGE_PULL[reason].value, self.name, container, detail, False)
            if reason == "CrashLoopBackOff":
                last = (cs.get("lastState") or {}).get("terminated") or {}
                code = last.get("exitCode")
                text = _tail(str(last.get("message") or ""))
                detail = f"crash loop (last exit code {code})" + (
                    f": {key_line(text)}" if text else ""
                )
                return Fault(
                    Reason.CRASH_LOOP_BACK_OFF.value, self.name, container, detail, False, code
                )
            if reason in _CONFIG_ERRORS:
                return Fault(reason, self.name, container, message or reason, False)
        scheduled = self.condition("PodScheduled")
        if scheduled and (scheduled.get("status"), scheduled.get("reason")) == (
            "False",
            "Unschedulable",
        ):
            detail = f"unschedulable: {scheduled.get('message', '')}".rstrip(": ")
            return Fault(Reason.UNSCHEDULABLE.value, self.name, None, detail, False)
        return None
