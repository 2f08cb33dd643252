"""Export the trained model, make its compressed variants, measure them all, write the report.

Runs in the rank-0 worker once training has finished (see `train_func.py`), into a local
directory that the caller then copies to the job's storage.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from kubetrain.api.artifacts import (
    ORIGINAL,
    REPORT_FILE,
    ArtifactPlan,
    ModelReport,
    VariantReport,
    pruned_name,
    quantized_name,
)
from kubetrain.api.spec import ExportFormat, ModelName, Quantization, TrainingJobSpec
from kubetrain.trainer.artifacts import compress, measure
from kubetrain.trainer.artifacts.export import write_loadable, write_state_dict
from kubetrain.trainer.data import Splits
from kubetrain.trainer.deepspeed.functional import torch_linear

log = logging.getLogger(__name__)

LATENCY_BATCHES = 20  # validation batches timed per model (the median is reported)


@dataclass(frozen=True)
class Trained:
    model: nn.Module  # the float model with the selected weights, on CPU
    epoch: int  # whose weights they are


@dataclass(frozen=True)
class _Bench:
    """What every model is measured with: the same batches, the same export form."""

    spec: TrainingJobSpec
    splits: Splits
    plan: ArtifactPlan
    out: Path

    def val_loader(self) -> DataLoader[Any]:
        return DataLoader(self.splits.val, batch_size=self.spec.dataset.batch_size)

    def inputs(self, count: int) -> list[Any]:
        return [inputs for inputs, _ in itertools.islice(self.val_loader(), count)]

    @property
    def tokenizer(self) -> str | None:
        if self.spec.model.name is not ModelName.BERT:
            return None
        from kubetrain.trainer.models.bert import resolve_pretrained

        return resolve_pretrained(self.spec.model.pretrained)

    def measure(self, name: str, model: nn.Module, float_model: nn.Module) -> VariantReport:
        directory = self.out / name
        size = measure.file_bytes(write_state_dict(directory, model))
        form = self.plan.format
        # A quantized transformer's int8 layers are not Hugging Face's: its model.pt only.
        hf_int8 = form is ExportFormat.HUGGINGFACE and not _is_float(model)
        loadable = (
            None
            if hf_int8
            else write_loadable(directory, model, form, self.inputs(1)[0], self.tokenizer)
        )
        metrics = measure.evaluate(model, self.val_loader(), self.splits.info.num_classes)
        report = VariantReport(
            name=name,
            path=name,
            loadable=loadable,
            size_bytes=size,
            parameters=measure.parameters(float_model),
            nonzero=measure.nonzero(model),
            latency_ms=round(measure.latency_ms(model, self.inputs(LATENCY_BATCHES)), 4),
            metrics=metrics,
        )
        log.info("artifacts: %s", report.model_dump_json())
        return report


def _is_float(model: nn.Module) -> bool:
    return any(True for _ in model.parameters())


def make_artifacts(
    plan: ArtifactPlan,
    spec: TrainingJobSpec,
    trained: Trained,
    splits: Splits,
    out: Path,
    *,
    directory: str,
    device: torch.device,
) -> ModelReport:
    """Writes the exported model and its variants under `out` (one folder each) with
    `report.json`, and returns the report. `directory`: where `out` will be copied for users."""
    with torch_linear():  # after ZeRO-3, torch's own linear again: the models must trace
        bench = _Bench(spec, splits, plan, out)
        original = trained.model.cpu().eval()
        variants = [bench.measure(ORIGINAL, original, original)]
        for mode in plan.compression.quantization:
            if mode is Quantization.DYNAMIC:
                quantized = compress.dynamic_int8(original)
            else:
                calibration = bench.inputs(plan.compression.calibration_batches)
                quantized = compress.static_int8(original, calibration)
            variants.append(bench.measure(quantized_name(mode), quantized, original))
        pruning = plan.compression.pruning
        if pruning is not None:
            pruned = compress.magnitude_prune(original, pruning.sparsity)
            if pruning.fine_tune_epochs:
                pruned = _fine_tuned(pruned, pruning.fine_tune_epochs, spec, splits, device)
            variants.append(
                bench.measure(pruned_name(pruning.sparsity), compress.finalize(pruned), original)
            )
        report = ModelReport(
            directory=directory,
            select=plan.select,
            format=plan.format,
            epoch=trained.epoch,
            metric_name=spec.training.metric.value,
            batch_size=spec.dataset.batch_size,
            variants=variants,
        )
        (out / REPORT_FILE).write_text(report.model_dump_json(indent=2))
        return report


def _fine_tuned(
    pruned: nn.Module, epochs: int, spec: TrainingJobSpec, splits: Splits, device: torch.device
) -> nn.Module:
    from kubetrain.trainer.loop import to_device

    def batches(epoch: int) -> DataLoader[Any]:
        gen = torch.Generator().manual_seed(spec.training.seed * 7919 + 100_000 + epoch)
        return DataLoader(
            splits.train, batch_size=spec.dataset.batch_size, shuffle=True, generator=gen
        )

    losses = compress.fine_tune(
        pruned, epochs, batches, spec.training, lambda inputs: to_device(inputs, device), device
    )
    log.info("artifacts: pruned model fine-tuned %d epoch(s), train loss %s", epochs, losses)
    return pruned.cpu()
