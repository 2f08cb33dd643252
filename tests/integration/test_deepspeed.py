"""The DeepSpeed backend on a real local Ray cluster (CPU: DS_ACCELERATOR=cpu over gloo).

- ZeRO-1/2 data parallelism is exact, as DDP's is: 2 workers on b samples each take the same step
  as 1 worker on the joined 2b.
- A worker killed mid-run under ZeRO-2 resumes from a checkpoint that holds every rank's optimizer
  partition, and the run continues on the same loss trajectory as one never interrupted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from kubetrain.runner import run_job
from kubetrain.trainer.deepspeed.checkpoint import partition_files, state_dir
from tests.conftest import make_job, named_job
from tests.integration import crashy
from tests.integration.conftest import GPU_AND_ITS_CPU_TWIN, RecordingSink
from tests.integration.test_gradient_aggregation import _params_after

pytestmark = pytest.mark.slow


def deepspeed(stage: int, **extra: Any) -> dict[str, Any]:
    return {"backend": "deepspeed", "deepspeed": {"zeroStage": stage}} | extra


# Momentum, 2 steps: the second step reads the momentum buffers ZeRO partitions across ranks.
@pytest.mark.parametrize("stage", [1, 2])
def test_zero_two_workers_equal_one_worker_on_the_joined_batch(
    ray_cluster: None, tmp_path: Path, stage: int
) -> None:
    spec = make_job(
        training={"optimizer": {"name": "momentum", "lr": 0.05}},
        distributed=deepspeed(stage),
    ).spec
    (single,) = _params_after(spec, 1, tmp_path, steps=2)
    start = torch.load(tmp_path / "w1-r0-before.pt")
    rank0, rank1 = _params_after(spec, 2, tmp_path, steps=2)
    assert not torch.allclose(single, start), "the steps must change the parameters"
    assert torch.equal(rank0, rank1), "ZeRO gathers the updated partitions into one model"
    assert torch.allclose(rank0, single, atol=2e-6, rtol=1e-5)


def _crash_job(tmp_path: Path, name: str) -> Any:
    return named_job(
        name,
        model={"name": "custom", "entrypoint": "tests.integration.crashy:build"},
        training={"epochs": 3, "optimizer": {"name": "momentum", "lr": 0.05}},
        distributed=deepspeed(2, workers=2, maxFailures=1),
        checkpoint={"storagePath": str(tmp_path / name)},
    )


def test_zero2_worker_crash_resumes_every_partition_on_the_same_trajectory(
    ray_cluster: None, tmp_path: Path
) -> None:
    marker = crashy.marker_for(tmp_path / "crashed")
    crashed = RecordingSink()
    result = run_job(_crash_job(tmp_path, "crashed"), crashed)
    assert marker.exists(), "rank 1 should have died once, in epoch 2"
    assert len(crashed.failures) == 1 and crashed.failures[0].ranks == (1,)
    assert result.status == "succeeded"
    assert [r.epoch for r in crashed.epochs] == [1, 2, 3], "epoch 1 is not trained again"

    # The marker now exists, so this run is never interrupted.
    steady = RecordingSink()
    run_job(_crash_job(tmp_path, "steady"), steady)
    for got, want in zip(crashed.epochs, steady.epochs, strict=True):
        assert got.step == want.step
        got_flat, want_flat = got.to_metrics(), want.to_metrics()
        for key in ("train_loss", "val_loss", "val_accuracy", "lr"):
            assert got_flat[key] == pytest.approx(want_flat[key], rel=1e-5, abs=1e-7), key

    assert result.checkpoint is not None
    names = [p.name for p in partition_files(Path(result.checkpoint))]
    assert names == [f"zero_pp_rank_{r}_mp_rank_00_optim_states.pt" for r in (0, 1)]
    assert (Path(result.checkpoint) / "model.pt").exists()


def test_zero3_bf16_offload_trains_and_checkpoints_a_whole_model(
    ray_cluster: None, sink: RecordingSink, tmp_path: Path
) -> None:
    """Everything at once: ZeRO-3 partitions the weights too, bf16, optimizer offload, Adam with
    warmup and clipping; evaluation, the gathered model.pt and the exported model (which ZeRO-3
    must consolidate, and which must trace although ZeRO-3 replaced torch's linear) see whole
    weights."""
    job = make_job(
        training={
            "epochs": 2,
            "precision": "bf16",
            "gradientClipNorm": 1.0,
            "optimizer": {"name": "adam", "lr": 0.002},
            "lrSchedule": {"name": "cosine", "warmupSteps": 3},
        },
        distributed={
            "backend": "deepspeed",
            "workers": 2,
            "deepspeed": {"zeroStage": 3, "offload": "cpu"},
        },
        checkpoint={"storagePath": str(tmp_path)},
        export={"select": "last"},
    )
    result = run_job(job, sink)
    assert result.status == "succeeded" and [r.epoch for r in sink.epochs] == [1, 2]
    assert sink.epochs[-1].val["accuracy"] > 0.5
    assert sink.epochs[0].lr != sink.epochs[1].lr, "the schedule runs"
    assert result.checkpoint is not None
    checkpoint = Path(result.checkpoint)
    # ZeRO-3 partitions the weights as well as the optimizer state: both, from both ranks.
    optim = [p.name for p in partition_files(checkpoint)]
    assert optim == [f"bf16_zero_pp_rank_{r}_mp_rank_00_optim_states.pt" for r in (0, 1)]
    weights_shards = sorted(p.name for p in state_dir(checkpoint).glob("*_model_states.pt"))
    assert weights_shards == [f"zero_pp_rank_{r}_mp_rank_00_model_states.pt" for r in (0, 1)]
    weights = torch.load(checkpoint / "model.pt")
    assert weights["net.1.weight"].shape == (128, 784), "whole weights, not a partition"
    report = result.model_report
    assert report is not None and report.original.loadable == "model.torchscript.pt"
    exported = Path(report.directory, "original")
    assert torch.load(exported / "model.pt")["net.1.weight"].shape == (128, 784)
    traced = torch.jit.load(str(exported / "model.torchscript.pt"))
    assert traced(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    # The exported weights score what the last epoch scored (fp32 here, bf16 in training).
    last = sink.epochs[-1].val["accuracy"]
    assert report.original.metrics["accuracy"] == pytest.approx(last, abs=0.02)


# On a GPU, DeepSpeed's own FusedAdam (compiled on first use with nvcc and ninja); its CPU twin
# (scripts/gpu-check.sh without a GPU) takes torch's Adam over gloo.
@pytest.mark.parametrize("device", GPU_AND_ITS_CPU_TWIN)
def test_zero2_bf16_on_one_device(
    ray_cluster: None, sink: RecordingSink, tmp_path: Path, device: str
) -> None:
    gpus = 1 if device == "cuda" else 0
    job = make_job(
        training={"epochs": 1, "precision": "bf16"},
        distributed=deepspeed(2, workers=1, resourcesPerWorker={"cpu": "1", "gpu": gpus}),
        checkpoint={"storagePath": str(tmp_path)},
    )
    result = run_job(job, sink)
    assert result.status == "succeeded" and [r.epoch for r in sink.epochs] == [1]
    assert sink.epochs[0].val["accuracy"] > 0.5, "it learns"
    assert result.checkpoint is not None
    names = [p.name for p in partition_files(Path(result.checkpoint))]
    assert names == ["bf16_zero_pp_rank_0_mp_rank_00_optim_states.pt"]
