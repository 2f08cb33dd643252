"""Tabular datasets: a CSV of numeric features with a label column, and synthetic blobs."""

from __future__ import annotations

import csv
from pathlib import Path

import torch

from kubetrain.trainer.data.info import DataInfo, InputKind
from kubetrain.trainer.data.split import Splits, split_tensors


def tabular_info(num_classes: int, features: int, names: tuple[str, ...] = ()) -> DataInfo:
    return DataInfo(
        kind=InputKind.TABULAR, num_classes=num_classes, features=features, class_names=names
    )


def load_csv(path: Path, label_column: str, val_split: float, seed: int) -> Splits:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        if label_column not in columns:
            raise ValueError(
                f"spec.dataset.labelColumn: {label_column!r} is not a column of {path}; "
                f"columns are {columns}"
            )
        rows = list(reader)
    feature_cols = [c for c in columns if c != label_column]
    classes = sorted({r[label_column] for r in rows})
    lookup = {name: i for i, name in enumerate(classes)}
    try:
        x = torch.tensor([[float(r[c]) for c in feature_cols] for r in rows], dtype=torch.float32)
    except ValueError as exc:
        raise ValueError(f"spec.dataset.path: {path} has a non-numeric feature ({exc})") from exc
    # Standardise features so optimizer defaults work whatever the columns' units.
    x = (x - x.mean(0)) / x.std(0).clamp(min=1e-6)
    y = torch.tensor([lookup[r[label_column]] for r in rows], dtype=torch.int64)
    train, val = split_tensors(x, y, val_split, seed)
    return Splits(train, val, tabular_info(len(classes), len(feature_cols), tuple(classes)))


def synthetic_tabular(
    samples: int, num_classes: int, features: int, val_split: float, seed: int
) -> Splits:
    gen = torch.Generator().manual_seed(seed)
    centers = torch.randn(num_classes, features, generator=gen) * 2
    y = torch.randint(0, num_classes, (samples,), generator=gen)
    x = centers[y] + torch.randn(samples, features, generator=gen)
    train, val = split_tensors(x, y, val_split, seed)
    return Splits(train, val, tabular_info(num_classes, features))
