"""User code as a `module:function` entrypoint would name it."""

from __future__ import annotations

from typing import Any

from torch import nn


def tiny(spec: Any, info: Any) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(info.features, spec.num_classes))


def wrong_width(spec: Any, info: Any) -> nn.Module:
    """A user's model whose first layer does not fit the data: fails on the first batch."""
    return nn.Sequential(nn.Flatten(), nn.Linear(info.features + 1, spec.num_classes))
