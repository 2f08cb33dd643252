"""The part of a worker's loop that differs between backends: optimizer step and checkpoints.

`WorkerLoop` runs forward passes, data and evaluation the same way for every backend and calls an
`Engine` for the rest. `TorchEngine` is DDP (or local SGD) with a torch optimizer; the DeepSpeed
engine lives in `kubetrain.trainer.deepspeed`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from kubetrain.api.spec import Backend, TrainingJobSpec
from kubetrain.trainer import checkpoint as ckpt
from kubetrain.trainer.aggregation import Aggregator
from kubetrain.trainer.deepspeed import checkpoint as ds_ckpt
from kubetrain.trainer.optim import build_optimizer, build_scheduler


class Engine(Protocol):
    model: nn.Module  # the plain model: evaluation, penalties, parameter reads

    @property
    def module(self) -> nn.Module:
        """What training forward passes run through (a DDP or DeepSpeed wrapper)."""
        ...

    def start(self) -> None:
        """Call once, after `load` and after the model's first freeze/unfreeze."""

    def rewrap(self) -> None:
        """The trainable parameters changed (unfreezing)."""

    def accumulating(self, *, boundary: bool) -> contextlib.AbstractContextManager[None]:
        """Around one micro-batch's forward and backward; `boundary` on the step's last."""
        ...

    def backward(self, loss: torch.Tensor) -> None: ...

    def optimizer_step(self, step: int) -> None:
        """Clip, update, advance the schedule, clear gradients; `step` counts from 1."""

    def lr(self) -> float: ...

    def save(self, directory: Path, progress: ckpt.Progress) -> bool:
        """Called on every rank; True when this rank wrote files to report."""
        ...

    def load(self, directory: Path) -> ckpt.Progress: ...

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        """The whole model's weights, copied to CPU. Called on every rank (ZeRO-3 gathers its
        shards: collective); rank 0's copy is the one to use."""
        ...


class TorchEngine:
    """DDP as kubetrain always ran it: rank 0 alone writes the (replicated) state."""

    def __init__(
        self,
        model: nn.Module,
        spec: TrainingJobSpec,
        device: torch.device,
        *,
        rank: int,
        steps_per_epoch: int,
    ) -> None:
        self.model, self.spec, self.device, self.rank = model, spec, device, rank
        train = spec.training
        self.optimizer = build_optimizer(model.parameters(), train.optimizer)
        self.scheduler = build_scheduler(
            self.optimizer, train.lr_schedule, steps_per_epoch, steps_per_epoch * train.epochs
        )
        self._aggregator: Aggregator | None = None

    @property
    def aggregator(self) -> Aggregator:
        assert self._aggregator is not None, "call start() first"
        return self._aggregator

    @property
    def module(self) -> nn.Module:
        return self.aggregator.module

    def start(self) -> None:
        self._aggregator = Aggregator(self.model, self.spec.distributed.aggregation, self.device)

    def rewrap(self) -> None:
        self.aggregator.rewrap()

    def accumulating(self, *, boundary: bool) -> contextlib.AbstractContextManager[None]:
        return self.aggregator.accumulating(skip_sync=not boundary)

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()  # type: ignore[no-untyped-call]

    def optimizer_step(self, step: int) -> None:
        clip = self.spec.training.gradient_clip_norm
        if clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.aggregator.after_optimizer_step(step)

    def lr(self) -> float:
        return float(self.scheduler.get_last_lr()[0])

    def save(self, directory: Path, progress: ckpt.Progress) -> bool:
        if self.rank != 0:  # every rank holds the same model and optimizer state
            return False
        ckpt.save(directory, self.model, self.optimizer, self.scheduler, progress)
        return True

    def load(self, directory: Path) -> ckpt.Progress:
        if (directory / ds_ckpt.STATE_DIR).is_dir():
            # Ray Train resumes the latest checkpoint of a job of the same name and storage path.
            raise FileNotFoundError(
                f"{directory} holds DeepSpeed state: a job of the same name wrote it with backend "
                "deepspeed. Resume it with backend deepspeed, or start afresh under another "
                "metadata.name or spec.checkpoint.storagePath"
            )
        return ckpt.load(directory, self.model, self.optimizer, self.scheduler)

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        return ckpt.cpu_state_dict(self.model)  # every rank holds all of it


def build_engine(
    model: nn.Module,
    spec: TrainingJobSpec,
    device: torch.device,
    *,
    rank: int,
    steps_per_epoch: int,
) -> Engine:
    if spec.distributed.backend is Backend.DEEPSPEED:
        # Imported only here: DeepSpeed is an optional extra and takes seconds to import.
        from kubetrain.trainer.deepspeed.engine import DeepSpeedEngine

        return DeepSpeedEngine(model, spec, device, rank=rank, steps_per_epoch=steps_per_epoch)
    return TorchEngine(model, spec, device, rank=rank, steps_per_epoch=steps_per_epoch)
