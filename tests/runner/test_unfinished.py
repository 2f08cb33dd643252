"""A run Ray Train ended before kubetrain's loop reached its last epoch is not a success."""

from __future__ import annotations

from kubetrain.api.report import EpochReport
from kubetrain.runner.reports import EpochUpdate
from kubetrain.runner.run import unfinished_at


def report(epoch: int, **flags: object) -> EpochUpdate:
    return EpochUpdate(
        EpochReport.from_metrics({"epoch": epoch, "total_epochs": 200, **flags}), None
    )


def test_a_run_that_stopped_before_its_last_epoch_is_unfinished() -> None:
    assert unfinished_at([report(47, finished=False), report(48, finished=False)]) == 48


def test_the_last_epoch_or_an_early_stop_finishes_a_run() -> None:
    assert unfinished_at([report(199, finished=False), report(200, finished=True)]) is None
    assert unfinished_at([report(12, finished=True, stopped_early=True)]) is None


def test_a_users_own_loop_is_taken_at_its_word() -> None:
    # training.entrypoint loops report their own metrics, without kubetrain's flag.
    assert unfinished_at([report(3)]) is None
    assert unfinished_at([]) is None
