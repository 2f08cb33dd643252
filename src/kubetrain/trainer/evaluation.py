"""Validation metrics from a confusion matrix: accuracy and macro precision, recall, F1.

Each worker fills a confusion matrix on its shard; the matrices are summed across workers
(allreduce) before any ratio is taken, so the metrics are exact for the whole validation set.
"""

from __future__ import annotations

import torch


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
