"""DDP on a CUDA GPU through Ray Train: NCCL, bf16 autocast, and a checkpoint written from GPU
tensors that a second run resumes. CI has no GPU: these skip there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from kubetrain.api import TrainingJob
from kubetrain.runner import run_job
from tests.conftest import named_job
from tests.integration.conftest import RecordingSink
from tests.integration.gpu_probe import PROBE_FILE

pytestmark = [
    pytest.mark.slow,
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def _gpu_job(tmp_path: Path, epochs: int) -> TrainingJob:
    return named_job(
        "gpu",
        model={"name": "custom", "entrypoint": "tests.integration.gpu_probe:build"},
        training={"epochs": epochs, "precision": "bf16", "seed": 0,
                  "optimizer": {"name": "adam", "lr": 0.002}},
        distributed={"workers": 1, "resourcesPerWorker": {"cpu": "1", "gpu": 1}},
        checkpoint={"storagePath": str(tmp_path), "everyEpochs": 1},
    )  # fmt: skip


def test_ddp_on_a_gpu_trains_over_nccl_in_bf16_and_resumes(
    ray_cluster: None, sink: RecordingSink, tmp_path: Path
) -> None:
    result = run_job(_gpu_job(tmp_path, epochs=4), sink)
    assert result.status == "succeeded" and [r.epoch for r in sink.epochs] == [1, 2, 3, 4]
    probe = json.loads((tmp_path / PROBE_FILE).read_text())
    assert probe == {
        "backend": "nccl",
        "param_device": "cuda",
        "input_device": "cuda",
        "autocast": True,
        "output_dtype": "torch.bfloat16",
    }
    assert sink.epochs[-1].val["accuracy"] > 0.85, "digits' MLP learns on the GPU too"

    # The same job again with more epochs: it loads the GPU-written checkpoint and goes on.
    again = RecordingSink()
    assert run_job(_gpu_job(tmp_path, epochs=6), again).status == "succeeded"
    assert [r.epoch for r in again.epochs] == [5, 6]
    before, after = (s.epochs[-1].val["accuracy"] for s in (sink, again))
    assert after >= before - 0.05, "it resumed the trained weights, not fresh ones"
