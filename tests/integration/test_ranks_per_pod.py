"""Several training ranks per worker pod, on a real multi-node Ray cluster (CPU ranks).

A worker pod's Ray node offers one `kubetrain_worker` per rank (ranksPerPod), and each Ray Train
worker asks for one: each node must host exactly its ranks, the world is pods x ranks, and the
training is the same as with one rank per pod (same world size, same data shards, same average).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_two_pods_of_two_ranks_place_two_per_node_and_train_as_four_single_rank_pods(
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [sys.executable, "-m", "tests.integration.pods_of_ranks", str(tmp_path)],
        capture_output=True, text=True, timeout=500, cwd=ROOT, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    runs = {r["run"]: r for r in map(json.loads, lines)}
    two_by_two, four_by_one = runs["two-by-two"], runs["four-by-one"]
    # 0.5 CPU per rank would let one node take all four; the worker resource keeps two on each.
    assert two_by_two["ranks_per_node"] == [2, 2]
    assert two_by_two["world_size"] == four_by_one["world_size"] == [4, 4]
    assert two_by_two["val_loss"] == pytest.approx(four_by_one["val_loss"], rel=1e-5)
    assert two_by_two["val_loss"][1] < two_by_two["val_loss"][0], "it trained"
