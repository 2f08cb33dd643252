"""MobileNetV2 transfer learning: a frozen backbone, global average pool, and a new head.

The backbone is written here with torchvision's exact parameter names (`features.N...`), so
ImageNet weights from torchvision load into it unchanged. It does not import torchvision: the
PyPI torchvision wheel only loads beside a matching CUDA torch, and the trainer must also run
on CPU-only torch builds.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from kubetrain.api.spec import FreezeSpec

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


def imagenet_state_dict(pretrained: str) -> dict[str, torch.Tensor]:
    """`imagenet` downloads torchvision's weights (real clusters); a path loads a saved file."""
    if pretrained == "imagenet":
        try:
            from torchvision.models import MobileNet_V2_Weights, mobilenet_v2
        except (ImportError, RuntimeError) as exc:
            raise RuntimeError(
                "spec.model.pretrained: 'imagenet' needs torchvision with a matching torch; "
                "install it or point `pretrained` at a saved state_dict file"
            ) from exc
        state: dict[str, torch.Tensor] = mobilenet_v2(
            weights=MobileNet_V2_Weights.IMAGENET1K_V1
        ).state_dict()
        return state
    loaded: dict[str, torch.Tensor] = torch.load(Path(pretrained), map_location="cpu")
    return loaded


class MobileNetV2Transfer(nn.Module):
    def __init__(
        self, num_classes: int, head_size: int, dropout: float, pretrained: str | None
    ) -> None:
        super().__init__()
        self.features = mobilenet_v2_features()
        if pretrained:
            state = imagenet_state_dict(pretrained)
            backbone = {k: v for k, v in state.items() if k.startswith("features.")}
            self.load_state_dict(backbone, strict=False)
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
