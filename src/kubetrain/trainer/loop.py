"""The data-parallel training loop that runs in every Ray Train worker.

`WorkerLoop` holds one worker's model, data shard and engine (the backend's optimizer step and
checkpoints: DDP or DeepSpeed). Its methods are small so that tests can drive a single optimizer
step (`step`) as well as a whole run (`run`).
"""

from __future__ import annotations

import contextlib
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from kubetrain.api.artifacts import plan as artifact_plan
from kubetrain.api.report import EpochReport
from kubetrain.api.spec import ExportSelect, ModelName, Precision, TrainingJobSpec
from kubetrain.trainer import checkpoint as ckpt
from kubetrain.trainer.aggregation import distributed_ready
from kubetrain.trainer.data import Splits, load_splits, shard
from kubetrain.trainer.data.augment import augment_batch, is_enabled
from kubetrain.trainer.data.info import InputKind
from kubetrain.trainer.early_stopping import EarlyStopping
from kubetrain.trainer.engine import Engine, build_engine
from kubetrain.trainer.evaluation import scores, tally
from kubetrain.trainer.failures import recurring_forward_error
from kubetrain.trainer.models import Freezable, build_model
from kubetrain.trainer.optim import penalty
from kubetrain.trainer.telemetry import WorkerMetrics

Inputs = torch.Tensor | dict[str, torch.Tensor]
Batch = tuple[Inputs, torch.Tensor]
# Called after every epoch with its report and, when one was written, a checkpoint directory.
ReportFn = Callable[[EpochReport, Path | None], None]


@dataclass(frozen=True)
class WorkerIdentity:
    job: str
    namespace: str
    rank: int
    world_size: int


def to_device(inputs: Inputs, device: torch.device) -> Inputs:
    if isinstance(inputs, dict):
        return {k: v.to(device, non_blocking=True) for k, v in inputs.items()}
    return inputs.to(device, non_blocking=True)


def equal_shard(dataset: Dataset[Any], rank: int, world_size: int) -> Dataset[Any]:
    """Every worker gets the same number of samples, so all take the same number of steps
    (a worker with one extra batch would wait forever in DDP's allreduce)."""
    usable = (len(dataset) // world_size) * world_size  # type: ignore[arg-type]
    trimmed = torch.utils.data.Subset(dataset, range(usable))
    return shard(trimmed, rank, world_size)


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    if distributed_ready():
        dist.all_reduce(values)
    return values


class WorkerLoop:
    def __init__(
        self,
        spec: TrainingJobSpec,
        who: WorkerIdentity,
        device: torch.device,
        splits: Splits | None = None,
    ) -> None:
        self.spec, self.who, self.device = spec, who, device
        train = spec.training
        # Same seed on every rank: identical initial weights (DDP also broadcasts rank 0's).
        torch.manual_seed(train.seed)
        self.splits = splits if splits is not None else load_splits(spec)
        self.train_data = equal_shard(self.splits.train, who.rank, who.world_size)
        self.val_data = shard(self.splits.val, who.rank, who.world_size)
        self.model = build_model(spec.model, self.splits.info).to(device)
        batches = math.ceil(len(self.train_data) / spec.dataset.batch_size)  # type: ignore[arg-type]
        self.steps_per_epoch = max(1, batches // train.gradient_accumulation_steps)
        self.engine: Engine = build_engine(
            self.model, spec, device, rank=who.rank, steps_per_epoch=self.steps_per_epoch
        )
        self.progress = ckpt.Progress()
        self.early_stopping = EarlyStopping(train.early_stopping) if train.early_stopping else None
        self._started = False
        self._stepped = False  # whether this process has taken an optimizer step yet
        self._unfrozen = False
        self._augment_gen = torch.Generator().manual_seed(train.seed * 1000 + who.rank)
        self.prometheus: WorkerMetrics | None = None
        exported = artifact_plan(spec)
        self._keep_best = exported is not None and exported.select is ExportSelect.BEST
        self.best_weights: dict[str, torch.Tensor] | None = None

    # ------------------------------------------------------------------ setup

    def restore(self, directory: Path) -> None:
        """Load a checkpoint written by this backend; call before `start`."""
        self.progress = self.engine.load(directory)
        if self._keep_best:
            self.best_weights = ckpt.load_best(directory)
        if self.early_stopping is not None:
            self.early_stopping.load(self.progress.early_stopping)

    def start(self) -> None:
        self._maybe_unfreeze(self.progress.epoch + 1)
        self.engine.start()
        self._started = True

    def serve_metrics(self, port: int) -> None:
        self.prometheus = WorkerMetrics(
            self.who.job, self.who.namespace, self.who.rank, self.spec.training.metric.value
        )
        self.prometheus.serve(port)

    @property
    def _model_field(self) -> str:
        custom = self.spec.model.name is ModelName.CUSTOM
        return "spec.model.entrypoint" if custom else "spec.model"

    def _maybe_unfreeze(self, epoch: int) -> bool:
        at = self.spec.model.freeze.unfreeze_at_epoch
        if at is None or epoch < at or self._unfrozen or not isinstance(self.model, Freezable):
            return False
        self.model.unfreeze()
        self._unfrozen = True
        return True

    # ------------------------------------------------------------------ one step

    def _autocast(self) -> contextlib.AbstractContextManager[None]:
        precision = self.spec.training.precision
        if precision is Precision.FP32:
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if precision is Precision.BF16 else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def loss_on(self, module: nn.Module, inputs: Inputs, labels: torch.Tensor) -> torch.Tensor:
        try:
            with self._autocast():
                logits = module(inputs)
            loss = F.cross_entropy(logits.float(), labels)
        except Exception as exc:
            # A model that does not fit its data fails on the first batch, and on every retry.
            recurring = None if self._stepped else recurring_forward_error(exc, self._model_field)
            if recurring is None:
                raise
            raise recurring from exc
        extra = penalty(self.model, self.spec.training.regularization)
        return loss if extra is None else loss + extra

    def _prepare(self, batch: Batch) -> Batch:
        inputs, labels = batch
        inputs = to_device(inputs, self.device)
        aug = self.spec.dataset.augmentation
        if (
            self.splits.info.kind is InputKind.IMAGE
            and isinstance(inputs, torch.Tensor)
            and inputs.ndim == 4
            and is_enabled(aug)
        ):
            inputs = augment_batch(inputs, aug, self._augment_gen)
        return inputs, labels.to(self.device, non_blocking=True)

    def step(self, micro_batches: list[Batch]) -> float:
        """One optimizer step over `micro_batches` (gradient accumulation); returns the loss."""
        assert self._started, "call start() first"
        engine = self.engine
        total = 0.0
        for i, batch in enumerate(micro_batches):
            inputs, labels = self._prepare(batch)
            with engine.accumulating(boundary=i == len(micro_batches) - 1):
                loss = self.loss_on(engine.module, inputs, labels) / len(micro_batches)
                engine.backward(loss)
            total += float(loss.detach())
        self.progress.step += 1
        engine.optimizer_step(self.progress.step)
        self._stepped = True
        return total

    # ------------------------------------------------------------------ epochs

    def _loader(self, data: Dataset[Any], shuffle: bool, epoch: int) -> DataLoader[Any]:
        gen = torch.Generator().manual_seed(self.spec.training.seed * 7919 + epoch)
        return DataLoader(
            data, batch_size=self.spec.dataset.batch_size, shuffle=shuffle, generator=gen,
            pin_memory=self.device.type == "cuda",
        )  # fmt: skip

    def _grouped(self, loader: DataLoader[Any]) -> Iterator[list[Batch]]:
        group: list[Batch] = []
        for batch in loader:
            group.append(batch)
            if len(group) == self.spec.training.gradient_accumulation_steps:
                yield group
                group = []
        if group:
            yield group

    def train_epoch(self, epoch: int) -> dict[str, float]:
        if self._maybe_unfreeze(epoch):
            self.engine.rewrap()
        self.model.train()
        losses, samples, started = [], 0, time.perf_counter()
        for group in self._grouped(self._loader(self.train_data, True, epoch)):
            t0 = time.perf_counter()
            loss = self.step(group)
            n = sum(len(labels) for _, labels in group)
            samples += n
            losses.append(loss)
            if self.prometheus is not None:
                self.prometheus.record_step(
                    loss=loss, seconds=time.perf_counter() - t0, samples=n,
                    step=self.progress.step, lr=self.engine.lr(),
                )  # fmt: skip
        seconds = time.perf_counter() - started
        # Global throughput: all workers' samples over the slowest worker's time.
        totals = all_reduce_sum(torch.tensor([float(samples), sum(losses), float(len(losses))]))
        slowest = torch.tensor([seconds])
        if distributed_ready():
            dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
        return {
            "train_loss": float(totals[1]) / max(float(totals[2]), 1.0),
            "samples_per_second": float(totals[0] / max(float(slowest[0]), 1e-9)),
            "epoch_seconds": float(slowest[0]),
        }

    def evaluate(self) -> dict[str, float]:
        """Loss and metrics over the *whole* validation set (shard sums are allreduced)."""
        self.model.eval()
        confusion, loss_sum = tally(
            lambda inputs: self.model(to_device(inputs, self.device)),
            self._loader(self.val_data, False, 0),
            self.splits.info.num_classes,
            self._autocast,
        )
        return scores(all_reduce_sum(confusion), all_reduce_sum(loss_sum))

    # ------------------------------------------------------------------ the run

    def _should_checkpoint(self, epoch: int, last: bool) -> bool:
        return last or epoch % self.spec.checkpoint.every_epochs == 0

    def run(self, report: ReportFn) -> None:
        epochs = self.spec.training.epochs
        first = self.progress.epoch + 1
        if first > epochs or self.progress.stopped_early:
            # Started again after it had finished: train nothing, and report where it stands
            # with the last epoch's scores (not its throughput: this run trained nothing).
            ended = EpochReport.from_metrics(
                self.progress.history[-1] if self.progress.history else {}
            )
            scores = {"train_loss": ended.train_loss, "val": ended.val}
            report(
                self._report(self.progress.epoch, finished=True).model_copy(
                    update=scores | {"already_finished": True}
                ),
                None,
            )
            return
        for epoch in range(first, epochs + 1):
            train_stats = self.train_epoch(epoch)
            val = self.evaluate()
            self.progress.epoch = epoch
            stop = False
            if self.early_stopping is not None:
                stop = self.early_stopping.update(val[self.early_stopping.spec.monitor[4:]])
                self.progress.early_stopping = self.early_stopping.state()
            self.progress.stopped_early = stop
            self._track_best(epoch, val)
            last = stop or epoch == epochs
            epoch_report = self._report(epoch, finished=last, val=val, **train_stats)
            self.progress.history.append(
                {k: v for k, v in epoch_report.to_metrics().items() if isinstance(v, float)}
            )
            if self.prometheus is not None:
                self.prometheus.record_epoch(
                    epoch=epoch, val=val, samples_per_second=train_stats["samples_per_second"],
                    world_size=self.who.world_size,
                )  # fmt: skip
            directory = self._checkpoint() if self._should_checkpoint(epoch, last) else None
            try:
                report(epoch_report, directory)
            finally:
                if directory is not None:
                    shutil.rmtree(directory, ignore_errors=True)
            if stop:
                break

    def _checkpoint(self) -> Path | None:
        """Every rank calls the engine (DeepSpeed's save is collective); a rank that wrote
        nothing reports no directory."""
        directory = Path(tempfile.mkdtemp(prefix="kubetrain-ckpt-"))
        if self.engine.save(directory, self.progress):
            if self.who.rank == 0 and self.best_weights is not None:
                ckpt.save_best(directory, self.best_weights)
            return directory
        shutil.rmtree(directory, ignore_errors=True)
        return None

    # ------------------------------------------------------------------ the model to export

    def _track_best(self, epoch: int, val: dict[str, float]) -> None:
        """Keeps a copy of the weights of the epoch with the best headline metric (all of
        kubetrain's metrics are better higher). Every rank sees the same allreduced scores, so
        all take the copy together (ZeRO-3 gathers it)."""
        if not self._keep_best:
            return
        score = val[self.spec.training.metric.value]
        best = self.progress.best_score
        if best is None or score > best:
            self.best_weights = self.engine.full_state_dict()
            self.progress.best_epoch, self.progress.best_score = epoch, score

    def final_weights(self, select: ExportSelect) -> tuple[int, dict[str, torch.Tensor]]:
        """The epoch and weights to export: the last, or the best one. Call on every rank."""
        if select is ExportSelect.BEST and self.best_weights is not None:
            assert self.progress.best_epoch is not None
            return self.progress.best_epoch, self.best_weights
        return self.progress.epoch, self.engine.full_state_dict()

    def _report(self, epoch: int, *, finished: bool, **measured: Any) -> EpochReport:
        return EpochReport(
            epoch=epoch,
            total_epochs=self.spec.training.epochs,
            step=self.progress.step,
            world_size=self.who.world_size,
            lr=self.engine.lr(),
            metric_name=self.spec.training.metric.value,
            finished=finished,
            stopped_early=self.progress.stopped_early,
            **measured,
        )
