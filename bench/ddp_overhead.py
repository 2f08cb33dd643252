"""kubetrain's local DDP against a plain torchrun DDP script, and 1 worker against 2.

Everything is measured in this one run, on this machine, with the same model, data and batch:
  - per-step overhead: kubetrain's training time per step / plain DDP's (target ≤ 1.03);
  - wall-time ratio: whole job, start-up included (Ray's start-up is most of it on 2 cores);
    kubetrain runs as `kubetrain run` does, in its own process with its own local Ray cluster,
    so no idle Ray cluster shares the cores with the plain runs;
  - scaling: 2-worker / 1-worker throughput. With 1 worker kubetrain does not wrap the model in
    DDP (nothing to average), the plain script does: the 1-worker ratio is not like for like;
  - where a per-step overhead comes from when the workers fill every core: the CPU that Ray's
    own processes (raylet, GCS, Ray Train's controller and helper actors) use while the workers
    train. Plain torchrun starts none of them.
The first epoch is excluded from per-step times (warm-up: allocator, gloo connections). 20
epochs by default: an epoch of digits is ~0.5 s here, and Ray Train boots helper actors
(~1-2 CPU-seconds of imports each) while the first epochs run; over 6 epochs those boots were
most of what the per-step figure measured, not the steady state it is meant to. Each
repeat runs plain and kubetrain back to back, in alternating order; besides the ratio of the
medians, the median of those paired ratios is printed (this VM's speed drifts by 10-20% from
minute to minute).

    python bench/ddp_overhead.py [--epochs 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from cpu_time import cpu_seconds  # bench/, beside this script
from ports import free_port

ROOT = Path(__file__).resolve().parents[1]


def job(workers: int, epochs: int, samples: int | None = None) -> dict[str, Any]:
    """The CNN on digits (12 steps an epoch with 2 workers), or on as many synthetic images of
    the same shape (1x28x28) as `samples`: longer epochs, the same step."""
    dataset = {"source": "digits", "batchSize": 64}
    if samples is not None:
        dataset = {"source": "synthetic", "samples": samples, "batchSize": 64}
    return {
        "apiVersion": "kubetrain.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": f"bench-ddp-{workers}"},
        "spec": {
            "model": {"name": "cnn"},
            "dataset": dataset,
            "training": {"epochs": epochs, "optimizer": {"name": "adam", "lr": 0.001}},
            "distributed": {"workers": workers},
            "metrics": {"enabled": False},
            "checkpoint": {"everyEpochs": 1000},
        },
    }


def timed_run(command: list[str], env: dict[str, str], what: str) -> float:
    """Wall seconds of `command` (with `env` added); a failure ends the bench with its stderr."""
    started = time.perf_counter()
    done = subprocess.run(
        command, env=os.environ | env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"{what} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def plain(workers: int, epochs: int, samples: int | None) -> tuple[float, float]:
    """(seconds per step after warm-up, wall seconds)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        # A port of its own each time: the last run's may still be in TIME_WAIT.
        wall = timed_run(
            [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={workers}",
             f"--master_port={free_port()}", str(ROOT / "bench" / "plain_ddp.py"),
             json.dumps(job(workers, epochs, samples))],
            {"PLAIN_DDP_OUT": str(out), "OMP_NUM_THREADS": "1"}, f"plain DDP ({workers} workers)",
        )  # fmt: skip
        data = json.loads(out.read_text())
    return sum(data["epoch_seconds"][1:]) / (data["steps_per_epoch"] * (epochs - 1)), wall


def kubetrain(
    workers: int, epochs: int, samples: int | None, storage: str, env: dict[str, str] | None = None
) -> tuple[float, float]:
    """`kubetrain run` as a user runs it: its own local Ray cluster, started and stopped with
    it, so no Ray process is left to slow the plain DDP runs in between."""
    with tempfile.TemporaryDirectory() as tmp:
        path, out = Path(tmp) / "job.yaml", Path(tmp) / "result.json"
        spec = job(workers, epochs, samples)
        spec["spec"]["checkpoint"]["storagePath"] = storage
        path.write_text(json.dumps(spec))  # JSON is YAML
        wall = timed_run(
            [sys.executable, "-m", "kubetrain.cli", "run", str(path), "--output", str(out)],
            env or {},
            f"kubetrain ({workers} workers)",
        )
        hist = json.loads(out.read_text())["history"]
    steps = hist[-1]["step"] / epochs
    return sum(h["epoch_seconds"] for h in hist[1:]) / (steps * (epochs - 1)), wall


TRAINING_WORKER = "ray::RayTrainWorker"


def _ray_process_name(argv: list[str]) -> str | None:
    """ "ray::TrainController" for Ray's workers and actors, "raylet" or "log_monitor.py" for its
    daemons; None for any other process."""
    if argv[0].startswith("ray::"):
        return argv[0].split()[0].split(".")[0]
    ray_paths = [Path(a).name for a in argv[:3] if "/ray/" in a]
    return ray_paths[0] if ray_paths else None


def _cpu_by_process() -> dict[int, tuple[str, float]]:
    """pid -> (Ray process name, CPU seconds so far), for this machine's Ray processes."""
    found: dict[int, tuple[str, float]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            name = _ray_process_name((proc / "cmdline").read_bytes().decode().split("\0"))
            if name is not None:
                found[int(proc.name)] = (name, cpu_seconds(int(proc.name)))
        except OSError:
            continue  # the process ended while we looked
    return found


class RayCpu:
    """Samples Ray's processes every second while a run trains; `background()` gives the cores
    used by all but the training workers, over the last stretch in which the workers trained."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, dict[int, tuple[str, float]]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.samples.append((time.monotonic(), _cpu_by_process()))

    def __enter__(self) -> RayCpu:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def background(self, window_s: float = 10.0) -> tuple[float, dict[str, float]]:
        """(cores used by Ray's non-training processes, those cores by process name)."""

        def workers(i: int) -> float:
            return sum(c for n, c in self.samples[i][1].values() if n == TRAINING_WORKER)

        # Samples at which the workers were busy (over a core between this one and the next).
        busy = [i for i in range(len(self.samples) - 1) if workers(i + 1) - workers(i) > 1.0]
        if not busy:
            return float("nan"), {}
        end = busy[-1]
        start = next(i for i in busy if self.samples[end][0] - self.samples[i][0] <= window_s)
        (t0, first), (t1, last) = self.samples[start], self.samples[end]
        used: dict[str, float] = defaultdict(float)
        for pid, (name, cpu) in last.items():
            if name != TRAINING_WORKER and pid in first:
                used[name] += (cpu - first[pid][1]) / max(t1 - t0, 1e-9)
        return sum(used.values()), dict(used)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--samples", type=int,
        help="synthetic images of digits' shape instead of digits: epochs of 0.8*N/128 steps "
        "with 2 workers (kubetrain reports once an epoch; digits' epochs are 12 steps)",
    )  # fmt: skip
    parser.add_argument(
        "--kubetrain-env", action="append", default=[], metavar="NAME=VALUE",
        help="also run 2 workers with these environment variables set (repeatable), "
        "interleaved with the rest: an A/B of a setting, side by side",
    )  # fmt: skip
    args = parser.parse_args()
    if bad := [kv for kv in args.kubetrain_env if "=" not in kv]:
        parser.error(f"--kubetrain-env takes NAME=VALUE, got {bad[0]!r}")
    variant = dict(kv.split("=", 1) for kv in args.kubetrain_env)

    rows: dict[str, list[tuple[float, float]]] = {}
    background: list[tuple[float, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as storage:
        for i in range(args.repeats):  # interleaved so drift in machine load hits both alike
            for workers in (1, 2):
                # Plain first in even repeats, kubetrain first in odd ones: a drift within a
                # repeat favours neither. Both are sampled alike (the sampler costs CPU too).
                sides = ["plain", "kubetrain"]
                if variant and workers == 2:
                    sides.append("variant")
                for side in sides if i % 2 == 0 else sides[::-1]:
                    with RayCpu() as ray_cpu:
                        if side == "plain":
                            measured = plain(workers, args.epochs, args.samples)
                        else:
                            env = variant if side == "variant" else None
                            measured = kubetrain(
                                workers, args.epochs, args.samples, f"{storage}/{i}{side}", env
                            )
                    rows.setdefault(f"{side}-{workers}", []).append(measured)
                    print(f"repeat {i + 1}: {side}-{workers} {measured[0] * 1000:.2f} ms/step",
                          file=sys.stderr)  # fmt: skip
                    if side == "kubetrain" and workers == 2:
                        background.append(ray_cpu.background())

    def step(key: str) -> float:
        return statistics.median(r[0] for r in rows[key])

    def wall(key: str) -> float:
        return statistics.median(r[1] for r in rows[key])

    order = ("plain-1", "kubetrain-1", "plain-2", "kubetrain-2", "variant-2")
    rows = {key: rows[key] for key in order if key in rows}
    data = "digits" if args.samples is None else f"{args.samples} synthetic images"
    print(f"\nCNN on {data}, batch 64, {args.epochs} epochs, {args.repeats} repeats, "
          f"{os.cpu_count()} CPUs; medians")  # fmt: skip
    print(f"{'':14}{'ms/step':>10}{'wall s':>10}")
    for key in rows:
        print(f"{key:14}{step(key) * 1000:10.2f}{wall(key):10.1f}")

    def paired(w: int, side: str = "kubetrain") -> float:
        return statistics.median(
            k[0] / p[0] for k, p in zip(rows[f"{side}-{w}"], rows[f"plain-{w}"], strict=True)
        )

    for w in (1, 2):
        print(f"per-step overhead vs plain DDP, {w} worker(s): "
              f"{step(f'kubetrain-{w}') / step(f'plain-{w}'):.3f}  (target ≤ 1.03; "
              f"median of paired ratios {paired(w):.3f})")  # fmt: skip
        print(f"wall-time ratio vs torchrun, {w} worker(s):     "
              f"{wall(f'kubetrain-{w}') / wall(f'plain-{w}'):.2f}")  # fmt: skip
    if "variant-2" in rows:
        print(f"same with {' '.join(args.kubetrain_env)}, 2 workers: "
              f"{step('variant-2') / step('plain-2'):.3f}  (median of paired ratios "
              f"{paired(2, 'variant'):.3f})")  # fmt: skip
    print(f"2 workers / 1 worker throughput, kubetrain:   "
          f"{step('kubetrain-1') / step('kubetrain-2') * 2:.2f}x")  # fmt: skip
    print(f"2 workers / 1 worker throughput, plain DDP:   "
          f"{step('plain-1') / step('plain-2') * 2:.2f}x")  # fmt: skip
    cores = statistics.median(b[0] for b in background)
    by_name: dict[str, float] = defaultdict(float)
    for _, used in background:
        for name, share in used.items():
            by_name[name] += share / len(background)
    top = sorted(by_name.items(), key=lambda kv: -kv[1])[:8]
    print(f"Ray's own processes while 2 workers trained: {cores * 100:.1f}% of a core "
          f"({cores / (os.cpu_count() or 1) * 100:.1f}% of this machine): "
          + ", ".join(f"{n} {v * 100:.1f}%" for n, v in top))  # fmt: skip


if __name__ == "__main__":
    main()
