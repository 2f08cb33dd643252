"""The public files kubetrain fetches, their published checksums, and the settings that send the
fetches to a mirror instead (for clusters with no internet: docs/air-gapped.md).

Pure data, no ML framework and no I/O: the trainer downloads by it
(`kubetrain.trainer.data.downloads`), and the operator, the docs and the tests can name the
settings and list the files a mirror must serve.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

# Environment variables, read where the download happens (a worker pod, or `kubetrain run`'s
# workers): set them in the pods' environment (spec.pod.env) or in the shell. Each takes the
# base URL of a mirror (`http(s)://host/dir`) or a directory (`/mnt/mirror`, `file:///mnt/mirror`)
# that serves the files below under their official names.
DATASETS_MIRROR = "KUBETRAIN_DATASETS_MIRROR"
WEIGHTS_MIRROR = "KUBETRAIN_WEIGHTS_MIRROR"
# The Hugging Face hub's own setting (BERT models and tokenizers); kubetrain passes hub ids to
# transformers unchanged, so it applies as the hub documents. HF_HUB_OFFLINE=1 forbids the hub.
HF_ENDPOINT = "HF_ENDPOINT"
HF_HUB_OFFLINE = "HF_HUB_OFFLINE"

# A mirror that serves a file other than the official one (a smaller test set, a re-packed
# archive) publishes its sha256 beside it as `<name>.sha256`: hex digest, optionally followed by
# whitespace and the file name (sha256sum's output). It then replaces the published checksum.
CHECKSUM_SIDECAR = ".sha256"


class FileKind(str, Enum):
    DATASET = "dataset"
    WEIGHTS = "weights"


# The setting that redirects each kind of file.
MIRROR_SETTING: dict[FileKind, str] = {
    FileKind.DATASET: DATASETS_MIRROR,
    FileKind.WEIGHTS: WEIGHTS_MIRROR,
}

# Every setting, with what it does: for the operator, the docs and `--help` texts.
MIRROR_SETTINGS: dict[str, str] = {
    DATASETS_MIRROR: "where mnist, cifar10 and imdb are fetched from instead of their official "
    "sites: a base URL or a directory holding the files under their official names",
    WEIGHTS_MIRROR: "where pretrained weights (mobilenet_v2's `imagenet`) are fetched from "
    "instead of download.pytorch.org: a base URL or a directory, official file names",
    HF_ENDPOINT: "the Hugging Face hub (or a mirror of it) that BERT models and tokenizers come "
    "from; Hugging Face's own setting",
    HF_HUB_OFFLINE: "1: never ask the Hugging Face hub, use only its local cache (Hugging Face's "
    "own setting)",
}


@dataclass(frozen=True)
class PublicFile:
    """One file as its publisher serves it: `base_url + name`, with its published checksum."""

    name: str
    base_url: str
    algorithm: str  # "md5" or "sha256": what the publisher (or torchvision) states
    digest: str
    kind: FileKind
    size_mb: float  # roughly, for the docs and progress lines

    @property
    def url(self) -> str:
        return self.base_url + self.name


_MNIST = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # torchvision's mirror of LeCun's
_CIFAR = "https://www.cs.toronto.edu/~kriz/"
_IMDB = "https://ai.stanford.edu/~amaas/data/sentiment/"
_TORCH_MODELS = "https://download.pytorch.org/models/"


def _dataset(name: str, base: str, md5: str, size_mb: float) -> PublicFile:
    return PublicFile(name, base, "md5", md5, FileKind.DATASET, size_mb)


# The files of each dataset source and pretrained model, by the name the spec uses. The md5s are
# the ones torchvision (MNIST, CIFAR-10) and torchtext (IMDB) check.
MNIST_FILES = (
    _dataset("train-images-idx3-ubyte.gz", _MNIST, "f68b3c2dcbeaaa9fbdd348bbdeb94873", 9.9),
    _dataset("train-labels-idx1-ubyte.gz", _MNIST, "d53e105ee54ea40749a09fcbcd1e9432", 0.03),
    _dataset("t10k-images-idx3-ubyte.gz", _MNIST, "9fb629c4189551a2d022fa330f9573f3", 1.6),
    _dataset("t10k-labels-idx1-ubyte.gz", _MNIST, "ec29112dd5afa0611ce80d1b7f02629c", 0.005),
)
CIFAR10_FILE = _dataset("cifar-10-python.tar.gz", _CIFAR, "c58f30108f718f92721af3b95e74349a", 170)
IMDB_FILE = _dataset("aclImdb_v1.tar.gz", _IMDB, "7c2ac02c03563afcf9b574c7e56c153a", 84)
# torchvision's MobileNet_V2_Weights.IMAGENET1K_V1. The name's hash part is the first 8 hex
# digits of the file's sha256 (what torch.hub checks); the full digest begins with them.
MOBILENET_V2_IMAGENET = PublicFile(
    "mobilenet_v2-b0353104.pth",
    _TORCH_MODELS,
    "sha256",
    "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
    FileKind.WEIGHTS,
    14,
)

PUBLIC_FILES: dict[str, tuple[PublicFile, ...]] = {
    "mnist": MNIST_FILES,
    "cifar10": (CIFAR10_FILE,),
    "imdb": (IMDB_FILE,),
    "mobilenet_v2:imagenet": (MOBILENET_V2_IMAGENET,),
}
