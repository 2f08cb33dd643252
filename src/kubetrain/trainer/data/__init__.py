"""Load a TrainingJob's dataset as train/validation splits, shaped for its model."""

from __future__ import annotations

import os
from pathlib import Path

from kubetrain.api.sources import SOURCES, image_shape
from kubetrain.api.spec import DatasetSource, ModelName, TrainingJobSpec
from kubetrain.trainer.data import images, tabular, text
from kubetrain.trainer.data.info import DataInfo, InputKind
from kubetrain.trainer.data.split import Splits, cap, shard

__all__ = ["DataInfo", "InputKind", "Splits", "check_dataset_path", "load_splits", "shard"]


def check_dataset_path(spec: TrainingJobSpec) -> None:
    """Fail before any worker starts when a local dataset path cannot be read."""
    if not SOURCES[spec.dataset.source].needs_path or spec.dataset.path is None:
        return
    path = Path(spec.dataset.path)
    want_dir = spec.dataset.source is DatasetSource.IMAGE_FOLDER
    problem = None
    if not path.exists():
        problem = "does not exist"
    elif want_dir and not path.is_dir():
        problem = "is not a directory (image_folder wants <path>/<class>/ subfolders)"
    elif not want_dir and not path.is_file():
        problem = "is not a file"
    elif not os.access(path, os.R_OK | (os.X_OK if want_dir else 0)):
        problem = "is not readable by this user"
    if problem:
        raise FileNotFoundError(
            f"spec.dataset.path: {str(path)!r} {problem}; fix the path or mount the data there"
        )


def _text_splits(spec: TrainingJobSpec) -> Splits:
    ds = spec.dataset
    if ds.source is DatasetSource.IMDB:
        tx, ty, vx, vy = text.load_imdb(ds.path)
    else:
        xs, ys = text.text_samples(ds.samples, spec.training.seed)
        cut = max(2, int(len(xs) * ds.validation_split))
        vx, vy, tx, ty = xs[:cut], ys[:cut], xs[cut:], ys[cut:]
    if spec.model.name is ModelName.BERT:
        from kubetrain.trainer.models.bert import resolve_pretrained

        tokenizer = resolve_pretrained(spec.model.pretrained)
        train, val = text.transformer_datasets((tx, ty), (vx, vy), tokenizer, ds.max_length)
        return Splits(train, val, text.text_info(InputKind.ENCODED_TEXT, 2, ds.max_length))
    tok_train, tok_val = text.token_datasets(
        (tx, ty), (vx, vy), spec.model.vocab_size, ds.max_length
    )
    return Splits(tok_train, tok_val, text.text_info(InputKind.TOKENS, 2, ds.max_length))


def _load(spec: TrainingJobSpec) -> Splits:
    ds, seed, model = spec.dataset, spec.training.seed, spec.model
    source = ds.source
    channels, size = image_shape(spec)
    if source is DatasetSource.DIGITS:
        return images.load_digits(channels, size, ds.validation_split, seed)
    if source is DatasetSource.MNIST:
        return images.load_mnist(ds.path, channels, size)
    if source is DatasetSource.CIFAR10:
        return images.load_cifar10(ds.path, channels, size)
    if source is DatasetSource.IMAGE_FOLDER:
        assert ds.path is not None
        return images.load_image_folder(Path(ds.path), channels, size, ds.validation_split, seed)
    if source is DatasetSource.CSV:
        assert ds.path is not None
        return tabular.load_csv(Path(ds.path), ds.label_column, ds.validation_split, seed)
    if source in (DatasetSource.IMDB, DatasetSource.TEXT_SAMPLES):
        return _text_splits(spec)
    # synthetic: whatever input the model takes
    if model.name in (ModelName.LSTM, ModelName.BERT):
        return _text_splits(spec)
    if model.name in (ModelName.CNN, ModelName.MOBILENET_V2):
        return images.synthetic_images(
            ds.samples, model.num_classes, channels, size, ds.validation_split, seed
        )
    return tabular.synthetic_tabular(
        ds.samples, model.num_classes, model.input_size, ds.validation_split, seed
    )


def load_splits(spec: TrainingJobSpec) -> Splits:
    splits = _load(spec)
    return Splits(cap(splits.train, spec.dataset.max_samples), splits.val, splits.info)
