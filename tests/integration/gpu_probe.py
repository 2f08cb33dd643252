"""A user model (the MNIST MLP's shape) that records, on rank 0, what training ran on: the
process group's backend, the parameters' device, and the autocast dtype of its forward."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ray.train
import torch
import torch.distributed as dist
from torch import nn

PROBE_FILE = "gpu-probe.json"


class ProbedMLP(nn.Module):
    def __init__(self, features: int, classes: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(features, 128), nn.ReLU(), nn.Linear(128, classes)
        )
        self.recorded = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        if self.training and not self.recorded and dist.get_rank() == 0:
            self.recorded = True
            storage = Path(ray.train.get_context().get_storage().storage_fs_path)
            (storage / PROBE_FILE).write_text(
                json.dumps(
                    {
                        "backend": dist.get_backend(),
                        "param_device": next(self.parameters()).device.type,
                        "input_device": x.device.type,
                        "autocast": torch.is_autocast_enabled(x.device.type),
                        "output_dtype": str(out.dtype),
                    }
                )
            )
        return out


def build(spec: Any, info: Any) -> nn.Module:
    return ProbedMLP(info.features, spec.num_classes)
