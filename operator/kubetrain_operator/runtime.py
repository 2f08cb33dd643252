"""The operator's moving parts, and the loop that keeps one job reconciled.

Each TrainingJob gets one loop, run by a kopf daemon (so peering pauses it), bound to the job's uid:
it ends at the first pass that finds the job gone, being deleted, or replaced under the same name.
The loop runs a reconcile pass in a worker thread, then sleeps until the pass's requeue time, a
poke, or a stop. Pokes come from watch events on the job and on its pods; several pokes during a
pass make one more pass, not several. Nothing about a job is reconciled by two threads at once
(a job deleted and applied again is another job: the old loop's last pass can meet the new
loop's first, and writes nothing into it, see Reconciler).

Passes wait for one of `reconcile_threads` slots; a loop's first pass (for a new job, the one that
creates its pods) is let in before any later pass of any job.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from kubetrain_operator.config import OperatorConfig
from kubetrain_operator.kubeobj import Obj
from kubetrain_operator.metrics import Metrics
from kubetrain_operator.reconcile import JobKey, Outcome, Reconciler
from kubetrain_operator.slots import PrioritySlots

log = logging.getLogger(__name__)


# Seconds between retries of a pass that raised (an API server hiccup), doubling up to the cap.
_ERROR_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
# Slot priorities (lower goes first).
FIRST_PASS, LATER_PASS = 0, 1


class StopFlag(Protocol):
    """What kopf's DaemonStopped offers: truthiness, and an awaitable wait."""

    def __bool__(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> Awaitable[object]: ...


class Wait(Protocol):
    """Returns when the first of `waits` finishes or after `timeout` seconds (see _first)."""

    def __call__(
        self, *waits: Callable[[], Awaitable[object]], timeout: float
    ) -> Awaitable[None]: ...


async def _first(*waits: Callable[[], Awaitable[object]], timeout: float) -> None:
    """Returns when the first of `waits` finishes or after `timeout` seconds."""
    tasks = [asyncio.ensure_future(w()) for w in waits]
    try:
        await asyncio.wait(tasks, timeout=max(timeout, 0.0), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


@dataclass
class Runtime:
    config: OperatorConfig
    reconciler: Reconciler
    metrics: Metrics
    executor: ThreadPoolExecutor
    # One wake-up event per job whose loop runs in this process.
    wakers: dict[JobKey, asyncio.Event] = field(default_factory=dict)
    ready: bool = False  # set once startup is complete; /readyz reports it
    # Passes in flight: key -> start time (monotonic), for the liveness probe.
    in_flight: dict[JobKey, float] = field(default_factory=dict)
    # The loop's time, injectable for tests: `clock` stamps passes in flight, `wait` is where a
    # loop waits out a requeue or a backoff (ended early by a poke or a stop).
    clock: Callable[[], float] = time.monotonic
    wait: Wait = _first
    slots: PrioritySlots = field(init=False)

    def __post_init__(self) -> None:
        self.slots = PrioritySlots(self.config.reconcile_threads)

    def poke(self, key: JobKey) -> None:
        """Something about the job changed: reconcile it soon (no-op if it has no loop here)."""
        waker = self.wakers.get(key)
        if waker is not None:
            waker.set()

    def oldest_pass_seconds(self) -> float:
        started = list(self.in_flight.values())
        return self.clock() - min(started) if started else 0.0

    async def _pass(self, key: JobKey, priority: int, seen: Obj | None, uid: str | None) -> Outcome:
        loop = asyncio.get_running_loop()
        await self.slots.acquire(priority)
        self.in_flight[key] = self.clock()
        try:
            return await loop.run_in_executor(
                self.executor, functools.partial(self.reconciler.reconcile, key, seen, uid=uid)
            )
        finally:
            self.in_flight.pop(key, None)
            self.slots.release()

    async def keep_reconciled(
        self, key: JobKey, stopped: StopFlag, seen: Obj | None = None
    ) -> None:
        """Reconciles `key` until the job is gone or `stopped` is set.

        `seen`: the job as the event that started the loop showed it, for the first pass only;
        its uid binds the loop to that job.
        """
        uid = (seen or {}).get("metadata", {}).get("uid")
        waker = self.wakers[key] = asyncio.Event()
        failures = 0
        priority = FIRST_PASS
        try:
            while not stopped:
                waker.clear()
                try:
                    outcome = await self._pass(key, priority, seen, uid)
                    priority, seen = LATER_PASS, None
                    failures = 0
                except Exception as exc:
                    delay = _ERROR_BACKOFF[min(failures, len(_ERROR_BACKOFF) - 1)]
                    failures += 1
                    log.warning("%s: reconcile failed (%s); retrying in %.1fs", key, exc, delay)
                    outcome = Outcome(requeue_after=delay)
                if outcome.gone:
                    return
                timeout = outcome.requeue_after
                if timeout is None:
                    timeout = self.config.policy.resync_seconds
                await self.wait(waker.wait, lambda: stopped.wait(), timeout=timeout)
        finally:
            if self.wakers.get(key) is waker:
                del self.wakers[key]
