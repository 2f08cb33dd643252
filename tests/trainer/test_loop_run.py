"""WorkerLoop.run in-process, at world size 1 (no Ray, no process group): what it reports after
each epoch, when it passes a checkpoint, how early stopping ends it, and what a finished run
started again from its checkpoint says."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from kubetrain.api.report import EpochReport
from kubetrain.api.spec import TrainingJobSpec
from kubetrain.trainer.data import Splits, load_splits
from kubetrain.trainer.loop import WorkerIdentity, WorkerLoop
from tests.conftest import make_job

# 64 training samples in batches of 32: two optimizer steps an epoch.
DATASET = {"source": "digits", "batchSize": 32, "maxSamples": 64}
STEPS_PER_EPOCH = 2
# An early stop at epoch 2: epoch 1 sets the best val loss, and nothing improves on it by 1e9.
STOP_AT_2 = {"monitor": "val_loss", "patience": 1, "minDelta": 1e9}


def spec(**patch: Any) -> TrainingJobSpec:
    return make_job(dataset=DATASET, **patch).spec


@pytest.fixture(scope="module")
def splits() -> Splits:
    return load_splits(spec())


def started(job: TrainingJobSpec, splits: Splits, checkpoint: Path | None = None) -> WorkerLoop:
    who = WorkerIdentity("t", "default", rank=0, world_size=1)
    loop = WorkerLoop(job, who, torch.device("cpu"), splits)
    if checkpoint is not None:
        loop.restore(checkpoint)
    loop.start()
    return loop


@dataclass(frozen=True)
class Call:
    report: EpochReport
    directory: Path | None
    files: list[str]  # what the directory held during the call


class Recorder:
    """The `report` callback: records each call; copies each checkpoint into `keep` (as
    epoch-N) before the loop removes it."""

    def __init__(self, keep: Path | None = None) -> None:
        self.calls: list[Call] = []
        self.keep = keep

    def __call__(self, report: EpochReport, directory: Path | None) -> None:
        files = sorted(p.name for p in directory.iterdir()) if directory is not None else []
        self.calls.append(Call(report, directory, files))
        if directory is not None and self.keep is not None:
            shutil.copytree(directory, self.keep / f"epoch-{report.epoch}")

    @property
    def reports(self) -> list[EpochReport]:
        return [c.report for c in self.calls]


def test_every_epoch_is_reported_with_a_checkpoint_every_n_epochs_and_at_the_last(
    splits: Splits,
) -> None:
    calls = Recorder()
    started(spec(training={"epochs": 5}, checkpoint={"everyEpochs": 2}), splits).run(calls)
    assert [r.epoch for r in calls.reports] == [1, 2, 3, 4, 5]
    assert [r.step for r in calls.reports] == [STEPS_PER_EPOCH * e for e in range(1, 6)]
    assert [c.directory is not None for c in calls.calls] == [False, True, False, True, True]
    assert [r.finished for r in calls.reports] == [False, False, False, False, True]
    assert not any(r.stopped_early or r.already_finished for r in calls.reports)
    with_checkpoint = [c for c in calls.calls if c.directory is not None]
    assert len({c.directory for c in with_checkpoint}) == 3  # a fresh directory each time
    for call in with_checkpoint:
        assert call.files, f"epoch {call.report.epoch}: an empty checkpoint directory"
        assert call.directory is not None and not call.directory.exists()  # removed after
    for report in calls.reports:
        assert report.total_epochs == 5 and report.world_size == 1
        assert report.train_loss is not None and {"loss", "accuracy"} <= report.val.keys()


def test_the_checkpoint_is_removed_when_the_report_fails(splits: Splits) -> None:
    seen: list[Path] = []

    def report(epoch_report: EpochReport, directory: Path | None) -> None:
        if directory is not None:
            seen.append(directory)
            raise ConnectionError("storage unreachable")

    with pytest.raises(ConnectionError):
        started(spec(training={"epochs": 2}), splits).run(report)
    assert len(seen) == 1 and not seen[0].exists()


def test_early_stopping_ends_the_run_before_its_last_epoch_with_a_checkpoint(
    splits: Splits,
) -> None:
    calls = Recorder()
    job = spec(training={"epochs": 5, "earlyStopping": STOP_AT_2}, checkpoint={"everyEpochs": 10})
    started(job, splits).run(calls)
    assert [r.epoch for r in calls.reports] == [1, 2]
    first, last = calls.reports
    assert not first.finished and not first.stopped_early
    assert last.finished and last.stopped_early and not last.already_finished
    # everyEpochs 10 writes none by itself: the stop is the last epoch, and is checkpointed.
    assert [c.directory is not None for c in calls.calls] == [False, True]


@pytest.mark.parametrize(
    "training",
    [{"epochs": 2}, {"epochs": 5, "earlyStopping": STOP_AT_2}],
    ids=["after-its-last-epoch", "after-an-early-stop"],
)
def test_a_finished_run_started_again_reports_where_it_stands_and_trains_nothing(
    splits: Splits, tmp_path: Path, training: dict[str, Any]
) -> None:
    job = spec(training=training)
    calls = Recorder(keep=tmp_path)
    first = started(job, splits)
    first.run(calls)
    ended = calls.reports[-1]
    assert ended.finished and ended.epoch == 2

    again = started(job, splits, checkpoint=tmp_path / "epoch-2")
    weights = [p.detach().clone() for p in again.model.parameters()]
    for restored, trained in zip(weights, first.model.parameters(), strict=True):
        assert torch.equal(restored, trained)  # the checkpoint's weights, not fresh ones
    step = again.progress.step
    assert step == ended.step == 2 * STEPS_PER_EPOCH

    calls_again = Recorder()
    again.run(calls_again)
    assert len(calls_again.calls) == 1
    (call,) = calls_again.calls
    report = call.report
    assert call.directory is None
    assert report.finished and report.already_finished
    assert report.stopped_early == ended.stopped_early
    assert report.epoch == ended.epoch and report.total_epochs == ended.total_epochs
    assert report.val == ended.val and report.train_loss == ended.train_loss
    # Nothing trained: no step, no weight changed, no throughput to report.
    assert report.step == again.progress.step == step
    for before, after in zip(weights, again.model.parameters(), strict=True):
        assert torch.equal(before, after)
    assert report.samples_per_second is None and report.epoch_seconds is None
