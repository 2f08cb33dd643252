"""Following a pod's log as `kubetrain logs -f` does: across the pod's replacement.

The operator replaces a failed worker pod under the same name (a new uid), and a whole-job
restart replaces the head too. `kubectl logs -f` stops at the first pod's end; `follow_pod` goes on
with the next pod of that name, from its start, until the job is over.

Deciding is separate from doing: `decide` is a pure function of what was seen (the pod now,
whose logs were read to their end, whether the job is over), and `follow_pod` carries it out
through a `LogSource` (the client's, over the API; the tests', a scripted fake). Log lines come
with the kubelet's timestamps, so a stream that broke off is resumed where it stopped, without
repeating a line.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Protocol

from kubetrain.client.errors import LogUnavailable, PodNotFound


@dataclass(frozen=True, order=True)
class LogStamp:
    """A log line's time as the kubelet writes it (RFC 3339 with nanoseconds), comparable."""

    second: datetime  # UTC, to the second
    nanos: int

    @classmethod
    def parse(cls, text: str) -> LogStamp | None:
        """`2024-05-01T12:00:00.123456789Z` (or with an offset); None if it is not one."""
        try:
            date, rest = text[:19], text[19:]
            nanos, zone = 0, rest
            if rest.startswith("."):
                digits = len(rest) - len(rest[1:].lstrip("0123456789"))
                fraction, zone = rest[1:digits], rest[digits:]
                nanos = int(fraction.ljust(9, "0")[:9]) if fraction else 0
            offset = "+00:00" if zone in ("Z", "z") else zone
            second = datetime.fromisoformat(date + offset).astimezone(timezone.utc)
        except ValueError:
            return None
        return cls(second, nanos)

    def since_time(self) -> str:
        """The `sinceTime` that asks for this line again (to the second: the API's precision)."""
        return self.second.strftime("%Y-%m-%dT%H:%M:%SZ")


def split_stamp(line: str) -> tuple[LogStamp | None, str]:
    """A `timestamps=true` log line: (its time, its text); (None, line) if it has no time."""
    head, sep, text = line.partition(" ")
    stamp = LogStamp.parse(head) if sep else None
    return (stamp, text) if stamp is not None else (None, line)


@dataclass(frozen=True)
class PodState:
    """What following a pod's log needs to know of the pod."""

    uid: str
    phase: str  # Pending, Running, Succeeded, Failed, Unknown
    started: bool  # a container runs or has run: there is a log to read
    ended: bool  # its containers have all stopped: its log will not grow

    @classmethod
    def of(cls, pod: Mapping[str, Any]) -> PodState:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        states = [cs.get("state") or {} for cs in status.get("containerStatuses") or []]
        phase = str(status.get("phase") or "Pending")
        started = any("running" in s or "terminated" in s for s in states)
        ended = phase in ("Succeeded", "Failed") or (
            bool(states) and all("terminated" in s for s in states)
        )
        return cls(str(meta.get("uid") or ""), phase, started, ended)


class Step(Enum):
    STREAM = "stream"  # read the pod's log (from where we stopped, if it is the same pod)
    WAIT = "wait"  # for the pod to change: to start, to end, to be replaced
    STOP = "stop"  # the job is over and there is nothing left to read


def decide(
    pod: PodState | None, *, read_to_end: Collection[str], job_over: Callable[[], bool]
) -> Step:
    """What to do next, given the pod now (None: there is none) and the uids of the pods whose
    log was read to its end. `job_over` is asked only when it matters."""
    if pod is not None and pod.started and pod.uid not in read_to_end:
        return Step.STREAM
    return Step.STOP if job_over() else Step.WAIT


class LogSource(Protocol):
    """One pod name's log and state, and its job's end, as `follow_pod` needs them."""

    def pod(self) -> tuple[PodState | None, str]:
        """The pod now (None if there is none), and the resourceVersion to watch from."""
        ...

    def job_over(self) -> bool:
        """Whether the job has ended (Succeeded, Failed) or is gone."""
        ...

    def stream(self, *, since: LogStamp | None) -> Iterable[str]:
        """The current pod's log lines with their timestamps, following until the container
        stops or the connection ends; from `since` (to the second) when given. Raises
        LogUnavailable when the container has no log yet, PodNotFound when the pod is gone."""
        ...

    def wait_for_change(self, resource_version: str, timeout: float) -> None:
        """Returns when the pod changes after `resource_version` (or after `timeout` s)."""
        ...


def _waiting_note(name: str, pod: PodState | None) -> str:
    if pod is None:
        return f"waiting for pod {name} to be created"
    if not pod.started:
        return f"waiting for pod {name} to start ({pod.phase})"
    return f"pod {name} has stopped; waiting for the job to replace it or to end"


def follow_pod(
    source: LogSource,
    name: str,
    *,
    note: Callable[[str], None] = lambda _: None,
    wait_seconds: float = 10.0,
) -> Iterator[str]:
    """The log lines of pod `name` and of every pod that replaces it under that name, until the
    job is over. `note` hears, once each, what the log itself does not say: that it waits for
    the pod, and that the pod was replaced (and this is the new one's log from its start)."""
    read_to_end: set[str] = set()
    current: str | None = None  # the uid whose log is being read
    last: LogStamp | None = None  # the last line read of it
    said: str | None = None
    while True:
        pod, version = source.pod()
        step = decide(pod, read_to_end=read_to_end, job_over=source.job_over)
        if step is Step.STOP:
            return
        if step is Step.WAIT:
            waiting = _waiting_note(name, pod)
            if waiting != said:
                note(waiting)
                said = waiting
            source.wait_for_change(version, wait_seconds)
            continue
        assert pod is not None
        said = None
        if pod.uid != current:
            if current is not None:
                note(f"pod {name} was replaced (uid {pod.uid}); its log from the start:")
            current, last = pod.uid, None
        new_lines = False
        try:
            for raw in source.stream(since=last):
                stamp, text = split_stamp(raw)
                if stamp is not None:
                    if last is not None and stamp <= last:
                        continue  # read before the stream broke off
                    last = stamp
                new_lines = True
                yield text
        except (LogUnavailable, PodNotFound):  # not started yet, or gone since we looked
            source.wait_for_change(version, wait_seconds)
            continue
        after, version = source.pod()
        if after is None or after.uid != current or after.ended:
            read_to_end.add(current)
        elif not new_lines:
            # The stream ended with nothing new while the pod still runs: its container has
            # just stopped and the kubelet has not said so yet. Wait for the pod to change.
            source.wait_for_change(version, wait_seconds)
