"""The worker's side of export: after training, rank 0 exports and compresses the model.

Why rank 0 alone, once training has finished: the variants are post-processing of one model,
the pruned model's fine-tuning is a few epochs of a model that quantization will copy anyway,
and a plain single-process loop needs no DDP or DeepSpeed wrapper around masked weights (which
both would have to be rebuilt for). The other ranks take part in gathering the weights (ZeRO-3
shards them) and then end; Ray Train's run ends when rank 0 has written the files.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from kubetrain.api.artifacts import EXPORT_DIR, ArtifactPlan, ModelReport
from kubetrain.trainer.artifacts.make import Trained, make_artifacts
from kubetrain.trainer.loop import WorkerLoop
from kubetrain.trainer.models import build_model
from kubetrain.trainer.storage import resolve


def export_directory(storage_path: str, job: str) -> str:
    return f"{storage_path}/{job}/{EXPORT_DIR}"


def export_trained(loop: WorkerLoop, plan: ArtifactPlan) -> ModelReport | None:
    """Call on every rank once `loop.run` returned; rank 0 returns the report, others None."""
    epoch, weights = loop.final_weights(plan.select)  # collective under ZeRO-3
    if loop.who.rank != 0:
        return None
    spec = loop.spec
    model = build_model(spec.model, loop.splits.info)
    model.load_state_dict(weights)
    storage = resolve(spec.checkpoint)
    target = export_directory(storage.path, loop.who.job)
    with tempfile.TemporaryDirectory(prefix="kubetrain-model-") as tmp:
        report = make_artifacts(
            plan, spec, Trained(model, epoch), loop.splits, Path(tmp),
            directory=storage.uri(target), device=loop.device,
        )  # fmt: skip
        storage.put_directory(Path(tmp), target)
    # No gauges here: this worker's metrics server closes when training ends; the head writes
    # the report into status, where the operator serves it (kubetrain_model_*) until deletion.
    return report
