"""bench/deepspeed_gpu.py on a machine without a GPU: it says so and fails, inventing nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from tests.conftest import ROOT


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_gpu_bench_without_a_gpu_exits_2_saying_it_needs_one() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "deepspeed_gpu.py")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "needs a CUDA GPU" in proc.stderr
    assert "ms/step" not in proc.stdout, "no figures without a GPU"
