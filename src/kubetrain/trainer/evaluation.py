"""Validation metrics from a confusion matrix: accuracy and macro precision, recall, F1.

Each worker fills a confusion matrix on its shard; the matrices are summed across workers
(allreduce) before any ratio is taken, so the metrics are exact for the whole validation set.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F


def confusion_matrix(preds: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    index = labels.to(torch.int64) * num_classes + preds.to(torch.int64)
    counts = torch.bincount(index, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).to(torch.float64)


def classification_metrics(confusion: torch.Tensor) -> dict[str, float]:
    """Rows are true classes, columns predictions. Classes never seen nor predicted are skipped."""
    tp = confusion.diag()
    support = confusion.sum(1)
    predicted = confusion.sum(0)
    total = confusion.sum()
    present = (support + predicted) > 0
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))
    recall = torch.where(support > 0, tp / support.clamp(min=1), torch.zeros_like(tp))
    denom = precision + recall
    f1 = torch.where(
        denom > 0, 2 * precision * recall / denom.clamp(min=1e-12), torch.zeros_like(tp)
    )

    def macro(values: torch.Tensor) -> float:
        return float(values[present].mean()) if present.any() else 0.0

    return {
        "accuracy": float(tp.sum() / total) if total > 0 else 0.0,
        "precision": macro(precision),
        "recall": macro(recall),
        "f1": macro(f1),
    }


def tally(
    predict: Callable[[Any], torch.Tensor],
    batches: Iterable[tuple[Any, torch.Tensor]],
    num_classes: int,
    autocast: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The confusion matrix and [sum of losses, samples] of `predict` (inputs to logits) over
    `batches`: sums, so that shards can be added up (allreduce) before `scores`."""
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.float64)
    loss_sum = torch.zeros(2, dtype=torch.float64)
    with torch.no_grad():
        for inputs, labels in batches:
            with autocast():
                logits = predict(inputs)
            labels = labels.to(logits.device)
            loss_sum[0] += float(F.cross_entropy(logits.float(), labels, reduction="sum"))
            loss_sum[1] += len(labels)
            confusion += confusion_matrix(logits.argmax(1).cpu(), labels.cpu(), num_classes)
    return confusion, loss_sum


def scores(confusion: torch.Tensor, loss_sum: torch.Tensor) -> dict[str, float]:
    """Validation loss and metrics from `tally`'s sums."""
    loss = float(loss_sum[0] / max(float(loss_sum[1]), 1.0))
    return {"loss": loss} | classification_metrics(confusion)
