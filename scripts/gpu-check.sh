#!/usr/bin/env bash
# The GPU check, in one call on a lent GPU machine (bench/RESULTS.md, "GPU check", has the call):
# with a CUDA GPU it installs the wheels carried in .whl/ (scripts/gpu-wheels.sh fills it), prints
# the GPU and the versions, runs the `gpu` tests (NCCL DDP on the GPUs present, bf16 autocast,
# resume from a GPU-written checkpoint, ZeRO-2 bf16 with DeepSpeed's FusedAdam), then
# bench/deepspeed_gpu.py (BERT-base bf16: DDP against ZeRO-1/2/3, ms/step, peak memory, MFU), and
# prints a summary last. Without a GPU it runs the CPU twin of the same steps (the `gpu_twin`
# tests, the bench's --cpu), so that the script does not rot: tests/integration/test_gpu_check.py
# runs it so.
#
#   scripts/gpu-check.sh [PYTEST ARGS...]
#
# Logs and JSON go to $OUT (the device tool brings back what is there), else $GPU_CHECK_OUT, else a
# new temporary folder. GPU_CHECK_DEVICE=cpu forces the twin. PYTHON picks the interpreter (else
# .venv/bin/python where it exists, else python3: the device image's, which holds torch).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${OUT:-${GPU_CHECK_OUT:-$(mktemp -d)}}
mkdir -p "$out"
py=${PYTHON:-python3}
if [[ -z ${PYTHON:-} && -x .venv/bin/python ]]; then py=.venv/bin/python; fi

mode=${GPU_CHECK_DEVICE:-}
if [[ -z $mode ]]; then
  mode=cpu
  if [[ $("$py" -c 'import torch; print(torch.cuda.is_available())') == True ]]; then mode=cuda; fi
fi
[[ $mode == cpu || $mode == cuda ]] || { echo "GPU_CHECK_DEVICE is cpu or cuda, not $mode" >&2; exit 2; }
echo "==> gpu-check: $mode$([[ $mode == cpu ]] && echo ' (the CPU twin: no GPU here)'); files in $out"

# kubetrain runs from src/ (never pip-installed: its torch pin would fight the image's torch).
site=
if [[ $mode == cuda ]] && compgen -G '.whl/*.whl' >/dev/null; then
  site=/tmp/kubetrain-site
  echo "==> installing the carried wheels into $site"
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" .whl/*.whl
fi
export PYTHONPATH=${site:+$site:}$root/src:$root/operator:$root${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1

{
  if [[ $mode == cuda ]]; then nvidia-smi || true; fi
  "$py" - <<'EOF'
import platform
from importlib.metadata import PackageNotFoundError, version

import torch

print(f"python {platform.python_version()}, torch {torch.__version__} (CUDA {torch.version.cuda})")
for i in range(torch.cuda.device_count()):
    print(f"GPU {i}: {torch.cuda.get_device_name(i)}")
for name in ("ray", "deepspeed", "transformers", "pydantic", "numpy"):
    try:
        print(f"{name} {version(name)}")
    except PackageNotFoundError:
        print(f"{name}: MISSING")
EOF
} 2>&1 | tee "$out/env.txt"

# Only the files that hold gpu tests: collecting all of tests/ would import kopf, kubernetes and
# cel-python, which the GPU image lacks and these tests do not need.
marker=gpu_twin
if [[ $mode == cuda ]]; then marker=gpu; fi
# (A test is a gpu test by pytest.mark.gpu, or by tests/integration/conftest.py's
# GPU_AND_ITS_CPU_TWIN, which carries that mark and its CPU twin's.)
mapfile -t files < <(grep -rlwE --include='test_*.py' 'pytest.mark.gpu|GPU_AND_ITS_CPU_TWIN' tests | sort)
((${#files[@]})) || { echo "no test file holds a gpu test (pytest.mark.gpu)" >&2; exit 1; }
per_test=()  # pytest-timeout, where installed (the GPU image has it), loads itself: no -p
if "$py" -c 'import pytest_timeout' 2>/dev/null; then per_test=(--timeout 150); fi

# DeepSpeed compiles its FusedAdam on first use (nvcc, ninja, Python's headers), for this GPU
# alone; once built here, the ZeRO test and the bench load it from torch's extension cache. If it
# does not build, the test says so and the bench gives DeepSpeed torch's AdamW instead.
adam=() fused=
if [[ $mode == cuda ]]; then
  TORCH_CUDA_ARCH_LIST=$("$py" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())')
  export TORCH_CUDA_ARCH_LIST
  echo "==> building DeepSpeed's FusedAdam for sm_${TORCH_CUDA_ARCH_LIST/./}"
  fused=built
  if ! timeout 120 "$py" -c 'from deepspeed.ops.op_builder import FusedAdamBuilder
FusedAdamBuilder().load(verbose=True)' >"$out/fused-adam.log" 2>&1; then
    tail -n 5 "$out/fused-adam.log"
    echo "FusedAdam did not build (fused-adam.log): the bench runs DeepSpeed with torch's AdamW"
    adam=(--torch-adam) fused="did not build: the bench ran DeepSpeed with torch's AdamW"
  fi
  tail -n 1 "$out/fused-adam.log"
fi

echo "==> pytest -m $marker ${files[*]}"
set +e
timeout 210 "$py" -m pytest -p no:cacheprovider -q -rA -m "$marker" "${per_test[@]}" \
  "${files[@]}" "$@" 2>&1 | tee "$out/pytest.log"
tests_rc=${PIPESTATUS[0]}
set -e

# The bench: its table to bench.log, its figures to bench.json, its children's output to
# bench.err. On a GPU, 64 x 512 = 32k tokens a step keep BERT-base's matrix products big enough to
# say something about MFU; on CPU the twin's tiny BERT only exercises the path.
sizes=(--cpu --batch 4 --seq 32 --warmup 5 --steps 10)
if [[ $mode == cuda ]]; then sizes=(--batch 64 --seq 512 --warmup 5 --steps 20 "${adam[@]}"); fi
echo "==> python bench/deepspeed_gpu.py ${sizes[*]}"
bench_rc=0
timeout 150 "$py" bench/deepspeed_gpu.py "${sizes[@]}" --json "$out/bench.json" \
  2>"$out/bench.err" | tee "$out/bench.log" || bench_rc=$?

{
  echo "==> gpu-check summary ($mode$([[ $mode == cpu ]] && echo ': the CPU twin'))"
  grep -E '^(python|GPU [0-9]+:|ray|deepspeed)' "$out/env.txt" || true
  if [[ -n $fused ]]; then echo "DeepSpeed's FusedAdam: $fused"; fi
  echo "tests (-m $marker): $(tail -n 1 "$out/pytest.log") [exit $tests_rc]"
  cat "$out/bench.log"
  echo "bench: exit $bench_rc"
} | tee "$out/summary.txt"
exit $((tests_rc || bench_rc))
