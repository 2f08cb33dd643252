#!/usr/bin/env bash
# e2e/kind.sh — the same e2e target for machines WITH Docker, using kind.
# (This machine has no Docker engine; use e2e/cluster.sh here.)
#
#   e2e/kind.sh up             create (or reuse) kind cluster "kubetrain"; prints KUBECONFIG path
#   e2e/kind.sh load IMAGE...  load images: a Docker image name (kind load docker-image)
#                              or a docker-archive tarball file (kind load image-archive)
#   e2e/kind.sh down           delete the cluster and its kubeconfig
#   e2e/kind.sh status         kubectl get nodes
#
# Env: KUBETRAIN_KIND_NAME (default kubetrain), KUBETRAIN_KIND_KUBECONFIG (default
# ~/.cache/kubetrain/kind-<name>.kubeconfig), KUBETRAIN_KIND_NODE_IMAGE (kind's
# --image, e.g. a kindest/node tag), KUBETRAIN_KIND_IMAGES (images/tarballs that
# `up` loads after creating the cluster; space separated).
set -euo pipefail

NAME=${KUBETRAIN_KIND_NAME:-kubetrain}
KUBECONFIG_PATH=${KUBETRAIN_KIND_KUBECONFIG:-${HOME:-/root}/.cache/kubetrain/kind-$NAME.kubeconfig}

log() { printf '[kind %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_tools() {
  command -v kind >/dev/null || die "kind not found (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"
  command -v docker >/dev/null || die "docker not found"
  docker info >/dev/null 2>&1 || die "no Docker engine reachable (docker info failed)"
}

cluster_exists() { kind get clusters 2>/dev/null | grep -qx "$NAME"; }

# load_images ITEM...: a file is a docker-archive tarball, anything else an image name.
load_images() {
  local item
  for item in "$@"; do
    if [[ -f "$item" ]]; then
      log "kind load image-archive $item"
      kind load image-archive --name "$NAME" "$item" >&2
    else
      log "kind load docker-image $item"
      kind load docker-image --name "$NAME" "$item" >&2
    fi
  done
}

cmd_up() {
  need_tools
  mkdir -p "$(dirname "$KUBECONFIG_PATH")"
  if cluster_exists; then
    log "kind cluster $NAME exists; writing its kubeconfig"
    kind export kubeconfig --name "$NAME" --kubeconfig "$KUBECONFIG_PATH" >&2
  else
    local args=(create cluster --name "$NAME" --kubeconfig "$KUBECONFIG_PATH" --wait 180s)
    [[ -n "${KUBETRAIN_KIND_NODE_IMAGE:-}" ]] && args+=(--image "$KUBETRAIN_KIND_NODE_IMAGE")
    log "kind ${args[*]}"
    kind "${args[@]}" >&2
  fi
  if [[ -n "${KUBETRAIN_KIND_IMAGES:-}" ]]; then
    local imgs
    read -r -a imgs <<<"$KUBETRAIN_KIND_IMAGES"
    load_images "${imgs[@]}"
  fi
  echo "$KUBECONFIG_PATH"
}

cmd_down() {
  command -v kind >/dev/null || die "kind not found"
  if cluster_exists; then kind delete cluster --name "$NAME" >&2; fi
  rm -f "$KUBECONFIG_PATH"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  load) shift; (($#)) || die "usage: kind.sh load IMAGE|TARBALL..."; need_tools; cluster_exists || die "no kind cluster $NAME"; load_images "$@" ;;
  status) kubectl --kubeconfig "$KUBECONFIG_PATH" get nodes -o wide ;;
  *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
