"""DDP on CUDA GPUs through Ray Train: NCCL, bf16 autocast, and a checkpoint written from GPU
tensors that a second run resumes. CI has no GPU: the `cuda` case skips there, and its CPU twin
(`gpu_twin`: the same job on CPU, gloo, bf16 autocast on CPU) runs instead, so the test and
scripts/gpu-check.sh, which runs `-m gpu` on a lent GPU machine and `-m gpu_twin` elsewhere,
do not rot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from kubetrain.api import TrainingJob
from kubetrain.runner import run_job
from tests.conftest import named_job
from tests.integration.conftest import GPU_AND_ITS_CPU_TWIN, RecordingSink
from tests.integration.gpu_probe import PROBE_FILE

pytestmark = pytest.mark.slow


def _job(device: str, tmp_path: Path, epochs: int) -> TrainingJob:
    """One worker asking for every GPU present: one rank per GPU (ranksPerPod's default; NCCL
    refuses two ranks on one GPU). Its CPU twin: two CPU ranks in the one worker."""
    gpus = torch.cuda.device_count() if device == "cuda" else 0
    resources = {"cpu": "1", "gpu": gpus}
    return named_job(
        f"{device}-probe",
        model={"name": "custom", "entrypoint": "tests.integration.gpu_probe:build"},
        training={"epochs": epochs, "precision": "bf16", "seed": 0,
                  "optimizer": {"name": "adam", "lr": 0.002}},
        distributed={"workers": 1, "resourcesPerWorker": resources,
                     **({} if gpus else {"ranksPerPod": 2})},
        checkpoint={"storagePath": str(tmp_path), "everyEpochs": 1},
    )  # fmt: skip


@pytest.mark.parametrize("device", GPU_AND_ITS_CPU_TWIN)
def test_ddp_trains_over_the_devices_backend_in_bf16_and_resumes(
    ray_cluster: None, sink: RecordingSink, tmp_path: Path, device: str
) -> None:
    result = run_job(_job(device, tmp_path, epochs=4), sink)
    assert result.status == "succeeded" and [r.epoch for r in sink.epochs] == [1, 2, 3, 4]
    probe = json.loads((tmp_path / PROBE_FILE).read_text())
    assert probe == {
        "backend": "nccl" if device == "cuda" else "gloo",
        "param_device": device,
        "input_device": device,
        "autocast": True,
        "output_dtype": "torch.bfloat16",
    }
    assert sink.epochs[-1].val["accuracy"] > 0.85, "digits' MLP learns in bf16"

    # The same job again with more epochs: it loads the checkpoint written from the device's
    # tensors and goes on.
    again = RecordingSink()
    assert run_job(_job(device, tmp_path, epochs=6), again).status == "succeeded"
    assert [r.epoch for r in again.epochs] == [5, 6]
    before, after = (s.epochs[-1].val["accuracy"] for s in (sink, again))
    assert after >= before - 0.05, "it resumed the trained weights, not fresh ones"
