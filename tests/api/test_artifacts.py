"""What a spec's export and compression sections ask for (the plan), and how the report reads."""

from __future__ import annotations

from kubetrain.api.artifacts import ModelReport, VariantReport, plan
from kubetrain.api.spec import ExportFormat, ExportSelect
from kubetrain.runner.console import format_model_report
from tests.conftest import make_job


def test_no_export_and_no_compression_plan_nothing() -> None:
    assert plan(make_job().spec) is None


def test_compression_implies_an_export_of_the_last_epoch_in_the_form_that_fits() -> None:
    mlp = plan(make_job(compression={"quantization": ["dynamic", "static"],
                                     "pruning": {"sparsity": 0.5}}).spec)  # fmt: skip
    assert mlp is not None
    assert (mlp.select, mlp.format) == (ExportSelect.LAST, ExportFormat.TORCHSCRIPT)
    assert mlp.variants == ["dynamic-int8", "static-int8", "pruned-50"]
    bert_job = make_job(
        model={"name": "bert", "numClasses": 2},
        dataset={"source": "text_samples"},
        export={"select": "best"},
    )
    bert = plan(bert_job.spec)
    assert bert is not None
    assert (bert.select, bert.format, bert.variants) == (
        ExportSelect.BEST,
        ExportFormat.HUGGINGFACE,
        [],
    )


def _variant(name: str, size: int, nonzero: int, accuracy: float) -> VariantReport:
    return VariantReport(
        name=name, path=name, loadable=None, size_bytes=size, parameters=1000, nonzero=nonzero,
        latency_ms=0.5, metrics={"accuracy": accuracy, "loss": 0.1},
    )  # fmt: skip


REPORT = ModelReport(
    directory="/runs/job/model", select=ExportSelect.BEST, format=ExportFormat.TORCHSCRIPT,
    epoch=7, metric_name="accuracy", batch_size=32,
    variants=[_variant("original", 400_000, 1000, 0.9666),
              _variant("dynamic-int8", 100_000, 990, 0.9638),
              _variant("pruned-50", 400_000, 500, 0.9721)],
)  # fmt: skip


def test_the_status_summary_names_each_variant_its_size_sparsity_and_score() -> None:
    assert REPORT.summary() == (
        "original 400.0kB accuracy=0.967; dynamic-int8 100.0kB (4.0x smaller) 1% zero "
        "accuracy=0.964; pruned-50 400.0kB (1.0x smaller) 50% zero accuracy=0.972"
    )


def test_kubetrain_run_prints_where_the_model_is_and_the_table_side_by_side() -> None:
    lines = format_model_report(REPORT)
    assert lines[0] == (
        "kubetrain: exported the model of epoch 7 (best accuracy) as torchscript to /runs/job/model"
    )
    header, *rows = (line.split() for line in lines[1:])
    assert header == ["model", "size", "smaller", "params", "nonzero", "ms/batch", "accuracy",
                      "loss"]  # fmt: skip
    assert rows[1] == ["dynamic-int8", "100.0kB", "4.00x", "1000", "990", "0.500", "0.9638",
                       "0.1000"]  # fmt: skip
    assert [row[0] for row in rows] == ["original", "dynamic-int8", "pruned-50"]
