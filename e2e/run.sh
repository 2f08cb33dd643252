#!/usr/bin/env bash
# e2e/run.sh — the whole end-to-end path in one command (`make e2e`):
#   1. a cluster: e2e/cluster.sh up (here: real Kubernetes from Debian packages), or kind (--kind)
#   2. the trainer and operator images, built (or reused) and loaded into it (e2e/images/build.py)
#   3. the suite (e2e/tests), which installs the chart, runs the jobs, and uninstalls the chart
#
#   e2e/run.sh [--kind] [--down] [PYTEST ARGS...]
#     --kind   use e2e/kind.sh (needs Docker and kind) instead of e2e/cluster.sh
#     --down   tear the cluster down afterwards (default: leave it up for the next run)
# Figures (build, load, time to Succeeded, accuracy) land in e2e/.figures.json and
# e2e/.images.json.
set -euo pipefail
cd "$(dirname "$0")/.."

kind=0 down=0
while (($#)); do
  case "$1" in
    --kind) kind=1; shift ;;
    --down) down=1; shift ;;
    *) break ;;
  esac
done

log() { printf '[e2e %s] %s\n' "$(date +%T)" "$*" >&2; }
SECONDS=0

bash scripts/setup.sh >&2          # the venv (pytest, kubetrain) and Debian's prometheus
bash scripts/get-helm.sh >&2       # helm in .venv/bin

if ((kind)); then
  export KUBECONFIG; KUBECONFIG=$(e2e/kind.sh up)
  cluster_down() { e2e/kind.sh down; }
else
  export KUBECONFIG; KUBECONFIG=$(e2e/cluster.sh up)
  cluster_down() { e2e/cluster.sh down; }
fi
log "cluster ready after ${SECONDS}s: KUBECONFIG=$KUBECONFIG"
((down)) && trap 'cluster_down' EXIT

python3 e2e/images/build.py --report e2e/.images.json
log "images ready after ${SECONDS}s"

# KUBETRAIN_E2E_PATHS: what to run instead of the suite, space separated (bench/startup.py
# --cluster names its bench, which the suite's file pattern leaves out).
read -r -a paths <<<"${KUBETRAIN_E2E_PATHS:-e2e/tests}"
PATH="$PWD/.venv/bin:$PATH" .venv/bin/pytest -p no:cacheprovider -m e2e "${paths[@]}" -v "$@"
log "suite done after ${SECONDS}s"
