"""MobileNetV2 transfer learning: a frozen backbone, global average pool, and a new head.

The backbone is written here with torchvision's exact parameter names (`features.N...`), so
ImageNet weights from torchvision (its .pth file, fetched like a dataset) load into it unchanged.
It does not import torchvision: the PyPI torchvision wheel only loads beside a matching CUDA
torch, and the trainer must also run on CPU-only torch builds.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from kubetrain.api.mirrors import MOBILENET_V2_IMAGENET
from kubetrain.api.spec import FreezeSpec
from kubetrain.trainer.data.downloads import fetch

# (expansion t, output channels c, repeats n, first stride s), from the MobileNetV2 paper.
_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
           (6, 160, 3, 2), (6, 320, 1, 1))  # fmt: skip
BACKBONE_CHANNELS = 1280


def _conv_bn_relu(inp: int, out: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = inp * expand
        self.use_res_connect = stride == 1 and inp == out
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(_conv_bn_relu(inp, hidden, 1))
        layers += [
            _conv_bn_relu(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, out, 1, bias=False),
            nn.BatchNorm2d(out),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.conv(x)
        return x + out if self.use_res_connect else out


def mobilenet_v2_features() -> nn.Sequential:
    layers: list[nn.Module] = [_conv_bn_relu(3, 32, 3, stride=2)]
    inp = 32
    for expand, out, repeats, stride in _BLOCKS:
        for i in range(repeats):
            layers.append(InvertedResidual(inp, out, stride if i == 0 else 1, expand))
            inp = out
    layers.append(_conv_bn_relu(inp, BACKBONE_CHANNELS, 1))
    return nn.Sequential(*layers)


def weights_dir() -> Path:
    """torch.hub's checkpoint directory ($TORCH_HOME/hub/checkpoints, else
    ~/.cache/torch/hub/checkpoints): where torchvision keeps the same file, so a copy it
    downloaded (or one put there on a volume) is used as it is."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def imagenet_state_dict(pretrained: str) -> dict[str, torch.Tensor]:
    """`imagenet`: torchvision's ImageNet weights, fetched once into the torch.hub cache (from
    download.pytorch.org, or the KUBETRAIN_WEIGHTS_MIRROR); a path loads a saved state_dict."""
    if pretrained == "imagenet":
        folder = weights_dir()
        path = fetch(
            MOBILENET_V2_IMAGENET,
            folder,
            f"set spec.model.pretrained to the path of a saved state_dict, or put "
            f"{MOBILENET_V2_IMAGENET.name} in {folder} ($TORCH_HOME/hub/checkpoints)",
        )
    else:
        path = Path(pretrained)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, pickle.UnpicklingError, EOFError) as exc:
        raise ValueError(
            f"spec.model.pretrained: cannot load {path} as a state_dict "
            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        ) from exc
    if not isinstance(loaded, dict):
        raise ValueError(
            f"spec.model.pretrained: {path} holds a {type(loaded).__name__}, not a state_dict "
            "(save `model.state_dict()`)"
        )
    return loaded


def load_backbone(features: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Copy the `features.*` tensors of `state` into `features`, all of them or fail: a file
    of another architecture must not leave the backbone silently random."""
    prefix = "features."
    backbone = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    problem = f"spec.model.pretrained: {where} is not a MobileNetV2 backbone with torchvision's"
    try:
        result = features.load_state_dict(backbone, strict=False)
    except RuntimeError as exc:  # a tensor of another shape
        detail = str(exc).splitlines()[-1].strip()
        raise ValueError(f"{problem} parameter shapes ({detail})") from exc
    # BatchNorm fills in num_batches_tracked for files saved before it existed.
    missing = [prefix + k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    unexpected = [prefix + k for k in result.unexpected_keys]
    if missing or unexpected:
        raise ValueError(
            f"{problem} parameter names: {len(missing)} missing (e.g. {missing[:2]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:2]})"
        )


class MobileNetV2Transfer(nn.Module):
    def __init__(
        self, num_classes: int, head_size: int, dropout: float, pretrained: str | None
    ) -> None:
        super().__init__()
        self.features = mobilenet_v2_features()
        if pretrained:
            load_backbone(self.features, imagenet_state_dict(pretrained), pretrained)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(BACKBONE_CHANNELS, head_size),
            nn.ReLU(),
            nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
            nn.Linear(head_size, num_classes),
        )
        self._backbone_frozen = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.pool(self.features(x)))
        return out

    def train(self, mode: bool = True) -> MobileNetV2Transfer:
        super().train(mode)
        if self._backbone_frozen:
            # A frozen backbone keeps its BatchNorm statistics too (Keras' training=False).
            self.features.eval()
        return self

    def freeze(self, spec: FreezeSpec) -> None:
        if spec.backbone:
            self.features.requires_grad_(False)
            self._backbone_frozen = True
            self.train(self.training)

    def unfreeze(self) -> None:
        self.features.requires_grad_(True)
        self._backbone_frozen = False
        self.train(self.training)
