"""The head's status writes: what an epoch report becomes in the TrainingJob's status."""

from __future__ import annotations

import json

import yaml

from kubetrain.api.report import EpochReport
from kubetrain.api.status import ProgressStatus, TrainingJobStatus, field_names
from kubetrain.pods.head import final_status
from kubetrain.pods.status_sink import StatusSink, progress_status
from kubetrain.runner.reports import EpochUpdate
from tests.api.test_artifacts import REPORT
from tests.conftest import ROOT

EPOCH = EpochReport.from_metrics(
    {
        "epoch": 3,
        "total_epochs": 10,
        "step": 420,
        "world_size": 4,
        "metric_name": "accuracy",
        "val_loss": 0.1234567,
        "val_accuracy": 0.97312,
        "val_f1": 0.97,
        "train_loss": 0.2,
        "samples_per_second": 1234.56,
        "stopped_early": False,
    }
)


def test_progress_status_fills_the_columns() -> None:
    status = progress_status(EPOCH, "s3://ckpt/t/checkpoint_000002", 42.04)
    assert status.patch() == {
        "epoch": 3,
        "totalEpochs": 10,
        "progress": "3/10",
        "step": 420,
        "worldSize": 4,
        "loss": 0.123457,
        "metrics": {"val_loss": 0.1234567, "val_accuracy": 0.97312, "val_f1": 0.97},
        "metricSummary": "accuracy=0.9731",
        "samplesPerSecond": 1234.6,
        "etaSeconds": 42.0,
        "checkpoint": "s3://ckpt/t/checkpoint_000002",
    }


def test_progress_status_without_optional_fields() -> None:
    out = progress_status(EpochReport(epoch=1, total_epochs=2), None, None).patch()
    assert out == {"epoch": 1, "totalEpochs": 2, "progress": "1/2", "metrics": {}}


def test_the_final_checkpoint_patch_carries_only_the_checkpoint() -> None:
    assert ProgressStatus(checkpoint="s3://b/t/checkpoint_9").patch() == {
        "checkpoint": "s3://b/t/checkpoint_9"
    }


def test_sink_patches_once_per_epoch() -> None:
    patches: list[ProgressStatus] = []
    sink = StatusSink(patches.append)
    sink.on_epoch(EpochUpdate(EPOCH, None), None)
    assert [p.progress for p in patches] == ["3/10"]


def test_every_field_the_driver_writes_is_in_the_crd() -> None:
    # The API server prunes a field its schema lacks, silently: progress would never show.
    crd = yaml.safe_load((ROOT / "crds" / "trainingjob.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    in_crd = set(schema["properties"]["status"]["properties"])
    written = set(progress_status(EPOCH, "s3://c", 1.0).patch())
    final = final_status("s3://c", REPORT)  # once training succeeded, with an exported model
    assert final is not None
    written |= set(final.patch())
    assert written == set(field_names(ProgressStatus))  # every field, in these two patches
    assert written <= in_crd, written - in_crd


def test_the_head_writes_where_the_model_is_and_its_summary_and_nulls_nothing() -> None:
    final = final_status(None, REPORT)
    assert final is not None
    patch = final.patch()
    assert patch.pop("modelVariants")  # below
    assert patch == {"exportedModel": "/runs/job/model", "modelReport": REPORT.summary()}
    assert final_status(None, None) is None


def test_the_heads_final_patch_carries_each_variant_measured_for_the_operators_gauges() -> None:
    final = final_status("s3://c", REPORT)
    assert final is not None
    variants = final.patch()["modelVariants"]
    assert variants == [
        {"name": "original", "sizeBytes": 400_000, "parameters": 1000, "nonzero": 1000,
         "latencyMs": 0.5, "metrics": {"accuracy": 0.9666, "loss": 0.1}},
        {"name": "dynamic-int8", "sizeBytes": 100_000, "parameters": 1000, "nonzero": 990,
         "latencyMs": 0.5, "metrics": {"accuracy": 0.9638, "loss": 0.1}},
        {"name": "pruned-50", "sizeBytes": 400_000, "parameters": 1000, "nonzero": 500,
         "latencyMs": 0.5, "metrics": {"accuracy": 0.9721, "loss": 0.1}},
    ]  # fmt: skip
    # What the operator reads back from the job's status is what the head wrote.
    read = TrainingJobStatus.model_validate(json.loads(json.dumps(final.patch())))
    assert read.model_variants == final.model_variants
