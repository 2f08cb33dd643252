"""scripts/gpu-check.sh, the one call a session with a lent GPU makes, in its CPU twin: the same
steps (select the gpu tests' files, run them, run the bench, write the summary) on CPU, so the
script still works on the day a GPU is lent. One twin test (`-k zero2`) stands for the selection:
the twins themselves run with the rest of the suite."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

BACKENDS = ["ddp", "zero1", "zero2", "zero3"]


def test_the_gpu_check_runs_its_cpu_twin_end_to_end(tmp_path: Path) -> None:
    env = os.environ | {"GPU_CHECK_DEVICE": "cpu", "PYTHON": sys.executable}
    env.pop("OUT", None)
    env["GPU_CHECK_OUT"] = str(tmp_path)
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu-check.sh"), "-k", "zero2"],
        env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]

    # The twin ran, and only the twin: the gpu case is deselected, not skipped.
    log = (tmp_path / "pytest.log").read_text()
    assert "PASSED tests/integration/test_deepspeed.py::test_zero2_bf16_on_one_device[cpu]" in log
    assert "[cuda]" not in log

    bench = json.loads((tmp_path / "bench.json").read_text())
    assert bench["device"] == "CPU (twin)" and bench["failed"] == []
    assert [r["backend"] for r in bench["results"]] == BACKENDS
    for result in bench["results"]:
        for key in ("ms_per_step", "tokens_per_s", "achieved_tflops", "first_loss", "last_loss"):
            assert isinstance(result[key], float) and math.isfinite(result[key]), (key, result)
        assert result["ms_per_step"] > 0 and result["tokens_per_s"] > 0
        assert result["mfu"] is None and result["peak_gib"] is None, "no GPU, no MFU or memory"

    # The summary comes last, where the device tool's reply shows it.
    summary = (tmp_path / "summary.txt").read_text()
    assert output.rstrip().endswith(summary.rstrip())
    assert summary.startswith("==> gpu-check summary (cpu: the CPU twin)")
    assert "tests (-m gpu_twin): 1 passed" in summary and "[exit 0]" in summary
    assert "(ddp) on 1 x CPU (twin): n/a" in summary and "bench: exit 0" in summary
    rows = [line.split() for line in summary.splitlines() if line.split()[:1] == ["zero3"]]
    assert len(rows) == 1 and float(rows[0][1]) > 0, summary
