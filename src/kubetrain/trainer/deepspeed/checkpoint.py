"""DeepSpeed checkpoints that hold every rank's partition.

Every rank writes into its own local directory and reports it to Ray Train, which persists all
of them into one checkpoint directory (the name is agreed across ranks). DeepSpeed's per-rank
files have distinct names (`zero_pp_rank_<r>_mp_rank_00_optim_states.pt`), and only rank 0
writes the shared ones (model states, model.pt, meta.json), so nothing collides. On resume every
rank reads the merged directory: ZeRO-1/2 ranks read rank 0's model states as well as their own
optimizer shard, which is why a checkpoint of rank 0's files alone cannot be resumed.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kubetrain.trainer import checkpoint as ckpt
from kubetrain.trainer.failures import WillRecur

STATE_DIR = "deepspeed"  # DeepSpeed's own layout lives under <checkpoint>/deepspeed/<TAG>/
TAG = "state"  # one DeepSpeed checkpoint per Ray checkpoint, so the tag never varies


def state_dir(directory: Path) -> Path:
    return directory / STATE_DIR / TAG


def save(engine: Any, directory: Path, progress: ckpt.Progress, rank: int) -> None:
    """Collective: every rank must call it at the same step."""
    directory.mkdir(parents=True, exist_ok=True)
    # save_latest=False: a `latest` file would be one more shared name, and the tag is fixed.
    engine.save_checkpoint(str(directory / STATE_DIR), tag=TAG, save_latest=False)
    # A whole model.pt beside the shards, as DDP's checkpoints have (ZeRO-3 gathers it: also
    # collective).
    engine.save_16bit_model(str(directory), ckpt.MODEL_FILE)
    if rank == 0:
        (directory / ckpt.META_FILE).write_text(json.dumps(asdict(progress), indent=2))


def load(engine: Any, directory: Path, *, world_size: int) -> ckpt.Progress:
    """Collective. Restores weights, every rank's optimizer partition and the LR schedule."""
    written = len(partition_files(directory))
    if written and written != world_size:
        # DeepSpeed would refuse it too, but only after Ray Train's retries: each meets it again.
        raise WillRecur(
            f"spec.distributed: the checkpoint {directory.name} holds the ZeRO optimizer state of"
            f" {written} ranks, and this run has {world_size} (workers x ranksPerPod); DeepSpeed"
            f" cannot partition it anew. Resume with {written} ranks in all, or start afresh under"
            " another metadata.name or spec.checkpoint.storagePath"
        )
    if not state_dir(directory).is_dir():
        # Ray Train resumes the latest checkpoint of a job of the same name and storage path.
        raise FileNotFoundError(
            f"{directory} holds no DeepSpeed state: a job of the same name wrote it with backend "
            "ddp. Resume it with backend ddp, or start afresh under another metadata.name or "
            "spec.checkpoint.storagePath"
        )
    path, _ = engine.load_checkpoint(
        str(directory / STATE_DIR),
        tag=TAG,
        load_optimizer_states=True,
        load_lr_scheduler_states=True,
    )
    if path is None:
        raise FileNotFoundError(f"DeepSpeed found no checkpoint in {state_dir(directory)}")
    return ckpt.read_progress(directory)


def partition_files(directory: Path) -> list[Path]:
    """The per-rank optimizer partitions in a checkpoint (one per data-parallel rank)."""
    return sorted(state_dir(directory).glob("*zero_pp_rank_*_optim_states.pt"))
