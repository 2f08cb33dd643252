"""CIFAR-10 from its python-pickle archive (cifar-10-python.tar.gz), as published; no torchvision.

Read from `cifar-10-batches-py/` in the dataset directory when unpacked there (torchvision's
layout), else from the archive itself, fetched there if missing. The batches are pickles: they
are read with an unpickler that builds only numpy arrays, lists and strings, so a file from a
mirror cannot run code.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kubetrain.api.mirrors import CIFAR10_FILE
from kubetrain.trainer.data.downloads import dataset_local_fix, fetch

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"

# What a pickled numpy array needs, and nothing else (numpy >= 2 moved numpy.core to _core).
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a CIFAR-10 batch")
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)


def parse_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One batch's (images [N, 3, 32, 32] uint8, labels [N] int64)."""
    try:
        batch = _ArraysOnly(io.BytesIO(data), encoding="latin1").load()
        batch = {(k.decode() if isinstance(k, bytes) else k): v for k, v in batch.items()}
        pixels = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, AttributeError, ValueError) as exc:
        raise ValueError(
            f"spec.dataset.path: {where} is not a CIFAR-10 batch ({exc}); delete it to fetch "
            "it again"
        ) from exc
    if pixels.ndim != 2 or pixels.shape[1] != 3 * 32 * 32 or len(pixels) != len(labels):
        raise ValueError(
            f"spec.dataset.path: {where} holds data {pixels.shape} and {len(labels)} labels, "
            "not [N, 3072] and N"
        )
    return pixels.reshape(-1, 3, 32, 32), labels


def _from_folder(folder: Path) -> Iterator[tuple[str, bytes]]:
    for name in (*TRAIN_BATCHES, TEST_BATCH):
        yield name, (folder / name).read_bytes()


def _from_archive(archive: Path) -> Iterator[tuple[str, bytes]]:
    """The batches in one pass over the archive (a gzip tar is slow to seek)."""
    wanted = {f"{FOLDER}/{n}" for n in (*TRAIN_BATCHES, TEST_BATCH)}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if name in wanted and member.isfile():
                    reader = tar.extractfile(member)
                    assert reader is not None
                    yield name.rsplit("/", 1)[1], reader.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ValueError(
            f"spec.dataset.path: cannot read {archive} ({exc}); delete it to fetch it again"
        ) from exc


def cifar10_arrays(directory: Path, path_given: str | None) -> tuple[np.ndarray, ...]:
    """(train images [50000, 3, 32, 32] uint8, train labels [50000] int64, test images, test
    labels) from `directory`, fetching the archive when the batches are not there."""
    folder = directory / FOLDER
    if all((folder / n).is_file() for n in (*TRAIN_BATCHES, TEST_BATCH)):
        where, batches = str(folder), _from_folder(folder)
    else:
        fix = dataset_local_fix(path_given, CIFAR10_FILE.name)
        archive = fetch(CIFAR10_FILE, directory, fix)  # used as it is when already there
        where, batches = str(archive), _from_archive(archive)
    parsed = {name: parse_batch(data, f"{where}: {name}") for name, data in batches}
    missing = [n for n in (*TRAIN_BATCHES, TEST_BATCH) if n not in parsed]
    if missing:
        raise ValueError(
            f"spec.dataset.path: {where} lacks {', '.join(missing)}; delete it to fetch it again"
        )
    train_x = np.concatenate([parsed[n][0] for n in TRAIN_BATCHES])
    train_y = np.concatenate([parsed[n][1] for n in TRAIN_BATCHES])
    return train_x, train_y, *parsed[TEST_BATCH]
