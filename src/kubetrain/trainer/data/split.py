"""Train/validation splits and each worker's shard of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from kubetrain.trainer.data.info import DataInfo


@dataclass(frozen=True)
class Splits:
    train: Dataset[Any]
    val: Dataset[Any]
    info: DataInfo


def split_tensors(
    x: torch.Tensor, y: torch.Tensor, val_split: float, seed: int
) -> tuple[TensorDataset, TensorDataset]:
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    cut = max(1, int(len(y) * val_split))
    val, train = order[:cut], order[cut:]
    return TensorDataset(x[train], y[train]), TensorDataset(x[val], y[val])


def cap(dataset: Dataset[Any], max_samples: int | None) -> Dataset[Any]:
    if max_samples is None or max_samples >= len(dataset):  # type: ignore[arg-type]
        return dataset
    return Subset(dataset, range(max_samples))


def shard(dataset: Dataset[Any], rank: int, world_size: int) -> Dataset[Any]:
    """Every world_size-th sample from `rank`: disjoint, no padding, so eval counts are exact."""
    return Subset(dataset, range(rank, len(dataset), world_size))  # type: ignore[arg-type]
