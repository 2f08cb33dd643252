"""Random image augmentation on whole batches, as affine warps: rotation, shift, shear, zoom, flip.

Done with `affine_grid`/`grid_sample` on the batch tensor, so it runs on the GPU when the batch is
there and needs no torchvision.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from kubetrain.api.spec import AugmentationSpec


def is_enabled(spec: AugmentationSpec) -> bool:
    return any(
        (spec.rotation, spec.width_shift, spec.height_shift, spec.shear, spec.zoom,
         spec.horizontal_flip)
    )  # fmt: skip


def augment_batch(
    images: torch.Tensor, spec: AugmentationSpec, gen: torch.Generator
) -> torch.Tensor:
    """Warp each image [N, C, H, W] by its own random affine transform."""
    n = images.shape[0]

    def uniform(bound: float) -> torch.Tensor:
        return (torch.rand(n, generator=gen) * 2 - 1) * bound

    angle = uniform(math.radians(spec.rotation))
    shear = uniform(spec.shear)
    zoom = 1 + uniform(spec.zoom)
    # affine_grid works in [-1, 1] coordinates: a shift of fraction f of the side is 2f.
    tx, ty = uniform(2 * spec.width_shift), uniform(2 * spec.height_shift)
    flip = torch.ones(n)
    if spec.horizontal_flip:
        flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = cos * zoom * flip
    theta[:, 0, 1] = (-sin + shear) * zoom
    theta[:, 0, 2] = tx
    theta[:, 1, 0] = sin * zoom * flip
    theta[:, 1, 1] = cos * zoom
    theta[:, 1, 2] = ty
    grid = F.affine_grid(theta.to(images), list(images.shape), align_corners=False)
    # "border" repeats edge pixels, like Keras' default fill_mode="nearest".
    return F.grid_sample(images, grid, padding_mode="border", align_corners=False)
