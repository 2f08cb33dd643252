"""The per-job loop: pokes coalesce, requeue times are honoured, stop and gone end it."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import cast

from kubetrain_operator.config import OperatorConfig, PolicySettings
from kubetrain_operator.metrics import Metrics
from kubetrain_operator.reconcile import JobKey, Outcome, Reconciler
from kubetrain_operator.runtime import Runtime

KEY = JobKey("ml", "t")


class Stop:
    """Behaves like kopf's DaemonStopped."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def __bool__(self) -> bool:
        return self.event.is_set()

    async def wait(self, timeout: float | None = None) -> None:
        await self.event.wait()


class ScriptedReconciler:
    """Returns queued outcomes; blocks inside a pass while `hold` is clear."""

    def __init__(self, *outcomes: Outcome) -> None:
        self.outcomes = list(outcomes)
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
        self.hold.wait(5)
        if self.outcomes:
            return self.outcomes.pop(0)
        return Outcome(requeue_after=None)

    def forget(self, uid: str) -> None:
        pass


def runtime(reconciler: ScriptedReconciler, resync: float = 60.0) -> Runtime:
    config = OperatorConfig(policy=PolicySettings(resync_seconds=resync))
    return Runtime(
        config=config,
        reconciler=cast(Reconciler, reconciler),
        metrics=Metrics(),
        executor=ThreadPoolExecutor(2),
    )


async def _until(predicate: object, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


def test_gone_ends_the_loop() -> None:
    async def main() -> None:
        r = ScriptedReconciler(Outcome(gone=True))
        rt = runtime(r)
        await asyncio.wait_for(rt.keep_reconciled(KEY, Stop()), 5)
        assert r.calls == 1 and KEY not in rt.wakers

    asyncio.run(main())


def test_only_the_first_pass_gets_the_job_as_the_event_showed_it() -> None:
    async def main() -> None:
        r = ScriptedReconciler(Outcome(requeue_after=0), Outcome(gone=True))
        body = {"metadata": {"name": "t"}}
        await asyncio.wait_for(runtime(r).keep_reconciled(KEY, Stop(), body), 5)
        assert r.seen == [body, None]  # later passes read the job afresh

    asyncio.run(main())


def test_every_pass_is_for_the_job_the_loop_was_started_for() -> None:
    # No finalizer holds a deleted job back: a job applied again under the same name can meet
    # the old loop, whose passes must take it for gone (the uid), not reconcile it.
    async def main() -> None:
        r = ScriptedReconciler(Outcome(requeue_after=0), Outcome(gone=True))
        body = {"metadata": {"name": "t", "uid": "uid-a"}}
        await asyncio.wait_for(runtime(r).keep_reconciled(KEY, Stop(), body), 5)
        assert r.uids == ["uid-a", "uid-a"]

    asyncio.run(main())


def test_requeue_after_is_honoured() -> None:
    async def main() -> None:
        r = ScriptedReconciler(Outcome(requeue_after=0.05), Outcome(gone=True))
        await asyncio.wait_for(runtime(r).keep_reconciled(KEY, Stop()), 5)
        assert r.calls == 2

    asyncio.run(main())


def test_pokes_during_a_pass_make_one_more_pass() -> None:
    async def main() -> None:
        r = ScriptedReconciler()
        rt = runtime(r)
        stop = Stop()
        r.hold.clear()
        task = asyncio.create_task(rt.keep_reconciled(KEY, stop))
        await _until(r.entered.is_set)
        for _ in range(10):
            rt.poke(KEY)
        r.hold.set()
        await _until(lambda: r.calls == 2)
        await asyncio.sleep(0.1)
        assert r.calls == 2  # ten pokes, one extra pass
        stop.event.set()
        await asyncio.wait_for(task, 5)
        assert KEY not in rt.wakers

    asyncio.run(main())


def test_an_idle_job_waits_for_a_poke() -> None:
    async def main() -> None:
        r = ScriptedReconciler()
        rt = runtime(r, resync=60)
        stop = Stop()
        task = asyncio.create_task(rt.keep_reconciled(KEY, stop))
        await _until(lambda: r.calls == 1)
        await asyncio.sleep(0.1)
        assert r.calls == 1
        rt.poke(KEY)
        await _until(lambda: r.calls == 2)
        stop.event.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(main())


def test_a_failing_pass_is_retried_with_backoff() -> None:
    class Flaky(ScriptedReconciler):
        def reconcile(self, key: JobKey, seen: object = None, *, uid: str | None = None) -> Outcome:
            self.calls += 1
            if self.calls == 1:
                raise ConnectionError("API server unreachable")
            return Outcome(gone=True)

    async def main() -> None:
        r = Flaky()
        await asyncio.wait_for(runtime(r).keep_reconciled(KEY, Stop()), 5)
        assert r.calls == 2

    asyncio.run(main())


def test_poking_an_unknown_job_is_harmless() -> None:
    runtime(ScriptedReconciler()).poke(JobKey("x", "y"))


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
        rt = Runtime(
            config=OperatorConfig(reconcile_threads=1),
            reconciler=cast(Reconciler, r),
            metrics=Metrics(),
            executor=ThreadPoolExecutor(1),
        )
        stops = {name: Stop() for name in "abc"}

        def start(name: str) -> asyncio.Task[None]:
            return asyncio.create_task(rt.keep_reconciled(JobKey("ml", name), stops[name]))

        tasks = [start("a"), start("b")]
        await _until(lambda: r.calls == ["a1"] and rt.slots.waiting == 1)
        r.gate.release()  # a1 ends; a2 queues behind b1
        await _until(lambda: r.calls == ["a1", "b1"] and rt.slots.waiting == 1)
        tasks.append(start("c"))  # c1 arrives after a2 asked
        await _until(lambda: rt.slots.waiting == 2)
        r.gate.release()  # b1 ends: c1 goes next, then a2, b2, c2
        for stop in stops.values():
            stop.event.set()
        for _ in range(6):
            r.gate.release()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        return r.calls

    calls = asyncio.run(main())
    assert calls[:3] == ["a1", "b1", "c1"]
