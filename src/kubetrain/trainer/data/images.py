"""Image datasets: scikit-learn digits (offline), MNIST and CIFAR-10 (fetched once), folders."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, TensorDataset

from kubetrain.trainer.data.cifar import cifar10_arrays
from kubetrain.trainer.data.downloads import dataset_dir
from kubetrain.trainer.data.info import DataInfo, InputKind
from kubetrain.trainer.data.mnist import mnist_arrays
from kubetrain.trainer.data.split import Splits, split_tensors

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}


def _fit_images(x: torch.Tensor, channels: int, size: int) -> torch.Tensor:
    """[N, C, H, W] float images → the requested channel count and square side."""
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    if x.shape[1] == 1 and channels == 3:
        x = x.repeat(1, 3, 1, 1)
    return x.contiguous()


def image_info(num_classes: int, channels: int, size: int, names: tuple[str, ...] = ()) -> DataInfo:
    return DataInfo(
        kind=InputKind.IMAGE,
        num_classes=num_classes,
        channels=channels,
        image_size=size,
        features=channels * size * size,
        class_names=names,
    )


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as ([N, 8, 8] pixels 0-16, [N] labels).

    Read from the file scikit-learn ships, as its `load_digits` reads it, without importing
    `sklearn.datasets` (a second of every worker's start-up, for a 180 kB file)."""
    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    roots = spec.submodule_search_locations if spec is not None else None
    path = Path(roots[0]) / "datasets" / "data" / "digits.csv.gz" if roots else None
    if path is None or not path.is_file():
        from sklearn.datasets import load_digits as sk_digits  # a layout of its own: ask it

        digits = sk_digits()
        return digits.images, digits.target
    with gzip.open(path, "rt") as fh:
        data = np.loadtxt(fh, delimiter=",")
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(np.int64)


def load_digits(channels: int, size: int, val_split: float, seed: int) -> Splits:
    """scikit-learn's 1,797 real 8x8 handwritten digits, upsampled like MNIST (28x28, [0, 1])."""
    images, labels = digits_arrays()
    x = torch.tensor(images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(labels, dtype=torch.int64)
    train, val = split_tensors(_fit_images(x, channels, size), y, val_split, seed)
    return Splits(train, val, image_info(10, channels, size))


def load_mnist(path: str | None, channels: int, size: int) -> Splits:
    """MNIST's 60,000 training and 10,000 test digits (the test set validates), from
    spec.dataset.path or the cache, fetched there once (see downloads.py)."""
    train_x, train_y, test_x, test_y = mnist_arrays(dataset_dir(path, "mnist"), path)
    return _public_splits((train_x[:, None], train_y, test_x[:, None], test_y), 1, channels, size)


def load_cifar10(path: str | None, channels: int, size: int) -> Splits:
    """CIFAR-10's 50,000 training and 10,000 test images, as for MNIST."""
    arrays = cifar10_arrays(dataset_dir(path, "cifar10"), path)
    return _public_splits(arrays, 3, channels, size)


def _public_splits(
    arrays: tuple[np.ndarray, ...], native_channels: int, channels: int, size: int
) -> Splits:
    """uint8 [N, C, H, W] images and labels → float [0, 1] images of the requested shape."""
    parts = []
    for images, labels in (arrays[:2], arrays[2:]):
        x = torch.from_numpy(np.ascontiguousarray(images)).to(torch.float32) / 255.0
        y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        parts.append(TensorDataset(_fit_images(x, channels, size), y))
    return Splits(parts[0], parts[1], image_info(10, max(channels, native_channels), size))


class ImageFolder(Dataset[tuple[torch.Tensor, int]]):
    """Files under `<root>/<class>/`; decoded lazily so large folders need little memory."""

    def __init__(self, files: list[tuple[Path, int]], channels: int, size: int) -> None:
        self.files, self.channels, self.size = files, channels, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        path, label = self.files[index]
        with Image.open(path) as img:
            mode = "RGB" if self.channels == 3 else "L"
            pixels = np.asarray(img.convert(mode).resize((self.size, self.size)), np.float32)
        tensor = torch.from_numpy(pixels / 255.0)
        tensor = tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1)
        return tensor.contiguous(), label


def _class_files(root: Path, classes: list[str]) -> list[tuple[Path, int]]:
    return [
        (f, label)
        for label, name in enumerate(classes)
        for f in sorted((root / name).iterdir())
        if f.suffix.lower() in IMAGE_SUFFIXES
    ]


def load_image_folder(root: Path, channels: int, size: int, val_split: float, seed: int) -> Splits:
    """`root/train/<class>/` and `root/validation/<class>/`, or `root/<class>/` split by seed."""
    val_dir = next((root / d for d in ("validation", "val") if (root / d).is_dir()), None)
    train_dir = root / "train" if (root / "train").is_dir() else root
    classes = sorted(d.name for d in train_dir.iterdir() if d.is_dir())
    if len(classes) < 2:
        raise ValueError(
            f"spec.dataset.path: {root} needs one subfolder per class (at least 2), found "
            f"{classes or 'none'}"
        )
    files = _class_files(train_dir, classes)
    if val_dir is not None:
        val_files = _class_files(val_dir, classes)
    else:
        order = np.random.default_rng(seed).permutation(len(files))
        cut = max(1, int(len(files) * val_split))
        val_files = [files[i] for i in order[:cut]]
        files = [files[i] for i in order[cut:]]
    info = image_info(len(classes), channels, size, tuple(classes))
    return Splits(ImageFolder(files, channels, size), ImageFolder(val_files, channels, size), info)


def synthetic_images(
    samples: int, num_classes: int, channels: int, size: int, val_split: float, seed: int
) -> Splits:
    """Class templates plus noise: learnable, deterministic, instant."""
    gen = torch.Generator().manual_seed(seed)
    templates = torch.rand(num_classes, channels, size, size, generator=gen)
    y = torch.randint(0, num_classes, (samples,), generator=gen)
    x = templates[y] + 0.3 * torch.randn(samples, channels, size, size, generator=gen)
    train, val = split_tensors(x, y, val_split, seed)
    return Splits(train, val, image_info(num_classes, channels, size))
