"""Text datasets (IMDB, fetched once; hand-written offline samples) and their tokenizers."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset, TensorDataset

from kubetrain.trainer.data.downloads import dataset_dir
from kubetrain.trainer.data.imdb import imdb_reviews
from kubetrain.trainer.data.info import DataInfo, InputKind

PAD, UNK = 0, 1

# Short movie reviews written for kubetrain's offline tests (0 = negative, 1 = positive).
_POSITIVE = (
    "a wonderful film with a moving story",
    "the acting was brilliant and heartfelt",
    "i loved every minute of it",
    "beautifully shot and wonderfully scored",
    "an excellent script and a great cast",
    "funny touching and full of charm",
    "one of the best movies i have seen this year",
    "the director did a superb job",
    "a delightful and uplifting experience",
    "i would happily watch it again",
    "the performances are outstanding",
    "clever witty and genuinely entertaining",
    "a masterpiece that deserves every award",
    "the story kept me hooked until the end",
    "great characters and a satisfying ending",
    "fresh original and a joy to watch",
)
_NEGATIVE = (
    "a boring film with a pointless story",
    "the acting was wooden and lifeless",
    "i hated every minute of it",
    "badly shot and the music was awful",
    "a terrible script and a weak cast",
    "dull tedious and completely charmless",
    "one of the worst movies i have seen this year",
    "the director did a poor job",
    "a dreary and depressing waste of time",
    "i would never watch it again",
    "the performances are embarrassing",
    "predictable silly and painfully unfunny",
    "a disaster that deserves no award",
    "the story lost me long before the end",
    "flat characters and a disappointing ending",
    "stale derivative and a chore to watch",
)


def text_samples(count: int, seed: int) -> tuple[list[str], list[int]]:
    """`count` reviews, each two or three same-sentiment sentences in a seeded order."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(count):
        label = i % 2
        pool = _POSITIVE if label else _NEGATIVE
        texts.append(". ".join(rng.sample(pool, rng.choice((2, 3)))))
        labels.append(label)
    return texts, labels


def load_imdb(path: str | None) -> tuple[list[str], list[int], list[str], list[int]]:
    """IMDB's 25k/25k reviews, from spec.dataset.path or the cache, fetched there once."""
    return imdb_reviews(dataset_dir(path, "imdb"), path)


_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class Vocabulary:
    """The most frequent training words get ids from 2; 0 pads, 1 stands for the rest."""

    index: dict[str, int]

    @classmethod
    def build(cls, texts: Sequence[str], size: int) -> Vocabulary:
        counts = Counter(w for t in texts for w in words(t))
        common = [w for w, _ in counts.most_common(max(0, size - 2))]
        return cls({w: i + 2 for i, w in enumerate(common)})

    def encode(self, texts: Sequence[str], max_length: int) -> torch.Tensor:
        out = torch.full((len(texts), max_length), PAD, dtype=torch.int64)
        for row, text in enumerate(texts):
            ids = [self.index.get(w, UNK) for w in words(text)][:max_length]
            out[row, : len(ids)] = torch.tensor(ids, dtype=torch.int64)
        return out


class EncodedText(Dataset[tuple[dict[str, torch.Tensor], torch.Tensor]]):
    """Tokenizer output kept as tensors; items are (dict of inputs, label)."""

    def __init__(self, encoded: dict[str, torch.Tensor], labels: torch.Tensor) -> None:
        self.encoded, self.labels = encoded, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        return {k: v[i] for k, v in self.encoded.items()}, self.labels[i]


def token_datasets(
    train: tuple[list[str], list[int]],
    val: tuple[list[str], list[int]],
    vocab_size: int,
    max_length: int,
) -> tuple[TensorDataset, TensorDataset]:
    vocab = Vocabulary.build(train[0], vocab_size)
    return tuple(  # type: ignore[return-value]
        TensorDataset(vocab.encode(t, max_length), torch.tensor(y, dtype=torch.int64))
        for t, y in (train, val)
    )


def transformer_datasets(
    train: tuple[list[str], list[int]],
    val: tuple[list[str], list[int]],
    tokenizer_path: str,
    max_length: int,
) -> tuple[EncodedText, EncodedText]:
    from transformers import AutoTokenizer

    tokenizer: Any = AutoTokenizer.from_pretrained(tokenizer_path)

    def encode(texts: list[str], labels: list[int]) -> EncodedText:
        enc = tokenizer(
            texts, padding="max_length", truncation=True, max_length=max_length,
            return_tensors="pt",
        )  # fmt: skip
        keep = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
        return EncodedText(keep, torch.tensor(labels, dtype=torch.int64))

    return encode(*train), encode(*val)


def text_info(kind: InputKind, num_classes: int, max_length: int) -> DataInfo:
    return DataInfo(kind=kind, num_classes=num_classes, features=max_length)
