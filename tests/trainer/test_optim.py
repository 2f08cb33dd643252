"""Optimizers, schedules and penalties do what their names say."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from kubetrain.api.spec import (
    EarlyStoppingSpec,
    LRScheduleSpec,
    OptimizerName,
    OptimizerSpec,
    RegularizationSpec,
)
from kubetrain.trainer.early_stopping import EarlyStopping
from kubetrain.trainer.optim import build_optimizer, lr_factor, penalty


@pytest.mark.parametrize("name", list(OptimizerName))
def test_every_optimizer_reduces_a_quadratic(name: OptimizerName) -> None:
    w = nn.Parameter(torch.tensor([3.0, -2.0]))
    opt = build_optimizer([w], OptimizerSpec(name=name, lr=0.1))
    start = float((w**2).sum().detach())
    for _ in range(20):
        opt.zero_grad()
        (w**2).sum().backward()
        opt.step()
    assert float((w**2).sum()) < start * 0.9


def test_momentum_is_sgd_with_momentum() -> None:
    opt = build_optimizer(
        [nn.Parameter(torch.zeros(1))], OptimizerSpec(name="momentum", momentum=0.8)
    )
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["momentum"] == 0.8


def test_warmup_then_step_decay() -> None:
    spec = LRScheduleSpec(name="step", stepSize=2, gamma=0.5, warmupSteps=4)
    factors = [lr_factor(spec, s, steps_per_epoch=10, total_steps=100) for s in (0, 3, 10, 20, 45)]
    assert factors == [0.25, 1.0, 1.0, 0.5, 0.25]


def test_exponential_and_cosine() -> None:
    exp = LRScheduleSpec(name="exponential", gamma=0.9)
    assert lr_factor(exp, 30, 10, 100) == pytest.approx(0.9**3)
    cos = LRScheduleSpec(name="cosine")
    assert lr_factor(cos, 0, 10, 100) == 1.0
    assert lr_factor(cos, 50, 10, 100) == pytest.approx(0.5)
    assert lr_factor(cos, 100, 10, 100) == pytest.approx(0.0, abs=1e-12)
    assert math.isclose(lr_factor(LRScheduleSpec(), 77, 10, 100), 1.0)


def test_l1_l2_penalty_on_weights_not_biases() -> None:
    layer = nn.Linear(2, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2.0]]))
        layer.bias.fill_(5.0)
    value = penalty(layer, RegularizationSpec(l1=0.1, l2=0.01))
    assert value is not None and float(value) == pytest.approx(0.1 * 3 + 0.01 * 5)
    assert penalty(layer, RegularizationSpec()) is None


def test_early_stopping_patience_and_min_delta() -> None:
    es = EarlyStopping(EarlyStoppingSpec(monitor="val_loss", patience=2, minDelta=0.01))
    assert [es.update(v) for v in (1.0, 0.95, 0.945, 0.944)] == [False, False, False, True]
    acc = EarlyStopping(EarlyStoppingSpec(monitor="val_accuracy", patience=1))
    assert acc.minimize is False and acc.update(0.5) is False and acc.update(0.4) is True
