"""MobileNetV2's ImageNet weights come through the same download helper as the datasets: from
the weights mirror, checked, into torch.hub's folder; and only a MobileNetV2 backbone loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kubetrain.api.mirrors import MOBILENET_V2_IMAGENET, WEIGHTS_MIRROR
from kubetrain.trainer.data.downloads import ChecksumMismatch
from kubetrain.trainer.models.mobilenet import MobileNetV2Transfer
from tests import data_formats as formats
from tests.mirror_server import serve


@pytest.fixture(autouse=True)
def _no_weights_mirror(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(WEIGHTS_MIRROR, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


def _backbone_file(directory: Path, seed: int) -> tuple[Path, MobileNetV2Transfer]:
    torch.manual_seed(seed)
    source = MobileNetV2Transfer(num_classes=1000, head_size=8, dropout=0.0, pretrained=None)
    path = directory / MOBILENET_V2_IMAGENET.name
    torch.save({k: v for k, v in source.state_dict().items() if k.startswith("features.")}, path)
    return path, source


def test_mobilenet_imagenet_weights_from_the_weights_mirror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = tmp_path / "weights-mirror"
    served.mkdir()
    path, source = _backbone_file(served, seed=3)
    formats.write_sidecar(path)
    with serve(served) as mirror:
        monkeypatch.setenv(WEIGHTS_MIRROR, mirror.url)
        model = MobileNetV2Transfer(num_classes=2, head_size=8, dropout=0.0, pretrained="imagenet")
        again = MobileNetV2Transfer(num_classes=2, head_size=8, dropout=0.0, pretrained="imagenet")
        assert mirror.gets(MOBILENET_V2_IMAGENET.name) == 1
    for built in (model, again):
        assert torch.equal(
            built.features[5].conv[0][0].weight, source.features[5].conv[0][0].weight
        )
        assert torch.equal(built.features[18][1].running_var, source.features[18][1].running_var)
    cached = tmp_path / "torch-home" / "hub" / "checkpoints" / MOBILENET_V2_IMAGENET.name
    assert cached.read_bytes() == path.read_bytes()  # where torchvision keeps it too


def test_mobilenet_weights_without_a_sidecar_must_be_torchvisions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = tmp_path / "weights-mirror"
    served.mkdir()
    _backbone_file(served, seed=0)
    monkeypatch.setenv(WEIGHTS_MIRROR, str(served))
    with pytest.raises(
        ChecksumMismatch,
        match=rf"not {MOBILENET_V2_IMAGENET.digest} \(the published sha256\)",
    ):
        MobileNetV2Transfer(num_classes=2, head_size=8, dropout=0.0, pretrained="imagenet")


def test_mobilenet_refuses_weights_of_another_network(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"features.0.0.weight": torch.zeros(8, 3, 3, 3)}, path)
    with pytest.raises(
        ValueError, match=r"spec.model.pretrained: .*other.pth is not a MobileNetV2"
    ):
        MobileNetV2Transfer(num_classes=2, head_size=8, dropout=0.0, pretrained=str(path))


def test_mobilenet_refuses_a_backbone_with_missing_parameters(tmp_path: Path) -> None:
    path, _ = _backbone_file(tmp_path, seed=0)
    state = torch.load(path, weights_only=True)
    del state["features.3.conv.1.0.weight"]
    torch.save(state, path)
    with pytest.raises(
        ValueError, match=r"parameter names: 1 missing \(e.g. \['features.3.conv.1.0"
    ):
        MobileNetV2Transfer(num_classes=2, head_size=8, dropout=0.0, pretrained=str(path))
