"""Small files in the published formats of MNIST, CIFAR-10 and IMDB, made offline.

Real format, small content: scikit-learn's 1,797 handwritten digits (the file it ships) written
as MNIST's gzipped IDX files and as CIFAR-10's python-pickle archive (upsampled to 32x32 RGB),
and a few hundred short reviews written here as IMDB's aclImdb_v1.tar.gz. `write_mirror` lays
them out as a mirror serves them, under their official names with `<name>.sha256` beside each.

numpy and the standard library only (no torch, no kubetrain), so that a mirror pod of the
end-to-end suite can run it: `python -m tests.data_formats DIR` writes a mirror into DIR.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import importlib.util
import io
import pickle
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

# The official names (kubetrain.api.mirrors states them with their checksums).
MNIST_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
CIFAR10_NAME = "cifar-10-python.tar.gz"
IMDB_NAME = "aclImdb_v1.tar.gz"
SIDECAR = ".sha256"
TRAIN_DIGITS = 1500  # the first 1,500 digits train, the other 297 test


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: ([1797, 8, 8] uint8 pixels 0-16, [1797] uint8 labels)."""
    spec = importlib.util.find_spec("sklearn")  # the package's folder, without importing it
    roots = spec.submodule_search_locations if spec is not None else None
    if not roots:
        raise RuntimeError("scikit-learn is not installed; its digits are the test images")
    with gzip.open(Path(roots[0]) / "datasets" / "data" / "digits.csv.gz", "rt") as fh:
        data = np.loadtxt(fh, delimiter=",")
    return data[:, :-1].reshape(-1, 8, 8).astype(np.uint8), data[:, -1].astype(np.uint8)


def upsample(images: np.ndarray, side: int) -> np.ndarray:
    """[N, 8, 8] digits (0-16) → [N, side, side] uint8 (0-255), nearest neighbour."""
    index = np.arange(side) * images.shape[-1] // side
    big = images[:, index][:, :, index].astype(np.float64)
    return np.round(big * 255.0 / 16.0).astype(np.uint8)


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file: magic 0x00 0x00 0x08 (uint8) <ndim>, big-endian uint32 sizes, the data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + array.tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    """`array` as an IDX file at `path`, gzipped when the name ends in .gz (as MNIST's are)."""
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
    return path


def write_mnist(directory: Path) -> list[Path]:
    """The four MNIST files, from the digits at 28x28: 1,500 to train, 297 to test."""
    images, labels = digits()
    big = upsample(images, 28)
    parts = (big[:TRAIN_DIGITS], labels[:TRAIN_DIGITS], big[TRAIN_DIGITS:], labels[TRAIN_DIGITS:])
    return [write_idx(directory / n, a) for n, a in zip(MNIST_NAMES, parts, strict=True)]


def cifar_images() -> tuple[np.ndarray, np.ndarray]:
    """The digits as CIFAR-10 images: [1797, 3, 32, 32] uint8 (a tint per channel), labels."""
    images, labels = digits()
    grey = upsample(images, 32)
    rgb = np.stack([grey, grey // 2, 255 - grey], axis=1)
    return rgb, labels.astype(np.int64)


def cifar_batch_bytes(images: np.ndarray, labels: np.ndarray, name: str) -> bytes:
    """One CIFAR-10 batch as published: a protocol-2 pickle of a dict whose `data` is uint8
    [N, 3072] (1,024 red, then green, then blue, each row by row) and `labels` a list."""
    batch = {
        "batch_label": name,
        "labels": [int(v) for v in labels],
        "data": np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1),
        "filenames": [f"{name}_{i}.png" for i in range(len(images))],
    }
    return pickle.dumps(batch, protocol=2)


@contextlib.contextmanager
def _tar_gz(path: Path) -> Iterator[tarfile.TarFile]:
    """A .tar.gz written byte for byte the same every time (gzip's header time is 0)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        yield tar
    path.write_bytes(gzip.compress(buffer.getvalue(), mtime=0))


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    tar.addfile(info)


def write_cifar_archive(path: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """cifar-10-python.tar.gz: cifar-10-batches-py/data_batch_1..5 share the first 1,500
    images, test_batch the rest; batches.meta and readme.html as in the real one."""
    folder = "cifar-10-batches-py"
    train = np.array_split(np.arange(TRAIN_DIGITS), 5)
    with _tar_gz(path) as tar:
        _add_dir(tar, folder)
        meta = {"label_names": [str(d) for d in range(10)], "num_vis": 3072}
        _add(tar, f"{folder}/batches.meta", pickle.dumps(meta, protocol=2))
        for i, rows in enumerate(train, start=1):
            name = f"data_batch_{i}"
            _add(tar, f"{folder}/{name}", cifar_batch_bytes(images[rows], labels[rows], name))
        test = slice(TRAIN_DIGITS, None)
        _add(tar, f"{folder}/test_batch", cifar_batch_bytes(images[test], labels[test], "test"))
        _add(tar, f"{folder}/readme.html", b"<html>test archive</html>")
    return path


_GOOD = ("a wonderful", "a moving", "a brilliant", "an uplifting", "a clever", "a charming")
_BAD = ("a boring", "a pointless", "a dreadful", "a tedious", "a clumsy", "a lifeless")
_THINGS = ("film", "story", "cast", "script", "ending", "score", "picture", "plot")


def imdb_reviews(per_class: int) -> dict[tuple[str, str], list[str]]:
    """`per_class` short reviews for each (split, pos|neg), made up here."""
    out: dict[tuple[str, str], list[str]] = {}
    for split_no, split in enumerate(("train", "test")):
        for label, words in (("pos", _GOOD), ("neg", _BAD)):
            out[split, label] = [
                f"{words[(i + split_no) % len(words)].capitalize()} "
                f"{_THINGS[i % len(_THINGS)]}.<br /><br />Review {i} of the {split} {label} set: "
                f"{words[i % len(words)]} {_THINGS[(i * 3) % len(_THINGS)]}."
                for i in range(per_class)
            ]
    return out


def write_imdb_archive(path: Path, per_class: int = 60) -> Path:
    """aclImdb_v1.tar.gz's layout: aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt, plus
    unlabelled train/unsup/ reviews, urls files and imdb.vocab (which a loader must skip)."""
    reviews = imdb_reviews(per_class)
    with _tar_gz(path) as tar:
        _add_dir(tar, "aclImdb")
        _add(tar, "aclImdb/imdb.vocab", b"the\nfilm\n")
        # Written in an order the loader must not depend on: ids descending, pos before neg.
        for (split, label), texts in reviews.items():
            rating = 9 if label == "pos" else 2
            for i in reversed(range(len(texts))):
                _add(tar, f"aclImdb/{split}/{label}/{i}_{rating}.txt", texts[i].encode())
            _add(tar, f"aclImdb/{split}/urls_{label}.txt", b"http://www.imdb.com/title/tt0/\n")
        for i in range(5):
            _add(tar, f"aclImdb/train/unsup/{i}_0.txt", b"An unlabelled review.")
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_sidecar(path: Path, digest: str | None = None) -> Path:
    """`<path>.sha256` as sha256sum writes it (a test may give a wrong `digest`)."""
    sidecar = path.with_name(path.name + SIDECAR)
    sidecar.write_text(f"{digest or sha256_of(path)}  {path.name}\n")
    return sidecar


def write_mirror(directory: Path, sidecars: bool = True) -> list[Path]:
    """Every dataset file kubetrain fetches, as a mirror serves them (official names), each with
    its `.sha256` unless `sidecars` is False."""
    directory.mkdir(parents=True, exist_ok=True)
    files = write_mnist(directory)
    files.append(write_cifar_archive(directory / CIFAR10_NAME, *cifar_images()))
    files.append(write_imdb_archive(directory / IMDB_NAME))
    if sidecars:
        for path in files:
            write_sidecar(path)
    return files


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.data_formats DIR  (writes a dataset mirror into DIR)")
    for written in write_mirror(Path(sys.argv[1])):
        print(written)
