"""Time to first result: `kubetrain run` against plain torchrun, side by side on this machine.

Both train the same job (examples/mnist-mlp.yaml: the 784-128-10 MLP on digits, 2 workers,
10 epochs, gloo) from a cold process: the clock starts when the command starts, and stops at
its first `epoch 1/` line (time to first epoch) and when it exits (time to done). Runs alternate
which goes first in each repeat; the medians, their ratios and the median of the paired ratios
are printed. Target: kubetrain's time to first epoch ≤ 1.5× torchrun's.

Then `--breakdown` times where kubetrain's start-up goes, in one process, phase by phase: the
imports, Ray's start, Ray Train's controller and worker group, the workers' own set-up (data,
model, DDP), the first epoch.

    python bench/startup.py [--repeats 3] [--breakdown]
    python bench/startup.py --cluster   # the same on the end-to-end cluster (root; minutes)

`--cluster` runs e2e/tests/bench_startup.py through e2e/run.sh: `kubectl apply` of the example →
first epoch in its status → Succeeded, against a plain torchrun pod of the same trainer image.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ports import free_port  # bench/, beside this script

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "mnist-mlp.yaml"


def example_job() -> dict[str, Any]:
    docs = yaml.safe_load_all(EXAMPLE.read_text())
    job: dict[str, Any] = next(d for d in docs if d.get("kind") == "TrainingJob")
    job["spec"]["metrics"] = {"enabled": False}
    return job


def first_epoch_and_done(command: list[str], env: dict[str, str], what: str) -> tuple[float, float]:
    """(seconds to the first `epoch 1/` line on stdout, seconds to exit) of `command`."""
    started = time.perf_counter()
    first = None
    with subprocess.Popen(
        command, env=os.environ | env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=ROOT,
    ) as proc:  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        for line in proc.stdout:
            if first is None and line.startswith("epoch 1/"):
                first = time.perf_counter() - started
        err = proc.stderr.read()
        code = proc.wait()
    done = time.perf_counter() - started
    if code != 0 or first is None:
        raise SystemExit(f"{what} failed (exit {code}, first epoch {first}):\n{err[-3000:]}")
    return first, done


def plain(tmp: Path) -> tuple[float, float]:
    job = example_job()
    workers = job["spec"]["distributed"]["workers"]
    return first_epoch_and_done(
        [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={workers}",
         f"--master_port={free_port()}", str(ROOT / "bench" / "plain_ddp.py"), json.dumps(job)],
        {"PLAIN_DDP_OUT": str(tmp / "plain.json"), "OMP_NUM_THREADS": "1"}, "plain torchrun",
    )  # fmt: skip


def kubetrain(tmp: Path, run: int) -> tuple[float, float]:
    job = example_job()
    job["spec"]["checkpoint"]["storagePath"] = str(tmp / f"runs-{run}")  # a fresh start
    path = tmp / "job.yaml"
    path.write_text(json.dumps(job))
    return first_epoch_and_done(
        [sys.executable, "-m", "kubetrain.cli", "run", str(path)], {}, "kubetrain run"
    )


def breakdown(tmp: Path) -> list[tuple[str, float]]:
    """kubetrain's start-up, phase by phase, in this process (cold imports: run it first)."""
    marks: list[tuple[str, float]] = []
    t0 = time.perf_counter()

    def mark(what: str) -> None:
        marks.append((what, time.perf_counter() - t0))

    import torch  # noqa: F401

    mark("import torch")
    import ray.train  # noqa: F401

    mark("import ray.train")
    from kubetrain.api import parse_job
    from kubetrain.runner import EpochUpdate, LocalCluster, run_job, start_ray

    mark("import kubetrain.runner")
    start_ray(LocalCluster())
    mark("ray.init (local cluster up)")
    job = example_job()
    job["spec"]["checkpoint"]["storagePath"] = str(tmp / "runs-breakdown")
    job["spec"]["training"]["epochs"] = 1

    class FirstEpoch:
        def on_epoch(self, update: EpochUpdate, eta_seconds: float | None) -> None:
            mark("first epoch reported to the driver")
            marks.append(("  of which the epoch itself", update.report.epoch_seconds or 0.0))

        def on_worker_failure(self, failure: Any) -> None: ...

    run_job(parse_job(job), FirstEpoch(), cluster=LocalCluster())
    mark("run_job returned (checkpoint written, controller down)")
    return marks


def _median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--breakdown", action="store_true", help="also time kubetrain's phases")
    parser.add_argument("--cluster", action="store_true", help="on the end-to-end cluster")
    args = parser.parse_args()
    if args.cluster:
        os.chdir(ROOT)
        os.environ["KUBETRAIN_E2E_PATHS"] = "e2e/tests/bench_startup.py"
        os.execvp("bash", ["bash", "e2e/run.sh", "--down", "-s"])
    runs: dict[str, list[tuple[float, float]]] = {"plain": [], "kubetrain": []}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        order: list[tuple[str, Callable[[int], tuple[float, float]]]] = [
            ("plain", lambda i: plain(tmp)), ("kubetrain", lambda i: kubetrain(tmp, i)),
        ]  # fmt: skip
        for i in range(args.repeats):
            for name, fn in order if i % 2 == 0 else order[::-1]:
                first, done = fn(i)
                runs[name].append((first, done))
                print(f"repeat {i + 1} {name:9s} first epoch {first:6.2f} s  done {done:6.2f} s")
        print()
        for k, label in ((0, "time to first epoch"), (1, "time to done")):
            p = _median([r[k] for r in runs["plain"]])
            t = _median([r[k] for r in runs["kubetrain"]])
            pairs = [b[k] / a[k] for a, b in zip(runs["plain"], runs["kubetrain"], strict=True)]
            print(
                f"{label:20s} plain {p:6.2f} s  kubetrain {t:6.2f} s  ratio {t / p:.2f}"
                f" (median of pairs {_median(pairs):.2f})"
            )
        if args.breakdown:
            print("\nkubetrain's start-up, phase by phase (seconds since the process began):")
            for what, at in breakdown(tmp):
                print(f"  {at:6.2f}  {what}")


if __name__ == "__main__":
    main()
