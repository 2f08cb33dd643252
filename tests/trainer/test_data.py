"""Datasets load offline, shard disjointly, and augmentation really changes images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kubetrain.api.spec import AugmentationSpec
from kubetrain.trainer.data import check_dataset_path, load_splits, shard
from kubetrain.trainer.data.augment import augment_batch
from kubetrain.trainer.data.info import InputKind
from kubetrain.trainer.data.text import Vocabulary
from kubetrain.trainer.loop import equal_shard
from tests.conftest import make_job


def test_digits_look_like_mnist() -> None:
    splits = load_splits(make_job().spec)
    x, _ = splits.train[0]
    assert x.shape == (1, 28, 28) and float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert len(splits.train) + len(splits.val) == 1797  # all of scikit-learn's digits
    assert splits.info.num_classes == 10 and splits.info.features == 784


def test_shards_are_disjoint_equal_and_cover_the_data() -> None:
    data = torch.utils.data.TensorDataset(torch.arange(101))
    parts = [equal_shard(data, r, 2) for r in range(2)]
    seen = [int(parts[r][i][0]) for r in range(2) for i in range(len(parts[r]))]
    assert len(parts[0]) == len(parts[1]) == 50
    assert len(set(seen)) == 100
    val = [shard(data, r, 3) for r in range(3)]
    assert sum(len(v) for v in val) == 101  # validation keeps every sample


def test_csv_source(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    lines = ["a,b,species"] + [
        f"{rng.normal(i % 3):.3f},{rng.normal():.3f},{['x', 'y', 'z'][i % 3]}" for i in range(60)
    ]
    path = tmp_path / "d.csv"
    path.write_text("\n".join(lines))
    job = make_job(
        model={"name": "mlp", "inputSize": 2, "numClasses": 3},
        dataset={"source": "csv", "path": str(path), "labelColumn": "species"},
    )
    splits = load_splits(job.spec)
    assert splits.info.kind is InputKind.TABULAR and splits.info.class_names == ("x", "y", "z")
    assert splits.train[0][0].shape == (2,)


def test_csv_wrong_label_column(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n")
    job = make_job(dataset={"source": "csv", "path": str(path), "labelColumn": "y"})
    with pytest.raises(ValueError, match=r"spec.dataset.labelColumn: 'y' is not a column"):
        load_splits(job.spec)


def test_image_folder_with_train_and_validation(tmp_path: Path) -> None:
    from PIL import Image

    for part in ("train", "validation"):
        for cls, color in (("cats", 40), ("dogs", 200)):
            folder = tmp_path / part / cls
            folder.mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (40, 30), (color, i * 10, 0)).save(folder / f"{i}.png")
    job = make_job(
        model={"name": "mobilenet_v2", "numClasses": 2},
        dataset={"source": "image_folder", "path": str(tmp_path), "imageSize": 32},
    )
    splits = load_splits(job.spec)
    x, label = splits.train[5]
    assert x.shape == (3, 32, 32) and label == 1
    assert splits.info.class_names == ("cats", "dogs") and len(splits.val) == 6


def test_unreadable_dataset_path_is_named(tmp_path: Path) -> None:
    job = make_job(dataset={"source": "image_folder", "path": str(tmp_path / "nope")})
    with pytest.raises(FileNotFoundError, match=r"spec.dataset.path: '.*nope' does not exist"):
        check_dataset_path(job.spec)


def test_augmentation_moves_pixels_but_keeps_shape() -> None:
    images = torch.zeros(4, 1, 28, 28)
    images[:, :, 10:18, 2:8] = 1.0  # a bar on the left
    spec = AugmentationSpec(rotation=40, widthShift=0.2, heightShift=0.2, shear=0.2, zoom=0.2)
    out = augment_batch(images, spec, torch.Generator().manual_seed(0))
    assert out.shape == images.shape
    assert not torch.allclose(out, images)


def test_horizontal_flip_mirrors() -> None:
    images = torch.zeros(64, 1, 8, 8)
    images[:, :, :, :2] = 1.0  # bright left edge
    out = augment_batch(
        images, AugmentationSpec(horizontalFlip=True), torch.Generator().manual_seed(1)
    )
    flipped = out[:, 0, :, -1].mean(1) > 0.5
    assert 10 < int(flipped.sum()) < 54  # about half are mirrored
    assert torch.allclose(out[flipped], images[flipped].flip(-1), atol=1e-5)


def test_text_samples_for_lstm_and_vocab() -> None:
    job = make_job(
        model={"name": "lstm", "numClasses": 2, "vocabSize": 100},
        dataset={"source": "text_samples", "samples": 200, "maxLength": 24},
    )
    splits = load_splits(job.spec)
    ids, _ = splits.train[0]
    assert ids.dtype == torch.int64 and ids.shape == (24,) and int(ids.max()) < 100
    vocab = Vocabulary.build(["the cat", "the dog"], size=10)
    assert vocab.encode(["the bird"], 4).tolist() == [[vocab.index["the"], 1, 0, 0]]


def test_digits_are_scikit_learns_read_without_importing_sklearn_datasets() -> None:
    """The same 1,797 images and labels as scikit-learn's load_digits, without the second its
    import costs every worker at start-up."""
    import subprocess
    import sys

    import numpy as np
    from sklearn.datasets import load_digits as sk_digits

    from kubetrain.trainer.data.images import digits_arrays

    images, labels = digits_arrays()
    reference = sk_digits()
    assert np.array_equal(images, reference.images) and np.array_equal(labels, reference.target)
    probe = (
        "import sys; from kubetrain.trainer.data.images import digits_arrays; digits_arrays(); "
        "print('sklearn.datasets' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
