"""A checkpoint is resumed by the backend that wrote it; the other one says so, and how to fix it.

(Ray Train hands a job the latest checkpoint under its name and storage path, so running a job
again with the other backend meets the old backend's checkpoint.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from kubetrain.trainer import checkpoint as ckpt
from kubetrain.trainer.deepspeed import checkpoint as ds_ckpt
from kubetrain.trainer.engine import TorchEngine
from kubetrain.trainer.failures import WillRecur
from tests.conftest import make_job


def _ddp_engine() -> TorchEngine:
    spec = make_job().spec
    return TorchEngine(nn.Linear(3, 2), spec, torch.device("cpu"), rank=0, steps_per_epoch=4)


def test_deepspeed_refuses_a_ddp_checkpoint_naming_the_fix(tmp_path: Path) -> None:
    engine = _ddp_engine()
    engine.start()
    engine.save(tmp_path, ckpt.Progress(epoch=1, step=4))
    with pytest.raises(FileNotFoundError, match=r"backend ddp\. .*metadata\.name"):
        ds_ckpt.load(None, tmp_path, world_size=1)  # refused before DeepSpeed is asked


def test_ddp_refuses_a_deepspeed_checkpoint_naming_the_fix(tmp_path: Path) -> None:
    ds_ckpt.state_dir(tmp_path).mkdir(parents=True)
    (tmp_path / ckpt.META_FILE).write_text("{}")
    with pytest.raises(FileNotFoundError, match=r"backend deepspeed\. .*metadata\.name"):
        _ddp_engine().load(tmp_path)


def test_a_zero_checkpoint_of_another_world_size_is_refused_at_once_naming_the_fix(
    tmp_path: Path,
) -> None:
    """Resized while suspended (workers or ranksPerPod): ZeRO's optimizer partitions cannot be
    spread anew, and every retry would meet that, so it is no retry's business."""
    state = ds_ckpt.state_dir(tmp_path)
    state.mkdir(parents=True)
    for rank in range(2):
        (state / f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt").write_bytes(b"")
    with pytest.raises(WillRecur, match=r"state of 2 ranks, and this run has 4 .*Resume with 2"):
        ds_ckpt.load(None, tmp_path, world_size=4)
