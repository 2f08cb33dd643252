"""What a checkpoint holds, and how it is written to and read from a directory.

Ray Train uploads the directory to the run's storage (local dir, PVC mount or S3) and hands the
latest one back after a worker crash or when a job of the same name is started again.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

MODEL_FILE = "model.pt"
TRAINING_STATE_FILE = "training_state.pt"
META_FILE = "meta.json"
# The best epoch's weights so far (spec.export.select: best), beside the latest ones.
BEST_MODEL_FILE = "best_model.pt"


@dataclass
class Progress:
    """Where training stands; saved as JSON beside the weights."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps completed
    early_stopping: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False
    best_epoch: int | None = None  # with spec.export.select best: the epoch of best_model.pt
    best_score: float | None = None  # its headline validation metric


def save(
    directory: Path,
    model: nn.Module,
    optimizer: Optimizer,
    scheduler: LRScheduler,
    progress: Progress,
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), directory / MODEL_FILE)
    torch.save(
        {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
        directory / TRAINING_STATE_FILE,
    )
    (directory / META_FILE).write_text(json.dumps(asdict(progress), indent=2))


def load(
    directory: Path, model: nn.Module, optimizer: Optimizer, scheduler: LRScheduler
) -> Progress:
    # Weights only: a checkpoint is data, and one on shared storage must not run code.
    model.load_state_dict(torch.load(directory / MODEL_FILE, map_location="cpu", weights_only=True))
    state = torch.load(directory / TRAINING_STATE_FILE, map_location="cpu", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return read_progress(directory)


def read_progress(directory: Path) -> Progress:
    return Progress(**json.loads((directory / META_FILE).read_text()))


def cpu_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the model's weights on CPU, kept apart from the training ones."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def save_best(directory: Path, weights: dict[str, torch.Tensor]) -> None:
    torch.save(weights, directory / BEST_MODEL_FILE)


def load_best(directory: Path) -> dict[str, torch.Tensor] | None:
    path = directory / BEST_MODEL_FILE
    if not path.is_file():
        return None
    best: dict[str, torch.Tensor] = torch.load(path, map_location="cpu", weights_only=True)
    return best
