"""Reconcile slots: a bounded number of holders, waiters let in by priority, then in order."""

from __future__ import annotations

import asyncio

import pytest

from kubetrain_operator.slots import PrioritySlots


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_waiters_go_by_priority_then_arrival() -> None:
    async def main() -> list[str]:
        slots = PrioritySlots(1)
        order: list[str] = []

        async def holder(name: str, priority: int) -> None:
            await slots.acquire(priority)
            order.append(name)
            await asyncio.sleep(0)
            slots.release()

        await slots.acquire(0)  # busy: everyone below must wait
        tasks = []
        for name, priority in [("later-a", 1), ("first-a", 0), ("later-b", 1), ("first-b", 0)]:
            tasks.append(asyncio.ensure_future(holder(name, priority)))
            await _settle()
        assert slots.waiting == 4
        slots.release()
        await asyncio.gather(*tasks)
        assert slots.free == 1
        return order

    assert asyncio.run(main()) == ["first-a", "first-b", "later-a", "later-b"]


def test_no_more_holders_than_slots() -> None:
    async def main() -> int:
        slots = PrioritySlots(3)
        inside = most = 0

        async def work() -> None:
            nonlocal inside, most
            await slots.acquire(1)
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.001)
            inside -= 1
            slots.release()

        await asyncio.gather(*(work() for _ in range(20)))
        return most

    assert asyncio.run(main()) == 3


def test_a_cancelled_waiter_does_not_lose_a_slot() -> None:
    async def main() -> None:
        slots = PrioritySlots(1)
        await slots.acquire(0)
        waiter = asyncio.ensure_future(slots.acquire(0))
        other = asyncio.ensure_future(slots.acquire(1))
        await _settle()
        waiter.cancel()  # a job deleted while its pass waited
        await _settle()
        slots.release()
        await asyncio.wait_for(other, 1)  # the slot went to the next waiter
        slots.release()
        assert (slots.free, slots.waiting) == (1, 0)

        # Cancelled in the moment between being handed the slot and taking it: passed on.
        await slots.acquire(0)
        handed = asyncio.ensure_future(slots.acquire(0))
        after = asyncio.ensure_future(slots.acquire(0))
        await _settle()
        slots.release()  # hands the slot to `handed`...
        handed.cancel()  # ...which is cancelled before it runs
        await asyncio.wait_for(after, 1)
        slots.release()
        assert slots.free == 1

    asyncio.run(main())


def test_at_least_one_slot() -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        PrioritySlots(0)
