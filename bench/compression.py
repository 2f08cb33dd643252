"""The trained model before and after compression: size, non-zero parameters, CPU latency and
metrics of the original and each variant, side by side (the table `kubetrain run` prints).

Trains the job in-process at world size 1 (no Ray: the figures are the model's, not the
cluster's), then exports and compresses it as the rank-0 worker does at the end of a job.

    .venv/bin/python bench/compression.py                       # examples/compressed-mlp.yaml
    .venv/bin/python bench/compression.py --job other.yaml --epochs 3
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import yaml

from kubetrain.api import parse_job
from kubetrain.api.artifacts import plan
from kubetrain.trainer.artifacts.worker import export_trained
from kubetrain.trainer.loop import WorkerIdentity, WorkerLoop

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "compressed-mlp.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", type=Path, default=EXAMPLE)
    parser.add_argument("--epochs", type=int, help="override spec.training.epochs")
    args = parser.parse_args()
    doc = next(d for d in yaml.safe_load_all(args.job.read_text()) if d["kind"] == "TrainingJob")
    with tempfile.TemporaryDirectory() as tmp:
        doc["spec"]["checkpoint"] = {"storagePath": tmp}
        if args.epochs:
            doc["spec"]["training"]["epochs"] = args.epochs
        job = parse_job(doc)
        artifacts = plan(job.spec)
        assert artifacts is not None, f"{args.job} asks for no export or compression"
        started = time.perf_counter()
        loop = WorkerLoop(job.spec, WorkerIdentity(job.name, "bench", 0, 1), torch.device("cpu"))
        loop.start()
        loop.run(lambda report, _: None)
        trained = time.perf_counter()
        report = export_trained(loop, artifacts)
        assert report is not None
        done = time.perf_counter()
    print(f"{job.name}: {job.spec.model.name.value} on {job.spec.dataset.source.value}, "
          f"{job.spec.training.epochs} epochs in {trained - started:.1f} s; export and "
          f"compression in {done - trained:.1f} s; epoch {report.epoch} exported "
          f"({report.select.value}); latency: batch of {report.batch_size}, 1 thread")  # fmt: skip
    for line in report.table():
        print(line)
    original = report.original
    for v in report.variants[1:]:
        delta = (v.metrics["accuracy"] - original.metrics["accuracy"]) * 100
        print(f"{v.name}: {report.smaller(v):.2f}x smaller, "
              f"{1 - v.nonzero / v.parameters:.0%} zero, latency "
              f"{original.latency_ms / v.latency_ms:.2f}x the original's speed, "
              f"accuracy {delta:+.2f} points")  # fmt: skip


if __name__ == "__main__":
    main()
