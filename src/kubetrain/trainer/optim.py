"""Optimizers, learning-rate schedules and L1/L2 penalties, built from the spec."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from kubetrain.api.spec import (
    LRScheduleSpec,
    OptimizerName,
    OptimizerSpec,
    RegularizationSpec,
    ScheduleName,
)


def build_optimizer(params: Iterable[nn.Parameter], spec: OptimizerSpec) -> Optimizer:
    trainable = [p for p in params if p.requires_grad]
    lr, wd = spec.lr, spec.weight_decay
    match spec.name:
        case OptimizerName.SGD:
            return torch.optim.SGD(trainable, lr=lr, weight_decay=wd)
        case OptimizerName.MOMENTUM:
            return torch.optim.SGD(trainable, lr=lr, momentum=spec.momentum, weight_decay=wd)
        case OptimizerName.ADAM:
            return torch.optim.Adam(trainable, lr=lr, betas=spec.betas, weight_decay=wd)
        case OptimizerName.ADAMW:
            return torch.optim.AdamW(trainable, lr=lr, betas=spec.betas, weight_decay=wd)
        case OptimizerName.ADAGRAD:
            return torch.optim.Adagrad(trainable, lr=lr, weight_decay=wd)
        case OptimizerName.RMSPROP:
            return torch.optim.RMSprop(trainable, lr=lr, momentum=spec.momentum, weight_decay=wd)
    raise AssertionError(spec.name)


def lr_factor(spec: LRScheduleSpec, step: int, steps_per_epoch: int, total_steps: int) -> float:
    """Multiplier on the base LR at optimizer step `step` (0-based): warmup, then decay."""
    if step < spec.warmup_steps:
        return (step + 1) / spec.warmup_steps
    epoch = step // max(1, steps_per_epoch)
    match spec.name:
        case ScheduleName.NONE:
            return 1.0
        case ScheduleName.STEP:
            return float(spec.gamma ** (epoch // spec.step_size))
        case ScheduleName.EXPONENTIAL:
            return float(spec.gamma**epoch)
        case ScheduleName.COSINE:
            span = max(1, total_steps - spec.warmup_steps)
            progress = min(1.0, (step - spec.warmup_steps) / span)
            return 0.5 * (1 + math.cos(math.pi * progress))
    raise AssertionError(spec.name)


def build_scheduler(
    optimizer: Optimizer, spec: LRScheduleSpec, steps_per_epoch: int, total_steps: int
) -> LambdaLR:
    """Stepped once per optimizer step, so warmup is in steps and decay in epochs."""
    return LambdaLR(optimizer, lambda step: lr_factor(spec, step, steps_per_epoch, total_steps))


def penalty(model: nn.Module, spec: RegularizationSpec) -> torch.Tensor | None:
    """λ1·Σ|w| + λ2·Σw² over trainable weights (biases and norms excluded), or None."""
    if not (spec.l1 or spec.l2):
        return None
    weights = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim > 1]
    total = torch.zeros((), device=weights[0].device if weights else "cpu")
    for w in weights:
        if spec.l1:
            total = total + spec.l1 * w.abs().sum()
        if spec.l2:
            total = total + spec.l2 * w.pow(2).sum()
    return total
