# shellcheck shell=bash
# e2e/cluster/common.sh — what every part of e2e/cluster.sh uses: logging, waiting,
# root and directory checks, config templates, kubectl. Sourced by e2e/cluster.sh,
# which sets the settings (CLUSTER_DIR, ports, paths) these functions read.

log() { printf '[cluster %s] %s\n' "$(date +%T.%2N)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

sanity_check_dir() {
  case "$CLUSTER_DIR" in
    /?*) ;;
    *) die "KUBETRAIN_CLUSTER_DIR must be an absolute path (got '$CLUSTER_DIR')" ;;
  esac
  [[ "$CLUSTER_DIR" != "/" && "$CLUSTER_DIR" != *"/.."* ]] || die "refusing KUBETRAIN_CLUSTER_DIR=$CLUSTER_DIR"
}

need_root() { [[ $(id -u) -eq 0 ]] || die "must run as root (it starts a kubelet, changes iptables, mounts)"; }

wait_for() { # wait_for DESCRIPTION TIMEOUT_S CMD...: poll CMD until it succeeds
  local what=$1 timeout=$2; shift 2
  local deadline
  deadline=$(($(date +%s) + timeout))
  until "$@" >/dev/null 2>&1; do
    (($(date +%s) < deadline)) || { log "timed out after ${timeout}s waiting for $what"; return 1; }
    sleep 0.1
  done
}

# render TEMPLATE [NAME=VALUE]...: prints e2e/cluster/templates/TEMPLATE with each ${NAME}
# in it replaced: by the VALUE given here, else by the shell variable NAME (a setting, or a
# local of the caller). Only ${UPPER_CASE} placeholders are replaced; every other $ (a shell
# script inside a manifest, $PATH in the env file) stays as written. A placeholder with no
# value is an error, not an empty string.
render() {
  local template="$TEMPLATES/$1" arg name value format="" values=()
  shift
  [[ -f "$template" ]] || die "no template $template"
  local -A given=()
  for arg in "$@"; do given[${arg%%=*}]=${arg#*=}; done
  while read -r name; do
    if [[ -v "given[$name]" ]]; then
      value=${given[$name]}
    elif [[ -v "$name" ]]; then
      value=${!name}
    else
      die "template $template: no value for \${$name}"
    fi
    values+=("$name=$value")
    format+="\${$name}"
  done < <(grep -o '[$]{[A-Z_][A-Z0-9_]*}' "$template" | sort -u | tr -d '{}$')
  env "${values[@]}" envsubst "$format" <"$template"
}

kc() { "$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
