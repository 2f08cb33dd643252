"""`kubetrain logs -f` across a pod's replacement, stepped through a scripted fake: the pod, the
job's end and each log stream change only when the follower waits or a stream ends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pytest

from kubetrain.client import LogUnavailable, PodNotFound
from kubetrain.client.follow import LogStamp, PodState, Step, decide, follow_pod, split_stamp

POD = "j-worker-0"
Change = Callable[["World"], None]


def at(second: int, text: str, nanos: str = "5") -> str:
    """A `timestamps=true` log line, `second` seconds into 12:00."""
    return f"2024-05-01T12:00:{second:02d}.{nanos}Z {text}"


def running(uid: str) -> PodState:
    return PodState(uid, "Running", started=True, ended=False)


def pending(uid: str) -> PodState:
    return PodState(uid, "Pending", started=False, ended=False)


def ended(uid: str) -> PodState:
    return PodState(uid, "Failed", started=True, ended=True)


@dataclass
class Stream:
    lines: list[str] | LogUnavailable | PodNotFound
    then: Change | None = None  # what has happened once the stream ends


@dataclass
class World:
    pod_now: PodState | None
    over: bool = False
    streams: list[Stream] = field(default_factory=list)
    on_wait: list[Change] = field(default_factory=list)  # one per wait, in order
    since: list[LogStamp | None] = field(default_factory=list)
    waits: int = 0

    # the LogSource
    def pod(self) -> tuple[PodState | None, str]:
        return self.pod_now, f"rv-{self.waits}"

    def job_over(self) -> bool:
        return self.over

    def stream(self, *, since: LogStamp | None) -> Iterator[str]:
        self.since.append(since)
        assert self.streams, "streamed more often than scripted"
        step = self.streams.pop(0)
        if isinstance(step.lines, Exception):
            raise step.lines
        yield from step.lines
        if step.then is not None:
            step.then(self)

    def wait_for_change(self, resource_version: str, timeout: float) -> None:
        assert self.on_wait, f"waited ({resource_version}) with nothing scripted to happen"
        self.waits += 1
        self.on_wait.pop(0)(self)


def set_pod(pod: PodState | None, *, over: bool = False) -> Change:
    def change(world: World) -> None:
        world.pod_now, world.over = pod, over

    return change


def run(world: World) -> tuple[list[str], list[str]]:
    notes: list[str] = []
    lines = list(follow_pod(world, POD, note=notes.append))
    assert not world.streams and not world.on_wait, "the script was not played to its end"
    return lines, notes


def test_follows_a_worker_across_its_replacement_until_the_job_ends() -> None:
    world = World(
        running("a"),
        streams=[
            Stream([at(1, "Ray runtime started."), at(2, "epoch 1")], then=set_pod(None)),
            Stream([at(9, "Ray runtime started.")], then=set_pod(ended("b"), over=True)),
        ],
        on_wait=[set_pod(pending("b")), set_pod(running("b"))],
    )
    lines, notes = run(world)
    assert lines == ["Ray runtime started.", "epoch 1", "Ray runtime started."]
    assert notes == [
        f"waiting for pod {POD} to be created",
        f"waiting for pod {POD} to start (Pending)",
        f"pod {POD} was replaced (uid b); its log from the start:",
    ]
    assert world.since == [None, None]  # the new pod's log from its start


def test_a_stream_that_broke_off_resumes_where_it_stopped_without_repeating_a_line() -> None:
    world = World(
        running("a"),
        streams=[
            Stream([at(1, "one"), at(2, "two", nanos="1")]),  # broke off: the pod still runs
            # sinceTime is to the second: the server sends second 2 again, then what is new
            Stream(
                [at(2, "two", nanos="1"), at(2, "three", nanos="2"), at(3, "four")],
                then=set_pod(ended("a"), over=True),
            ),
        ],
    )
    lines, notes = run(world)
    assert lines == ["one", "two", "three", "four"] and notes == []
    assert world.since[1] == LogStamp.parse("2024-05-01T12:00:02.1Z")
    assert world.since[1] is not None and world.since[1].since_time() == "2024-05-01T12:00:02Z"


def test_nothing_to_follow_when_the_job_is_over_and_its_pod_gone() -> None:
    assert run(World(None, over=True)) == ([], [])


def test_a_pod_that_never_started_before_the_job_ended_stops_the_follow() -> None:
    world = World(pending("a"), on_wait=[set_pod(pending("a"), over=True)])
    assert run(world) == ([], [f"waiting for pod {POD} to start (Pending)"])


def test_a_container_with_no_log_yet_is_waited_for() -> None:
    world = World(
        running("a"),
        streams=[
            Stream(LogUnavailable("waiting to start")),
            Stream([at(1, "up")], then=set_pod(ended("a"), over=True)),
        ],
        on_wait=[set_pod(running("a"))],
    )
    assert run(world) == (["up"], [])


def test_a_pod_gone_between_the_look_and_the_stream_is_looked_for_again() -> None:
    world = World(
        running("a"),
        streams=[
            Stream(PodNotFound('pod "j-worker-0" not found')),
            Stream([at(1, "b's first")], then=set_pod(None, over=True)),
        ],
        on_wait=[set_pod(running("b"))],
    )
    lines, notes = run(world)
    assert lines == ["b's first"]
    assert notes == [f"pod {POD} was replaced (uid b); its log from the start:"]


def test_a_stream_that_ends_with_nothing_new_waits_for_the_pod_instead_of_asking_again() -> None:
    """The kubelet ends the stream as the container stops, a moment before the pod says so:
    asked again at once, it has nothing new. Then the follower waits for the pod to say it
    stopped, reads what may be left once more, and is done."""
    world = World(
        running("a"),
        streams=[Stream([at(1, "last words")]), Stream([at(1, "last words")]), Stream([])],
        on_wait=[set_pod(ended("a"), over=True)],
    )
    assert run(world) == (["last words"], [])
    assert world.waits == 1


def test_a_stopped_pod_of_a_running_job_is_read_then_its_replacement_awaited() -> None:
    world = World(
        ended("a"),
        streams=[
            Stream([at(1, "Traceback ...")]),
            Stream([at(7, "started again")], then=set_pod(None, over=True)),
        ],
        on_wait=[set_pod(running("b"))],
    )
    lines, notes = run(world)
    assert lines == ["Traceback ...", "started again"]
    assert notes == [
        f"pod {POD} has stopped; waiting for the job to replace it or to end",
        f"pod {POD} was replaced (uid b); its log from the start:",
    ]


@pytest.mark.parametrize(
    ("pod", "read", "over", "step"),
    [
        (running("a"), set(), False, Step.STREAM),
        (running("a"), set(), True, Step.STREAM),  # its log is read first
        (ended("a"), set(), True, Step.STREAM),
        (ended("a"), {"a"}, False, Step.WAIT),  # for its replacement
        (ended("a"), {"a"}, True, Step.STOP),
        (pending("a"), set(), False, Step.WAIT),
        (pending("a"), set(), True, Step.STOP),
        (None, set(), False, Step.WAIT),
        (None, {"a"}, True, Step.STOP),
    ],
)  # fmt: skip
def test_decide(pod: PodState | None, read: set[str], over: bool, step: Step) -> None:
    asked: list[bool] = []

    def job_over() -> bool:
        asked.append(True)
        return over

    assert decide(pod, read_to_end=read, job_over=job_over) is step
    if step is Step.STREAM:
        assert not asked, "a pod with a log to read needs no look at the job"


def test_log_stamps_order_to_the_nanosecond_and_parse_the_kubelets_forms() -> None:
    a = LogStamp.parse("2024-05-01T12:00:00.123456789Z")
    b = LogStamp.parse("2024-05-01T12:00:00.12345679Z")  # trailing zeros trimmed (RFC3339Nano)
    c = LogStamp.parse("2024-05-01T14:00:01+02:00")
    assert a is not None and b is not None and c is not None
    assert a < b < c
    assert a.nanos == 123456789 and b.nanos == 123456790
    assert c.second == datetime(2024, 5, 1, 12, 0, 1, tzinfo=timezone.utc)
    assert LogStamp.parse("not a time") is None
    assert split_stamp("2024-05-01T12:00:00Z hello world") == (
        LogStamp.parse("2024-05-01T12:00:00Z"), "hello world"
    )  # fmt: skip
    assert split_stamp("no stamp here") == (None, "no stamp here")
    assert split_stamp("") == (None, "")


def test_pod_state_from_the_kubelets_status() -> None:
    def pod(phase: str, *states: dict[str, object]) -> dict[str, object]:
        statuses = [{"name": "worker", "state": s} for s in states]
        return {"metadata": {"uid": "u"}, "status": {"phase": phase, "containerStatuses": statuses}}

    assert PodState.of({"metadata": {"uid": "u"}}) == PodState("u", "Pending", False, False)
    waiting = pod("Pending", {"waiting": {"reason": "ContainerCreating"}})
    assert PodState.of(waiting) == PodState("u", "Pending", False, False)
    assert PodState.of(pod("Running", {"running": {}})) == PodState("u", "Running", True, False)
    stopped = pod("Running", {"terminated": {"exitCode": 1}})  # the pod not updated yet
    assert PodState.of(stopped) == PodState("u", "Running", True, True)
    assert PodState.of(pod("Failed", {"terminated": {}})).ended
