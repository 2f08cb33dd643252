"""A fixed number of slots for reconcile passes, handed out by priority, then in arrival order.

When many jobs arrive at once, every job's first pass (the one that creates its pods) should run
before any job's later passes (its Service, RBAC and status): pods are what the user waits for.
A plain thread pool runs passes first come, first served, so the second pass of an early job
would delay the first pass of a later one.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools


class PrioritySlots:
    """At most `size` holders at a time; waiters with a lower `priority` number go first.

    Used from one event loop; not thread-safe.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"PrioritySlots needs at least one slot, got {size}")
        self.free = size
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, fut in self._waiting if not fut.done())

    async def acquire(self, priority: int) -> None:
        if self.free > 0 and not self.waiting:
            self.free -= 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, next(self._order), fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # handed a slot just as we were cancelled: pass it on
            raise

    def release(self) -> None:
        while self._waiting:
            _, _, fut = heapq.heappop(self._waiting)
            if not fut.done():  # skip waiters that were cancelled meanwhile
                fut.set_result(None)
                return
        self.free += 1
