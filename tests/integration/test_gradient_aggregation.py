"""Data-parallel training is exact: one step of 2 workers on batches of b equals one step of
1 worker on the concatenated 2b batch (same parameters within float tolerance)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import ray.train
import torch
from ray.train.torch import TorchConfig, TorchTrainer

from kubetrain.api.spec import TrainingJobSpec
from kubetrain.trainer.data import load_splits
from kubetrain.trainer.loop import WorkerIdentity, WorkerLoop
from tests.conftest import make_job

pytestmark = pytest.mark.slow

BATCH = 16  # b, per worker


def _one_step(config: dict[str, Any]) -> None:
    spec = TrainingJobSpec.model_validate(config["spec"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    splits = load_splits(spec)
    loop = WorkerLoop(
        spec, WorkerIdentity("g", "default", rank, world), torch.device("cpu"), splits
    )
    loop.start()
    # The same 2b samples on every run; each worker takes its contiguous b of them.
    x, y = zip(*(splits.train[i] for i in range(2 * BATCH)), strict=True)
    xs, ys = torch.stack(list(x)), torch.stack([torch.as_tensor(v) for v in y])
    per = len(ys) // world
    before = torch.cat([p.detach().reshape(-1) for p in loop.model.parameters()])
    torch.save(before, Path(config["out"]) / f"w{world}-r{rank}-before.pt")
    for _ in range(config["steps"]):
        loop.step([(xs[rank * per : (rank + 1) * per], ys[rank * per : (rank + 1) * per])])
    flat = torch.cat([p.detach().reshape(-1) for p in loop.model.parameters()])
    torch.save(flat, Path(config["out"]) / f"w{world}-r{rank}.pt")


def _params_after(
    spec: TrainingJobSpec, workers: int, out: Path, steps: int = 1
) -> list[torch.Tensor]:
    config = {"spec": spec.model_dump(mode="json", by_alias=True), "out": str(out), "steps": steps}
    TorchTrainer(
        _one_step,
        train_loop_config=config,
        torch_config=TorchConfig(backend="gloo"),
        scaling_config=ray.train.ScalingConfig(num_workers=workers),
        run_config=ray.train.RunConfig(name=f"grad-{workers}", storage_path=str(out / "ray")),
    ).fit()
    return [torch.load(out / f"w{workers}-r{r}.pt") for r in range(workers)]


MLP = {"model": {"name": "mlp"}, "dataset": {"source": "digits"}}
LSTM = {
    "model": {"name": "lstm", "numClasses": 2, "vocabSize": 200, "embeddingDim": 16,
              "hiddenSize": 16},
    "dataset": {"source": "text_samples", "samples": 128, "maxLength": 20},
}  # fmt: skip


# SGD and momentum are linear in the gradient, so equal averaged gradients give equal parameters
# to float precision. (Adam is not a useful check: it divides by |g|, which turns 1e-8 gradient
# rounding into 5e-6 parameter differences, and it cannot tell a sum from an average.)
@pytest.mark.parametrize(
    ("case", "optimizer"), [(MLP, "sgd"), (LSTM, "momentum")], ids=["mlp-sgd", "lstm-momentum"]
)
def test_two_workers_equal_one_worker_on_the_joined_batch(
    ray_cluster: None, tmp_path: Path, case: dict[str, Any], optimizer: str
) -> None:
    spec = make_job(**case, training={"optimizer": {"name": optimizer, "lr": 0.05}}).spec
    (single,) = _params_after(spec, 1, tmp_path)
    start = torch.load(tmp_path / "w1-r0-before.pt")
    rank0, rank1 = _params_after(spec, 2, tmp_path)
    assert not torch.allclose(single, start), "the step must change the parameters"
    assert torch.equal(rank0, rank1), "workers must hold one global model"
    assert torch.allclose(rank0, single, atol=2e-6, rtol=1e-5)


def test_local_sgd_pulls_models_together(ray_cluster: None, tmp_path: Path) -> None:
    """local_sgd with period 2: after 2 steps the models are averaged (α = 1)."""
    spec = make_job(
        **MLP, distributed={"aggregation": {"strategy": "local_sgd", "period": 2, "alpha": 1.0}}
    ).spec
    one_step = _params_after(spec, 2, tmp_path, steps=1)
    assert not torch.equal(one_step[0], one_step[1]), "between averagings, workers drift apart"
    two_steps = _params_after(spec, 2, tmp_path, steps=2)
    assert torch.allclose(two_steps[0], two_steps[1], atol=1e-7)
