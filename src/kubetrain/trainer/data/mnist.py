"""MNIST from its four IDX files (gzip), as published; no torchvision.

The files are looked for in the dataset directory (spec.dataset.path), as published (`.gz`) or
unpacked, also where torchvision keeps them (`MNIST/raw/`); missing ones are fetched there.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np

from kubetrain.api.mirrors import MNIST_FILES
from kubetrain.trainer.data.downloads import dataset_local_fix, fetch

# IDX element types (the third byte of the magic number).
_IDX_TYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def parse_idx(data: bytes, where: str) -> np.ndarray:
    """An IDX file's array: magic 0x0000 <type> <ndim>, then ndim big-endian uint32 sizes."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise ValueError(f"{where} is not an IDX file (bad magic number {data[:4].hex()})")
    dtype, ndim = _IDX_TYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(n) for n in np.frombuffer(data, ">u4", count=ndim, offset=4))
    count = int(np.prod(shape)) if shape else 1
    if len(data) != header + count * dtype.itemsize:
        raise ValueError(
            f"{where} holds {len(data) - header} bytes of data where its header says "
            f"{shape} x {dtype.itemsize}: a truncated file"
        )
    array = np.frombuffer(data, dtype, count=count, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def read_idx(path: Path) -> np.ndarray:
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        return parse_idx(data, str(path))
    except (OSError, EOFError, ValueError) as exc:
        raise ValueError(
            f"spec.dataset.path: cannot read {path} ({exc}); delete it to fetch it again"
        ) from exc


def _existing(directory: Path, name: str) -> Path | None:
    plain = name.removesuffix(".gz")
    for folder in (directory, directory / "MNIST" / "raw"):
        for candidate in (folder / name, folder / plain):
            if candidate.is_file():
                return candidate
    return None


def mnist_arrays(directory: Path, path_given: str | None) -> tuple[np.ndarray, ...]:
    """(train images [60000, 28, 28] uint8, train labels [60000] uint8, test images, test
    labels), from `directory`, fetching the files it lacks."""
    names = ", ".join(f.name for f in MNIST_FILES)
    arrays = []
    for file in MNIST_FILES:
        path = _existing(directory, file.name) or fetch(
            file, directory, dataset_local_fix(path_given, names)
        )
        arrays.append(read_idx(path))
    train_x, train_y, test_x, test_y = arrays
    for x, y in ((train_x, train_y), (test_x, test_y)):
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(
                f"spec.dataset.path: MNIST files in {directory} disagree: images {x.shape}, "
                f"labels {y.shape}"
            )
    return train_x, train_y, test_x, test_y
