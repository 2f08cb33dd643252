"""A worker's model, optimizer and schedule under DeepSpeed (ZeRO 0-3), behind `Engine`."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from kubetrain.api.deepspeed.config import effective
from kubetrain.api.spec import TrainingJobSpec
from kubetrain.trainer import checkpoint as ckpt
from kubetrain.trainer.deepspeed import checkpoint as ds_ckpt
from kubetrain.trainer.optim import build_scheduler

log = logging.getLogger(__name__)


def _import_deepspeed(device: torch.device) -> Any:
    # DeepSpeed picks its accelerator once, on import; without a GPU it must be told "cpu" (it
    # then talks over gloo, as Ray Train's process group does). A user's own setting wins.
    os.environ.setdefault("DS_ACCELERATOR", "cuda" if device.type == "cuda" else "cpu")
    import deepspeed

    # Its INFO lines (config dumps, timers) would bury kubetrain's own progress.
    logging.getLogger("DeepSpeed").setLevel(logging.WARNING)
    can_compile = shutil.which("c++") and shutil.which("ninja")
    if os.environ["DS_ACCELERATOR"] == "cpu" and not can_compile:
        # On CPU its comm backend compiles a shared-memory all-reduce (deepspeed_shm_comm) as it
        # starts, and fails where there is no compiler (the trainer image has none). Marked
        # incompatible, the op is skipped and DeepSpeed all-reduces over gloo instead.
        from deepspeed.ops.op_builder.cpu import ShareMemCommBuilder

        deepspeed.ops.__compatible_ops__[ShareMemCommBuilder.NAME] = False
    return deepspeed


class DeepSpeedEngine:
    """Gradient accumulation follows the loop's micro-batch groups (the last group of an epoch
    may be shorter), so the loop marks each step's boundary and scales the loss itself."""

    def __init__(
        self,
        model: nn.Module,
        spec: TrainingJobSpec,
        device: torch.device,
        *,
        rank: int,
        steps_per_epoch: int,
    ) -> None:
        deepspeed = _import_deepspeed(device)
        self._deepspeed = deepspeed
        self.model, self.rank = model, rank
        config, conflicts = effective(spec)
        if rank == 0:
            for conflict in conflicts:
                log.warning("deepspeed config: %s", conflict)
        train = spec.training

        def schedule(optimizer: Optimizer) -> LRScheduler:
            # The same warmup and decay as DDP, stepped by DeepSpeed after each update.
            total = steps_per_epoch * train.epochs
            return build_scheduler(optimizer, train.lr_schedule, steps_per_epoch, total)

        trainable = [p for p in model.parameters() if p.requires_grad]
        self._engine, *_ = deepspeed.initialize(
            model=model,
            model_parameters=trainable,
            config=config,
            lr_scheduler=None if "scheduler" in config else schedule,
        )

    @property
    def module(self) -> nn.Module:
        module: nn.Module = self._engine
        return module

    def start(self) -> None:
        """Nothing to do: deepspeed.initialize already wrapped the model."""

    def rewrap(self) -> None:
        raise NotImplementedError("DeepSpeed cannot change trainable parameters mid-run")

    def accumulating(self, *, boundary: bool) -> contextlib.AbstractContextManager[None]:
        self._engine.set_gradient_accumulation_boundary(boundary)
        return contextlib.nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        # The loop already divided by this step's number of micro-batches.
        self._engine.backward(loss, scale_wrt_gas=False)

    def optimizer_step(self, step: int) -> None:
        self._engine.step()  # clips, updates, steps the schedule and clears gradients

    def lr(self) -> float:
        return float(self._engine.get_lr()[0])

    def save(self, directory: Path, progress: ckpt.Progress) -> bool:
        ds_ckpt.save(self._engine, directory, progress, self.rank)
        return True  # every rank's partition goes into the checkpoint

    def load(self, directory: Path) -> ckpt.Progress:
        return ds_ckpt.load(self._engine, directory, world_size=self._engine.dp_world_size)

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        """ZeRO-3 holds a shard of each parameter per rank: gather them all (collective), copy,
        and let them go again. Other stages hold whole parameters on every rank."""
        sharded = self._engine.zero_optimization_stage() == 3
        params = list(self.model.parameters())
        with self._deepspeed.zero.GatheredParameters(params, modifier_rank=None, enabled=sharded):
            return ckpt.cpu_state_dict(self.model)
