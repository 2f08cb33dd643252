#!/usr/bin/env bash
# The project's test command: static checks, the whole pytest suite, then the end-to-end suite
# on a real local cluster (e2e/run.sh --down). `.ci/run` calls it.
# Extra arguments go to pytest (e.g. `scripts/test.sh -m "not slow"`) and skip the e2e stage;
# so does KUBETRAIN_E2E=0. The e2e stage needs root (it runs containerd, a kubelet, iptables).
set -euo pipefail
cd "$(dirname "$0")/.."
V=.venv/bin

echo "==> ruff";          "$V/ruff" check .
echo "==> ruff format";   "$V/ruff" format --check . >/dev/null
echo "==> mypy (strict)"; "$V/mypy"
# Every shell script (tracked or new; .ci/run has no .sh), following what they source (-x).
echo "==> shellcheck";    command -v shellcheck >/dev/null \
  || { echo "shellcheck is not installed: run scripts/setup.sh as root (apt-get install shellcheck)"; exit 1; }
git ls-files -z --cached --others --exclude-standard -- '*.sh' .ci/run | xargs -0 shellcheck -x
echo "==> import layers"; "$V/lint-imports" --no-cache >/dev/null
echo "==> crd in sync";   "$V/kubetrain" crd | diff -u crds/trainingjob.yaml - >/dev/null \
  || { echo "crds/trainingjob.yaml is stale: run 'kubetrain crd -o crds/trainingjob.yaml'"; exit 1; }
echo "==> spec reference in sync"; "$V/kubetrain" reference | diff -u docs/spec-reference.md - >/dev/null \
  || { echo "docs/spec-reference.md is stale: run 'kubetrain reference -o docs/spec-reference.md'"; exit 1; }
echo "==> pytest"
# pytest exits 5 when it collected no tests: that is a failure here too (set -e).
"$V/pytest" -p no:cacheprovider "$@"

echo "==> end to end"
if (($#)) || [[ ${KUBETRAIN_E2E:-1} == 0 ]]; then
  echo "skipped: pytest arguments or KUBETRAIN_E2E=0 (run it alone with 'make e2e')"
elif [[ $(id -u) != 0 ]]; then
  echo "skipped: the local cluster needs root (or run e2e/run.sh --kind with Docker and kind)"
else
  bash e2e/run.sh --down
fi
