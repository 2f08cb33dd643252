"""The per-job loop: pokes coalesce, requeue times and the error backoff are honoured, stop and
gone end it.

The loop's time is a FakeTime: the tests read the timeouts the loop asked to wait, and nothing
waits on the wall clock (time moves only when the loop waits)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import cast

from kubetrain_operator.config import OperatorConfig, PolicySettings
from kubetrain_operator.metrics import Metrics
from kubetrain_operator.reconcile import JobKey, Outcome, Reconciler
from kubetrain_operator.runtime import _ERROR_BACKOFF, Runtime, _first

KEY = JobKey("ml", "t")
RESYNC = 60.0
GONE = Outcome(gone=True)


class Stop:
    """Behaves like kopf's DaemonStopped."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def __bool__(self) -> bool:
        return self.event.is_set()

    async def wait(self, timeout: float | None = None) -> None:
        await self.event.wait()


class FakeTime:
    """The loop's clock and its waits.

    `timeouts`: every timeout the loop asked to wait, in order. With `elapse`, each wait's
    timeout runs out at once (the clock moves on by it). Without, time stands still: only a poke
    or a stop ends a wait.
    """

    def __init__(self, *, elapse: bool) -> None:
        self.elapse = elapse
        self.now = 1000.0
        self.timeouts: list[float] = []

    def clock(self) -> float:
        return self.now

    async def wait(self, *waits: Callable[[], Awaitable[object]], timeout: float) -> None:
        self.timeouts.append(timeout)
        if self.elapse:
            self.now += timeout
            await asyncio.sleep(0)  # let other tasks run, as a real wait would
            return
        tasks = [asyncio.ensure_future(w()) for w in waits]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


class ScriptedReconciler:
    """Returns (or raises) queued outcomes; blocks inside a pass while `hold` is clear."""

    def __init__(self, *script: Outcome | Exception) -> None:
        self.script = list(script)
        self.calls = 0
        self.seen: list[object] = []
        self.uids: list[str | None] = []
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()

    def reconcile(self, key: JobKey, seen: object = None, *, uid: str | None = None) -> Outcome:
        self.calls += 1
        self.seen.append(seen)
        self.uids.append(uid)
        self.entered.set()
        assert self.hold.wait(5), "the test never let the pass finish"
        if not self.script:
            return Outcome(requeue_after=None)
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    def forget(self, uid: str) -> None:
        pass


def runtime(reconciler: object, time: FakeTime, *, threads: int = 2) -> Runtime:
    return Runtime(
        config=OperatorConfig(
            policy=PolicySettings(resync_seconds=RESYNC), reconcile_threads=threads
        ),
        reconciler=cast(Reconciler, reconciler),
        metrics=Metrics(),
        executor=ThreadPoolExecutor(threads),
        clock=time.clock,
        wait=time.wait,
    )


async def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Polls for a condition another thread brings about (not for time to pass)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


def _run_to_end(*script: Outcome | Exception) -> tuple[ScriptedReconciler, FakeTime]:
    """Runs a loop through `script` (which must end in gone), each wait timing out at once."""
    r, t = ScriptedReconciler(*script), FakeTime(elapse=True)

    async def main() -> None:
        rt = runtime(r, t)
        await asyncio.wait_for(rt.keep_reconciled(KEY, Stop()), 5)
        assert KEY not in rt.wakers

    asyncio.run(main())
    return r, t


def test_gone_ends_the_loop() -> None:
    r, t = _run_to_end(Outcome(gone=True))
    assert r.calls == 1 and t.timeouts == []


def test_only_the_first_pass_gets_the_job_as_the_event_showed_it() -> None:
    r, t = ScriptedReconciler(Outcome(requeue_after=0), GONE), FakeTime(elapse=True)
    body = {"metadata": {"name": "t"}}

    async def main() -> None:
        await asyncio.wait_for(runtime(r, t).keep_reconciled(KEY, Stop(), body), 5)

    asyncio.run(main())
    assert r.seen == [body, None]  # later passes read the job afresh


def test_every_pass_is_for_the_job_the_loop_was_started_for() -> None:
    # No finalizer holds a deleted job back: a job applied again under the same name can meet
    # the old loop, whose passes must take it for gone (the uid), not reconcile it.
    r, t = ScriptedReconciler(Outcome(requeue_after=0), GONE), FakeTime(elapse=True)
    body = {"metadata": {"name": "t", "uid": "uid-a"}}

    async def main() -> None:
        await asyncio.wait_for(runtime(r, t).keep_reconciled(KEY, Stop(), body), 5)

    asyncio.run(main())
    assert r.uids == ["uid-a", "uid-a"]


def test_requeue_after_is_honoured_and_no_requeue_means_the_resync() -> None:
    r, t = _run_to_end(
        Outcome(requeue_after=0.05), Outcome(requeue_after=None), Outcome(requeue_after=0), GONE
    )
    assert r.calls == 4
    assert t.timeouts == [0.05, RESYNC, 0]


def test_a_failing_pass_backs_off_in_growing_steps_to_a_cap() -> None:
    fails = [ConnectionError("API server unreachable")] * 9
    r, t = _run_to_end(*fails, GONE)
    assert r.calls == 10
    assert t.timeouts == [0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 30.0, 30.0, 30.0]
    assert t.timeouts[: len(_ERROR_BACKOFF)] == list(_ERROR_BACKOFF)
    assert t.now == 1000.0 + sum(t.timeouts)


def test_a_pass_that_succeeds_resets_the_backoff() -> None:
    err = ConnectionError("API server unreachable")
    r, t = _run_to_end(err, err, err, Outcome(requeue_after=7.0), err, err, GONE)
    assert r.calls == 7
    # The success's own requeue time is honoured (not the backoff), and the next failure starts
    # the backoff from its first step.
    assert t.timeouts == [0.5, 1.0, 2.0, 7.0, 0.5, 1.0]


def test_a_failing_first_pass_is_retried_as_a_first_pass() -> None:
    err = ConnectionError("API server unreachable")
    body = {"metadata": {"name": "t", "uid": "uid-a"}}
    r, t = ScriptedReconciler(err, Outcome(requeue_after=0), GONE), FakeTime(elapse=True)

    async def main() -> None:
        await asyncio.wait_for(runtime(r, t).keep_reconciled(KEY, Stop(), body), 5)

    asyncio.run(main())
    assert r.seen == [body, body, None]  # the retry still has the event's view of the job
    assert t.timeouts == [0.5, 0]


def test_pokes_during_a_pass_make_one_more_pass() -> None:
    r, t = ScriptedReconciler(), FakeTime(elapse=False)

    async def main() -> None:
        rt = runtime(r, t)
        stop = Stop()
        r.hold.clear()
        task = asyncio.create_task(rt.keep_reconciled(KEY, stop))
        await _until(r.entered.is_set)
        for _ in range(10):
            rt.poke(KEY)
        r.hold.set()
        # The first wait ends at once (poked); the second stands still: time does not move.
        await _until(lambda: len(t.timeouts) == 2)
        assert r.calls == 2  # ten pokes, one extra pass
        assert not rt.wakers[KEY].is_set()
        stop.event.set()
        await asyncio.wait_for(task, 5)
        assert KEY not in rt.wakers and r.calls == 2

    asyncio.run(main())


def test_an_idle_job_waits_for_a_poke() -> None:
    r, t = ScriptedReconciler(), FakeTime(elapse=False)

    async def main() -> None:
        rt = runtime(r, t)
        stop = Stop()
        task = asyncio.create_task(rt.keep_reconciled(KEY, stop))
        await _until(lambda: len(t.timeouts) == 1)
        assert r.calls == 1 and t.timeouts == [RESYNC]
        rt.poke(KEY)
        await _until(lambda: len(t.timeouts) == 2)
        assert r.calls == 2
        stop.event.set()
        await asyncio.wait_for(task, 5)
        assert r.calls == 2  # a stop during a wait ends the loop without another pass

    asyncio.run(main())


def test_the_oldest_pass_is_timed_on_the_loops_clock() -> None:
    r, t = ScriptedReconciler(GONE), FakeTime(elapse=True)

    async def main() -> None:
        rt = runtime(r, t)
        assert rt.oldest_pass_seconds() == 0.0
        r.hold.clear()
        task = asyncio.create_task(rt.keep_reconciled(KEY, Stop()))
        await _until(r.entered.is_set)
        t.now += 42.0
        assert rt.oldest_pass_seconds() == 42.0
        r.hold.set()
        await asyncio.wait_for(task, 5)
        assert rt.oldest_pass_seconds() == 0.0

    asyncio.run(main())


def test_poking_an_unknown_job_is_harmless() -> None:
    runtime(ScriptedReconciler(), FakeTime(elapse=True)).poke(JobKey("x", "y"))


def test_the_default_wait_ends_at_the_first_wait_or_the_timeout() -> None:
    async def main() -> None:
        never = asyncio.Event()
        done = asyncio.Event()
        done.set()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.wait_for(_first(never.wait, done.wait, timeout=3600), 5)
        await asyncio.wait_for(_first(never.wait, timeout=0), 5)
        await asyncio.wait_for(_first(never.wait, timeout=-1), 5)  # a past deadline: at once
        assert loop.time() - started < 1

    asyncio.run(main())


def test_new_jobs_first_passes_go_before_later_passes() -> None:
    """With every slot busy, a newly applied job's first pass (its pods) is let in before
    an earlier job's follow-up pass, whichever asked first."""

    class Gated:
        def __init__(self) -> None:
            self.calls: list[str] = []
            self.gate = threading.Semaphore(0)

        def reconcile(self, key: JobKey, seen: object = None, *, uid: str | None = None) -> Outcome:
            n = 1 + sum(c.startswith(key.name) for c in self.calls)
            self.calls.append(f"{key.name}{n}")
            self.gate.acquire(timeout=5)
            return Outcome(requeue_after=0.0 if n == 1 else None)

        def forget(self, uid: str) -> None:
            pass

    async def main() -> list[str]:
        r = Gated()
        # Time stands still: the first passes' requeue (0) ends by the poke below, not a clock.
        t = FakeTime(elapse=False)
        rt = runtime(r, t, threads=1)
        stops = {name: Stop() for name in "abc"}

        def start(name: str) -> asyncio.Task[None]:
            return asyncio.create_task(rt.keep_reconciled(JobKey("ml", name), stops[name]))

        tasks = [start("a"), start("b")]
        await _until(lambda: r.calls == ["a1"] and rt.slots.waiting == 1)
        r.gate.release()  # a1 ends; a2 queues behind b1
        await _until(lambda: len(t.timeouts) == 1)
        rt.poke(JobKey("ml", "a"))
        await _until(lambda: r.calls == ["a1", "b1"] and rt.slots.waiting == 1)
        tasks.append(start("c"))  # c1 arrives after a2 asked
        await _until(lambda: rt.slots.waiting == 2)
        r.gate.release()  # b1 ends: c1 goes next, then a2
        for stop in stops.values():
            stop.event.set()
        for _ in range(6):
            r.gate.release()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        return r.calls

    calls = asyncio.run(main())
    assert calls[:3] == ["a1", "b1", "c1"]
