"""Build the torch module a TrainingJob asks for, checked against the data's shape."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import nn

from kubetrain.api.spec import FreezeSpec, ModelName, ModelSpec
from kubetrain.trainer.data.info import DataInfo, InputKind
from kubetrain.trainer.entrypoints import import_entrypoint
from kubetrain.trainer.models.bert import BertClassifier
from kubetrain.trainer.models.cnn import SmallCNN
from kubetrain.trainer.models.lstm import LSTMClassifier
from kubetrain.trainer.models.mlp import MLP
from kubetrain.trainer.models.mobilenet import MobileNetV2Transfer

__all__ = ["Freezable", "ModelMismatch", "build_model", "required_input"]


class ModelMismatch(ValueError):
    """The model and the dataset do not fit together; the message names the field to change."""


@runtime_checkable
class Freezable(Protocol):
    def freeze(self, spec: FreezeSpec) -> None: ...
    def unfreeze(self) -> None: ...


# Which kind of input each built-in model consumes.
_INPUTS = {
    ModelName.MLP: (InputKind.IMAGE, InputKind.TABULAR),
    ModelName.CNN: (InputKind.IMAGE,),
    ModelName.LSTM: (InputKind.TOKENS,),
    ModelName.BERT: (InputKind.ENCODED_TEXT,),
    ModelName.MOBILENET_V2: (InputKind.IMAGE,),
}


def required_input(name: ModelName) -> InputKind | None:
    """The input kind data loaders should produce for this model (None: custom decides)."""
    kinds = _INPUTS.get(name)
    return kinds[0] if kinds else None


def _check(spec: ModelSpec, info: DataInfo) -> None:
    allowed = _INPUTS.get(spec.name)
    if allowed and info.kind not in allowed:
        raise ModelMismatch(
            f"spec.model.name: {spec.name.value!r} takes {allowed[0].value} input but the "
            f"dataset yields {info.kind.value}; pick a dataset source that fits"
        )
    if spec.num_classes != info.num_classes:
        raise ModelMismatch(
            f"spec.model.numClasses is {spec.num_classes} but the dataset has "
            f"{info.num_classes} classes; set numClasses: {info.num_classes}"
        )
    if spec.name is ModelName.MLP and spec.input_size != info.features:
        raise ModelMismatch(
            f"spec.model.inputSize is {spec.input_size} but each sample has {info.features} "
            f"features; set inputSize: {info.features}"
        )
    if spec.name is ModelName.MOBILENET_V2 and info.channels != 3:
        raise ModelMismatch("spec.model.name: mobilenet_v2 needs 3-channel (RGB) images")


def build_model(spec: ModelSpec, info: DataInfo) -> nn.Module:
    _check(spec, info)
    model: nn.Module
    if spec.name is ModelName.MLP:
        model = MLP(spec.input_size, spec.hidden_sizes, spec.num_classes, spec.dropout)
    elif spec.name is ModelName.CNN:
        model = SmallCNN(info.channels, info.image_size, spec.num_classes, spec.dropout)
    elif spec.name is ModelName.LSTM:
        model = LSTMClassifier(
            spec.vocab_size, spec.embedding_dim, spec.hidden_size, spec.num_classes, spec.dropout
        )
    elif spec.name is ModelName.BERT:
        model = BertClassifier(spec.pretrained, spec.num_classes, spec.dropout)
    elif spec.name is ModelName.MOBILENET_V2:
        model = MobileNetV2Transfer(
            spec.num_classes, spec.hidden_size, spec.dropout, spec.pretrained
        )
    else:
        assert spec.entrypoint is not None  # the spec validator guarantees it
        built = import_entrypoint(spec.entrypoint, field="spec.model.entrypoint")(spec, info)
        if not isinstance(built, nn.Module):
            raise ModelMismatch(
                f"spec.model.entrypoint: {spec.entrypoint} returned {type(built).__name__}, "
                "not a torch.nn.Module"
            )
        model = built
    if isinstance(model, Freezable):
        model.freeze(spec.freeze)
    return model
