"""Validation metrics agree with scikit-learn's."""

from __future__ import annotations

import torch
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from kubetrain.trainer.evaluation import classification_metrics, confusion_matrix


def test_macro_metrics_match_sklearn() -> None:
    gen = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 4, (300,), generator=gen)
    preds = torch.where(
        torch.rand(300, generator=gen) < 0.7, labels, torch.randint(0, 4, (300,), generator=gen)
    )
    ours = classification_metrics(confusion_matrix(preds, labels, 4))
    p, r, f, _ = precision_recall_fscore_support(labels, preds, average="macro", zero_division=0)
    assert abs(ours["accuracy"] - accuracy_score(labels, preds)) < 1e-12
    assert abs(ours["precision"] - p) < 1e-12
    assert abs(ours["recall"] - r) < 1e-12
    assert abs(ours["f1"] - f) < 1e-12


def test_summed_shard_matrices_equal_the_whole() -> None:
    labels = torch.tensor([0, 1, 2, 2, 1, 0, 2])
    preds = torch.tensor([0, 2, 2, 2, 1, 1, 0])
    whole = confusion_matrix(preds, labels, 3)
    parts = confusion_matrix(preds[:3], labels[:3], 3) + confusion_matrix(preds[3:], labels[3:], 3)
    assert torch.equal(whole, parts)
