"""The trained model as an artifact: what is exported and compressed (a plan made from the spec),
and the before/after report, typed.

The plan is pure and decided once from the spec; the torch work lives in
`kubetrain.trainer.artifacts`. The report crosses processes like the epoch report: the rank-0
worker writes it as `report.json` beside the exported files, the driver reads it back into the
run's result, the console prints its table, and the head pod patches its summary and each
variant's measures into status (which the operator serves as `kubetrain_model_*` gauges).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from kubetrain.api.spec import (
    CompressionSpec,
    ExportFormat,
    ExportSelect,
    ExportSpec,
    ModelName,
    Quantization,
    TrainingJobSpec,
)
from kubetrain.api.status import ModelVariant

EXPORT_DIR = "model"  # <storagePath>/<job name>/model/
REPORT_FILE = "report.json"
STATE_DICT_FILE = "model.pt"
TORCHSCRIPT_FILE = "model.torchscript.pt"
HUGGINGFACE_DIR = "huggingface"
ORIGINAL = "original"

# Static int8 needs every layer to have a quantized kernel and the graph to be traceable (FX):
# the MLP and the small CNN do; an LSTM, BERT (attention, embeddings) and MobileNet's
# depthwise blocks do not (or not without per-model work), and a custom model is unknown.
STATIC_QUANTIZABLE = frozenset({ModelName.MLP, ModelName.CNN})


def quantized_name(mode: Quantization) -> str:
    return f"{mode.value}-int8"


def pruned_name(sparsity: float) -> str:
    return f"pruned-{round(sparsity * 100):d}"


def export_format(model: ModelName, chosen: ExportFormat) -> ExportFormat:
    """The loadable form a model is exported in: `auto` picks the one that fits it."""
    if chosen is not ExportFormat.AUTO:
        return chosen
    return ExportFormat.HUGGINGFACE if model is ModelName.BERT else ExportFormat.TORCHSCRIPT


@dataclass(frozen=True)
class ArtifactPlan:
    """What a job that succeeded leaves besides its checkpoints."""

    select: ExportSelect
    format: ExportFormat  # resolved, never auto
    compression: CompressionSpec

    @property
    def variants(self) -> list[str]:
        """The compressed variants to make, in the report's order (the original comes first)."""
        names = [quantized_name(mode) for mode in self.compression.quantization]
        if self.compression.pruning is not None:
            names.append(pruned_name(self.compression.pruning.sparsity))
        return names


def plan(spec: TrainingJobSpec) -> ArtifactPlan | None:
    """The artifacts `spec` asks for; None when it asks for none (compression implies export)."""
    if spec.export is None and spec.compression is None:
        return None
    export = spec.export or ExportSpec()
    return ArtifactPlan(
        select=export.select,
        format=export_format(spec.model.name, export.format),
        compression=spec.compression or CompressionSpec(),
    )


# --------------------------------------------------------------------------- the report


class VariantReport(ModelVariant):
    """One model, measured (the status's row), and where its files are."""

    model_config = ConfigDict(frozen=True)

    path: str = Field(description="Its folder under the export directory.")
    loadable: str | None = Field(
        None, description="Its file or folder that loads without kubetrain (None: model.pt only)."
    )
    # Always measured in a report (the status's row may leave it out).
    metrics: dict[str, float] = Field(description="Validation loss and metrics, as the job's.")


class ModelReport(BaseModel):
    """The exported model and its compressed variants, side by side."""

    model_config = ConfigDict(frozen=True)

    directory: str = Field(description="Where the exported files are.")
    select: ExportSelect
    format: ExportFormat
    epoch: int = Field(description="The epoch whose weights were exported.")
    metric_name: str
    batch_size: int = Field(description="The batch the latency is measured on.")
    variants: list[VariantReport] = Field(description="The original first.")

    @property
    def original(self) -> VariantReport:
        return self.variants[0]

    def smaller(self, variant: VariantReport) -> float:
        """How many times smaller on disk than the original."""
        return self.original.size_bytes / max(variant.size_bytes, 1)

    def summary(self) -> str:
        """One line for the job's status: each variant's size, sparsity and headline score."""
        parts = []
        for v in self.variants:
            score = v.metrics.get(self.metric_name)
            text = f"{v.name} {_size(v.size_bytes)}"
            if v is not self.original:
                text += f" ({self.smaller(v):.1f}x smaller)"
            zeros = 1 - v.nonzero / max(v.parameters, 1)
            if zeros >= 0.005:  # "0% zero" would say nothing
                text += f" {zeros:.0%} zero"
            if score is not None:
                text += f" {self.metric_name}={score:.3f}"
            parts.append(text)
        return "; ".join(parts)

    def status_variants(self) -> list[ModelVariant]:
        """Each model's measures for the job's status, from which the operator serves gauges."""
        return [ModelVariant.model_validate(v.model_dump()) for v in self.variants]  # no paths

    def table(self) -> list[str]:
        """The before/after table, one line per model, as `kubetrain run` prints it."""
        names = sorted({k for v in self.variants for k in v.metrics}, key=_metric_order)
        head = ["model", "size", "smaller", "params", "nonzero", "ms/batch", *names]
        rows = [head]
        for v in self.variants:
            rows.append(
                [
                    v.name,
                    _size(v.size_bytes),
                    f"{self.smaller(v):.2f}x",
                    str(v.parameters),
                    str(v.nonzero),
                    f"{v.latency_ms:.3f}",
                    *(f"{v.metrics[k]:.4f}" if k in v.metrics else "-" for k in names),
                ]
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
        return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                for row in rows]  # fmt: skip


def _metric_order(name: str) -> tuple[int, str]:
    order = ("accuracy", "f1", "precision", "recall", "loss")
    return (order.index(name) if name in order else len(order), name)


def _size(size: int) -> str:
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f}{unit}"
    return f"{size}B"
