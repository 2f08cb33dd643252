"""What a dataset tells the model builder about its shape."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class InputKind(str, Enum):
    IMAGE = "image"  # float tensors [C, H, W]
    TABULAR = "tabular"  # float tensors [F]
    TOKENS = "tokens"  # int64 token ids [L], 0 is padding
    ENCODED_TEXT = "encoded_text"  # dict of input_ids / attention_mask for transformers


@dataclass(frozen=True)
class DataInfo:
    kind: InputKind
    num_classes: int
    channels: int = 1
    image_size: int = 0
    features: int = 0  # flattened input size
    class_names: tuple[str, ...] = ()
