"""What each dataset source is known to yield before any data is read.

The semantic check (`semantics.py`) compares a spec's model against these facts, and the data
loaders (`kubetrain.trainer.data`) shape their tensors by the same `image_shape`, so the check and
the data cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from kubetrain.api.spec import DatasetSource, ModelName, TrainingJobSpec


class DataKind(str, Enum):
    IMAGE = "images"
    TABULAR = "tabular rows"
    TEXT = "text"
    ANY = "whatever the model takes"  # synthetic data is made to fit the model


@dataclass(frozen=True)
class SourceFacts:
    kind: DataKind
    classes: int | None  # None: only the data can tell (a folder's subfolders, a CSV column)
    channels: int = 0  # images only
    native_size: int = 0  # images only: the side the source comes at
    reads_path: bool = False  # whether dataset.path means anything for it
    needs_path: bool = False
    reads_file: bool = False  # dataset.path is a file (else a directory)


SOURCES: dict[DatasetSource, SourceFacts] = {
    DatasetSource.DIGITS: SourceFacts(DataKind.IMAGE, 10, channels=1, native_size=28),
    DatasetSource.MNIST: SourceFacts(
        DataKind.IMAGE, 10, channels=1, native_size=28, reads_path=True
    ),
    DatasetSource.CIFAR10: SourceFacts(
        DataKind.IMAGE, 10, channels=3, native_size=32, reads_path=True
    ),
    DatasetSource.IMAGE_FOLDER: SourceFacts(
        DataKind.IMAGE, None, channels=3, native_size=224, reads_path=True, needs_path=True
    ),
    DatasetSource.CSV: SourceFacts(
        DataKind.TABULAR, None, reads_path=True, needs_path=True, reads_file=True
    ),
    DatasetSource.IMDB: SourceFacts(DataKind.TEXT, 2, reads_path=True),
    DatasetSource.TEXT_SAMPLES: SourceFacts(DataKind.TEXT, 2),
    DatasetSource.SYNTHETIC: SourceFacts(DataKind.ANY, None),
}

# Which kinds of data each built-in model takes (custom models take anything).
MODEL_INPUTS: dict[ModelName, tuple[DataKind, ...]] = {
    ModelName.MLP: (DataKind.IMAGE, DataKind.TABULAR),
    ModelName.CNN: (DataKind.IMAGE,),
    ModelName.LSTM: (DataKind.TEXT,),
    ModelName.BERT: (DataKind.TEXT,),
    ModelName.MOBILENET_V2: (DataKind.IMAGE,),
}
TEXT_MODELS = (ModelName.LSTM, ModelName.BERT)
# Models with pretrained weights, and so with parts to freeze (custom models may have them too).
PRETRAINED_MODELS = (ModelName.BERT, ModelName.MOBILENET_V2)
SYNTHETIC_TEXT_CLASSES = 2  # synthetic data for a text model is the two-class text sample set


def image_shape(spec: TrainingJobSpec) -> tuple[int, int]:
    """(channels, side) of the images a job's model gets: RGB for mobilenet_v2 (grey digits are
    repeated over 3 channels), else the source's own; dataset.imageSize, else the native side."""
    facts = SOURCES[spec.dataset.source]
    color = spec.model.name is ModelName.MOBILENET_V2 or facts.channels == 3
    return (3 if color else 1), spec.dataset.image_size or facts.native_size or 28


def data_kind(spec: TrainingJobSpec) -> DataKind:
    """The kind of data a job's source yields; synthetic data takes the model's own kind."""
    kind = SOURCES[spec.dataset.source].kind
    if kind is not DataKind.ANY:
        return kind
    inputs = MODEL_INPUTS.get(spec.model.name)
    return inputs[0] if inputs else DataKind.TABULAR
