#!/usr/bin/env bash
# Fill .whl/ (git-ignored) with the Python packages that scripts/gpu-check.sh needs and a lent GPU
# machine's image lacks. That machine reaches no registry, so they travel with the call
# (`carry: [".whl"]`); gpu-check.sh installs them into /tmp/site there. Run it here, once.
#
# The image has python3 3.12 with torch (2.11, CUDA), transformers, numpy, pandas, pyarrow,
# pyyaml, prometheus-client, scikit-learn, protobuf, msgpack, ninja, psutil, py-cpuinfo, einops,
# ... but not Ray, DeepSpeed or pydantic (/work/.library/device/KINDS.md lists it all). torch is
# never carried: the image's CUDA build is what runs.
#
# Everything carried must stay under the device tool's 64 MiB (the working tree included). Ray's
# wheel alone is 76 MiB, 31 of them the Java workers' jar (ray/jars/) and 2.4 the dashboard's web
# page: the copy carried here is Ray's own wheel without those two folders (kubetrain starts Ray
# with include_dashboard=False and runs no Java), about 42 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
LOCK=trainer_image/requirements.lock  # the versions kubetrain is tested with here
WHL=.whl

# Ray, Ray Train's needs beyond the image (jsonschema, tensorboardX), pydantic (kubetrain's API
# and DeepSpeed's config), DeepSpeed's hjson; typing-extensions because pydantic-core wants a
# recent one.
PACKAGES=(ray jsonschema jsonschema-specifications referencing rpds-py tensorboardx pydantic
  pydantic-core annotated-types typing-inspection typing-extensions hjson)

# The registry's mirror setup makes pip warn about absent local indexes: noise here.
pip_() { "$PY" -m pip "$@" 2>&1 | { grep -v 'is ignored: it is neither' || true; }; }
pinned() { grep -i "^$1==" "$LOCK" || "$PY" -m pip list --format=freeze 2>/dev/null | grep -i "^$1=="; }

rm -rf "$WHL" && mkdir -p "$WHL"
specs=()
for name in "${PACKAGES[@]}"; do specs+=("$(pinned "$name")"); done
echo "==> downloading ${specs[*]}"
pip_ download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
  -d "$WHL" "${specs[@]}"

# DeepSpeed ships only as source and its setup imports torch: built here against this venv's
# torch, with no ops compiled ahead (DS_BUILD_OPS=0; on the GPU it compiles FusedAdam on first
# use with the image's nvcc and ninja). The result is pure Python (py3-none-any).
ds=$(pinned deepspeed)
echo "==> building $ds"
DS_BUILD_OPS=0 pip_ wheel -q --no-deps --no-build-isolation -w "$WHL" "$ds"

echo "==> slimming Ray's wheel (without ray/jars/ and ray/dashboard/client/)"
"$PY" - "$WHL"/ray-*.whl <<'EOF'
import sys, zipfile
from pathlib import Path

path = Path(sys.argv[1])
dropped = ("ray/jars/", "ray/dashboard/client/")
slim = path.with_suffix(".slim")
with zipfile.ZipFile(path) as src, zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED) as dst:
    for info in src.infolist():
        if info.filename.startswith(dropped):
            continue
        data = src.read(info)
        if info.filename.endswith(".dist-info/RECORD"):  # the list of files, less the dropped
            lines = data.decode().splitlines(keepends=True)
            data = "".join(x for x in lines if not x.startswith(dropped)).encode()
        dst.writestr(info, data, compress_type=info.compress_type)
slim.replace(path)
EOF

echo "==> $WHL:"
du -b "$WHL"/*.whl | sort -n | awk '{ printf "%8.2f MiB  %s\n", $1 / 2^20, $2 }'
whl=$(du -cb "$WHL"/*.whl | tail -1 | cut -f1)
tree=$(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1)
awk -v w="$whl" -v t="$tree" 'BEGIN { printf "%.1f MiB of wheels + %.1f MiB of tracked files (the device tool carries at most 64 MiB)\n", w / 2^20, t / 2^20 }'
