"""The progress channel between Ray Train's controller and the driver, on a real Ray cluster."""

from __future__ import annotations

import pytest
import ray

from kubetrain.api.report import EpochReport
from kubetrain.runner import EpochUpdate, WorkerFailure
from kubetrain.runner._ray import kv
from kubetrain.runner.channel import ProgressChannel

pytestmark = pytest.mark.slow


@ray.remote(num_cpus=0)
def report_from_another_process(channel: ProgressChannel, epochs: int) -> None:
    """Puts as the controller does: from its own Ray process, with its own copy of the channel."""
    for epoch in range(1, epochs + 1):
        channel.put(EpochUpdate(EpochReport(epoch=epoch, total_epochs=epochs), None))
    channel.put(WorkerFailure((1,), "worker 1 lost"))


def test_reports_arrive_in_order_once_each(ray_cluster: None) -> None:
    channel = ProgressChannel()
    ray.get(report_from_another_process.remote(channel, 12))
    items = channel.take()
    assert [i.report.epoch for i in items if isinstance(i, EpochUpdate)] == list(range(1, 13))
    assert items[-1] == WorkerFailure((1,), "worker 1 lost")
    assert channel.take() == []  # taken reports are gone from the driver's view and the store
    assert not kv.keys(channel.prefix)


def test_a_refit_does_not_see_the_last_fits_reports(ray_cluster: None) -> None:
    # Each fit gets its own channel, and the controller of each numbers its reports from 0.
    first, second = ProgressChannel(), ProgressChannel()
    ray.get(report_from_another_process.remote(first, 3))
    ray.get(report_from_another_process.remote(second, 2))
    assert len(second.take()) == 3  # 2 epochs and the failure, none of the first fit's
    assert len(first.take()) == 4
