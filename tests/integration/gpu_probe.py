"""kubetrain's MNIST MLP, as a user model that records, on rank 0, what training ran on: the
process group's backend, the parameters' device, and the autocast dtype of its forward."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ray.train
import torch
import torch.distributed as dist
from torch import nn

from kubetrain.trainer.models.mlp import MLP

PROBE_FILE = "gpu-probe.json"


class ProbedMLP(MLP):
    def __init__(self, features: int, classes: int) -> None:
        super().__init__(features, [128], classes, dropout=0.0)
        self.recorded = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
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
