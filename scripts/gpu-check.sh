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
mapfile -t files < <(grep -rlw --include='test_*.py' 'pytest.mark.gpu' tests | sort)
((${#files[@]})) || { echo "no test file marks a test pytest.mark.gpu" >&2; exit 1; }
per_test=()
if "$py" -c 'import pytest_timeout' 2>/dev/null; then per_test=(-p pytest_timeout --timeout 200); fi
echo "==> pytest -m $marker ${files[*]}"
set +e
timeout 300 "$py" -m pytest -p no:cacheprovider -q -rA -m "$marker" "${per_test[@]}" \
  "${files[@]}" "$@" 2>&1 | tee "$out/pytest.log"
tests_rc=${PIPESTATUS[0]}
set -e

bench() {  # NAME ARGS...: bench/deepspeed_gpu.py, its table to NAME.log, figures to NAME.json
  local name=$1 rc=0
  shift
  echo "==> python bench/deepspeed_gpu.py $*"
  timeout 240 "$py" bench/deepspeed_gpu.py "$@" --json "$out/$name.json" \
    2>>"$out/bench.err" | tee "$out/$name.log" || rc=$?
  return "$rc"
}
bench_rc=0
if [[ $mode == cuda ]]; then
  # 32k tokens a step keeps BERT-base's matrix products big enough to say something about MFU.
  bench bench --batch 64 --seq 512 --warmup 5 --steps 20 || bench_rc=$?
  if ((bench_rc)); then
    # If FusedAdam did not build (nvcc, ninja, Python headers), DeepSpeed can still be measured
    # with torch's AdamW, as kubetrain's ddp backend always is.
    bench bench-torch-adam --batch 64 --seq 512 --warmup 5 --steps 20 --torch-adam \
      --backends zero1 zero2 zero3 || true
  fi
else
  bench bench --cpu --batch 4 --seq 32 --warmup 2 --steps 5 || bench_rc=$?
fi

{
  echo "==> gpu-check summary ($mode$([[ $mode == cpu ]] && echo ': the CPU twin'))"
  grep -E '^(python|GPU [0-9]+:|ray|deepspeed)' "$out/env.txt" || true
  echo "tests (-m $marker): $(tail -n 1 "$out/pytest.log") [exit $tests_rc]"
  for log in "$out"/bench*.log; do cat "$log"; done
  echo "bench: exit $bench_rc"
} | tee "$out/summary.txt"
exit $((tests_rc || bench_rc))
