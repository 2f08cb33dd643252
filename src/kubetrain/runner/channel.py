"""Carries reports from Ray Train's controller to the driver through the GCS key-value store."""

from __future__ import annotations

import uuid
from typing import Any

from kubetrain.runner._ray import kv
from kubetrain.runner.reports import EpochUpdate, WorkerFailure


class ProgressChannel:
    """Carries reports from Ray Train's controller (`put`, in `callbacks.py`) to the driver
    (`take`) through the key-value store of Ray's GCS: numbered keys under a prefix of its own.

    Not an actor: an actor is one more Ray process, whose event loop and core-worker threads
    took ~1.3% of a core for the whole run (measured with 2 workers on 2 cores), out of the
    training workers' share. The GCS runs anyway, on the head, beside the driver: losing a
    worker's node loses no report. Each copy counts for itself: the controller's copy numbers
    what it puts, the driver's copy what it has taken; one channel serves one `fit()`.
    """

    def __init__(self) -> None:
        self.prefix = f"progress/{uuid.uuid4().hex}/"
        self._put = 0
        self._taken = 0

    def _key(self, index: int) -> str:
        return f"{self.prefix}{index:09d}"

    def put(self, item: EpochUpdate | WorkerFailure) -> None:
        kv.put(self._key(self._put), item)
        self._put += 1

    def take(self) -> list[EpochUpdate | WorkerFailure]:
        """What was put since the last call, in order (removed from the store)."""
        items: list[EpochUpdate | WorkerFailure] = []
        while True:
            key = self._key(self._taken)
            item = kv.get(key)
            if item is None:
                return items
            items.append(item)
            kv.delete(key)
            self._taken += 1

    def publish(self, name: str, value: object) -> None:
        """Leaves `value` for every copy under `name` (not numbered: never taken as a report)."""
        kv.put(self.prefix + name, value)

    def published(self, name: str) -> Any:
        """What `publish` left under `name`, or None."""
        return kv.get(self.prefix + name)
