"""A user model whose worker process dies once mid-training, as a real crash would."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import ray.train
import torch
import torch.distributed as dist
from torch import nn

CRASH_MARKER = "crashy-marker"
CRASH_AT_FORWARD = 20  # epoch 1 is 15 forwards per worker on digits (12 train + 3 val)


class CrashOnce(nn.Module):
    def __init__(self, features: int, classes: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(features, 64), nn.ReLU(), nn.Linear(64, classes)
        )
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == CRASH_AT_FORWARD and dist.get_rank() == 1:
            marker = marker_for(ray.train.get_context().get_storage().storage_fs_path)
            if not marker.exists():
                marker.write_text("crashed once")
                os._exit(1)  # no exception, no cleanup: the process is simply gone
        out: torch.Tensor = self.net(x)
        return out


def marker_for(storage_path: str | Path) -> Path:
    """The file that says "crashed already", beside the job's storage dir: each test has its own
    (a shared one let concurrent test runs skip each other's crash), and runs under the same
    parent share it, so a second run there is never interrupted."""
    return Path(storage_path).parent / CRASH_MARKER


def build(spec: Any, info: Any) -> nn.Module:
    return CrashOnce(info.features, spec.num_classes)
