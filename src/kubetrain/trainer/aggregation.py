"""How workers combine their updates into one global model.

- allreduce / fp16 / bf16 / powersgd: DistributedDataParallel averages gradients every optimizer
  step; the compression variants are DDP communication hooks.
- local_sgd: each worker steps on its own; every `period` steps the models are averaged and each
  worker moves toward the average, θ ← θ_local + α(θ_global − θ_local) (α = 1 is plain averaging).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from kubetrain.api.spec import AggregationSpec, AggregationStrategy


def distributed_ready() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class Aggregator:
    """Owns the model as the training loop sees it (`module`) and syncs it across workers."""

    def __init__(self, model: nn.Module, spec: AggregationSpec, device: torch.device) -> None:
        self.raw = model
        self.spec = spec
        self.device = device
        self.module: nn.Module = model
        self._powersgd_state: object | None = None
        self.rewrap()

    @property
    def uses_ddp(self) -> bool:
        return distributed_ready() and self.spec.strategy is not AggregationStrategy.LOCAL_SGD

    def rewrap(self) -> None:
        """(Re)build the DDP wrapper; needed again after unfreezing, as DDP fixes its params."""
        if not distributed_ready():
            self.module = self.raw
            return
        if self.spec.strategy is AggregationStrategy.LOCAL_SGD:
            self._broadcast_from_rank0()
            self.module = self.raw
            return
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        ddp = DistributedDataParallel(self.raw, device_ids=device_ids)
        self._register_hook(ddp)
        self.module = ddp

    def _register_hook(self, ddp: DistributedDataParallel) -> None:
        from torch.distributed.algorithms.ddp_comm_hooks import default_hooks, powerSGD_hook

        strategy = self.spec.strategy
        if strategy is AggregationStrategy.FP16:
            ddp.register_comm_hook(None, default_hooks.fp16_compress_hook)
        elif strategy is AggregationStrategy.BF16:
            ddp.register_comm_hook(None, default_hooks.bf16_compress_hook)
        elif strategy is AggregationStrategy.POWERSGD:
            state = powerSGD_hook.PowerSGDState(
                process_group=None,
                matrix_approximation_rank=self.spec.powersgd_rank,
                # PowerSGD's first iterations run plain allreduce; 2 is its smallest legal warmup.
                start_powerSGD_iter=2,
            )
            self._powersgd_state = state
            ddp.register_comm_hook(state, powerSGD_hook.powerSGD_hook)

    @contextlib.contextmanager
    def accumulating(self, skip_sync: bool) -> Iterator[None]:
        """Skip DDP's gradient allreduce on micro-batches that do not end an optimizer step."""
        if skip_sync and isinstance(self.module, DistributedDataParallel):
            with self.module.no_sync():
                yield
        else:
            yield

    def after_optimizer_step(self, step: int) -> None:
        """`step` counts optimizer steps from 1."""
        if (
            self.spec.strategy is AggregationStrategy.LOCAL_SGD
            and distributed_ready()
            and step % self.spec.period == 0
        ):
            self.pull_toward_average(self.spec.alpha)

    @torch.no_grad()
    def pull_toward_average(self, alpha: float) -> None:
        world = dist.get_world_size()
        tensors = [p for p in self.raw.parameters()] + [
            b for b in self.raw.buffers() if b.is_floating_point()
        ]
        flat = torch.cat([t.reshape(-1) for t in tensors])
        mean = flat.clone()
        dist.all_reduce(mean)
        mean /= world
        flat += alpha * (mean - flat)
        offset = 0
        for t in tensors:
            n = t.numel()
            t.copy_(flat[offset : offset + n].view_as(t))
            offset += n

    @torch.no_grad()
    def _broadcast_from_rank0(self) -> None:
        for t in list(self.raw.parameters()) + list(self.raw.buffers()):
            dist.broadcast(t, src=0)
