"""IMDB's 25,000 + 25,000 labelled reviews from the published aclImdb_v1.tar.gz; no `datasets`.

Read from `aclImdb/` in the dataset directory when unpacked there, else from the archive itself
(fetched there if missing): `aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`, positive 1 and
negative 0, in a fixed order (split, negatives first, then by id) whatever the archive's order.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

from kubetrain.api.mirrors import IMDB_FILE
from kubetrain.trainer.data.downloads import dataset_local_fix, fetch

FOLDER = "aclImdb"
LABELS = {"neg": 0, "pos": 1}
_REVIEW = re.compile(rf"^{FOLDER}/(train|test)/(neg|pos)/(\d+)_\d+\.txt$")

Reviews = tuple[list[str], list[int], list[str], list[int]]


def _from_folder(root: Path) -> Iterator[tuple[str, bytes]]:
    for split in ("train", "test"):
        for label in LABELS:
            for path in (root / split / label).glob("*.txt"):
                yield f"{FOLDER}/{split}/{label}/{path.name}", path.read_bytes()


def _from_archive(archive: Path) -> Iterator[tuple[str, bytes]]:
    """The labelled reviews in one pass (the unlabelled `unsup/` ones are skipped)."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if member.isfile() and _REVIEW.match(name):
                    reader = tar.extractfile(member)
                    assert reader is not None
                    yield name, reader.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ValueError(
            f"spec.dataset.path: cannot read {archive} ({exc}); delete it to fetch it again"
        ) from exc


def imdb_reviews(directory: Path, path_given: str | None) -> Reviews:
    """(train texts, train labels, test texts, test labels) from `directory`."""
    root = directory / FOLDER
    if (root / "train" / "pos").is_dir() and (root / "test" / "neg").is_dir():
        where, files = str(root), _from_folder(root)
    else:
        fix = dataset_local_fix(path_given, IMDB_FILE.name)
        archive = fetch(IMDB_FILE, directory, fix)
        where, files = str(archive), _from_archive(archive)
    found: dict[str, list[tuple[int, int, str]]] = {"train": [], "test": []}
    for name, data in files:
        match = _REVIEW.match(name)
        if match is None:
            continue
        split, label, number = match.group(1), LABELS[match.group(2)], int(match.group(3))
        found[split].append((label, number, data.decode("utf-8", "replace")))
    texts: dict[str, list[str]] = {}
    labels: dict[str, list[int]] = {}
    for split in ("train", "test"):
        reviews = sorted(found[split])
        if len({label for label, _, _ in reviews}) < 2:
            raise ValueError(
                f"spec.dataset.path: {where} has no {split}/pos and {split}/neg reviews "
                f"({FOLDER}/{split}/pos/*.txt, .../neg/*.txt); delete it to fetch it again"
            )
        texts[split] = [text for _, _, text in reviews]
        labels[split] = [label for label, _, _ in reviews]
    return texts["train"], labels["train"], texts["test"], labels["test"]
