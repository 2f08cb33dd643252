"""Finding a worker's `WillRecur` in what Ray Train reports of a failed run."""

from __future__ import annotations

from collections.abc import Iterable

from kubetrain.trainer.failures import WillRecur


def recurring_among(worker_exceptions: Iterable[BaseException]) -> WillRecur | None:
    """The first WillRecur among workers' exceptions (Ray wraps each with its traceback)."""
    for failure in worker_exceptions:
        cause = getattr(failure, "_base_exc", failure)
        if isinstance(cause, WillRecur):
            return cause
    return None


def recurring_cause(error: BaseException) -> WillRecur | None:
    """The WillRecur a worker raised, if `error` (Ray Train's failure, on the controller or as
    fit() raises it) carries one."""
    failures = getattr(error, "worker_failures", None) or {}
    return recurring_among(failures.values())
