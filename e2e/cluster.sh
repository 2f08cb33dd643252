#!/usr/bin/env bash
# e2e/cluster.sh — a real single-node Kubernetes v1.20.2 cluster on this machine,
# with no Docker: binaries built from Debian's `kubernetes` source package, etcd
# from Debian, kubelet on a private containerd, kube-proxy (iptables), dnsmasq DNS.
#
#   e2e/cluster.sh up [--control-plane-only]   start (idempotent); prints KUBECONFIG path
#   e2e/cluster.sh down                        stop everything, leave nothing behind
#   e2e/cluster.sh status                      components, PIDs, API health, node Ready
#   e2e/cluster.sh smoke                       pod -> Service name -> pod test, with timings
#   e2e/cluster.sh load-image TARBALL...       import docker-archive tarballs into containerd
#   e2e/cluster.sh kubectl ARGS...             kubectl against this cluster
#   e2e/cluster.sh env                         shell exports (eval "$(e2e/cluster.sh env)")
#   e2e/cluster.sh kubeconfig                  the kubeconfig path (whether or not it is up)
#   e2e/cluster.sh build                       only install packages and build/cache binaries
#   e2e/cluster.sh leftovers                   after down: list anything left on the host (exit 1 if any)
#
# See e2e/README.md. Only stdout of `up` is the kubeconfig path; progress goes to stderr.
# This file holds the settings and the commands; the work is done in e2e/cluster/:
#   common.sh         logging, waiting, root and directory checks, templates, kubectl
#   build.sh          Debian packages, the Kubernetes build from source, the pause/smoke images
#   procs.sh          starting and stopping the daemons (PID + start time bookkeeping)
#   pki.sh            the CA, certificates and kubeconfigs
#   control-plane.sh  etcd, kube-apiserver, kube-controller-manager, kube-scheduler
#   node.sh           containerd, kubelet, kube-proxy, the pod network, host state and its undoing
#   dns.sh            cluster DNS: dnsmasq, the loop that feeds it, the kube-dns Service
#   lifecycle.sh      up and down
#   inspect.sh        status and leftovers
#   smoke.sh          the smoke test
#   templates/        the config files and manifests they write
set -euo pipefail

K8S_VERSION=v1.20.2
E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$E2E_DIR/cluster.sh"
LIB_DIR="$E2E_DIR/cluster"
TEMPLATES="$LIB_DIR/templates"
CLUSTER_DIR=${KUBETRAIN_CLUSTER_DIR:-/tmp/kubetrain-cluster}
CACHE_DIR=${KUBETRAIN_CACHE_DIR:-${HOME:-/root}/.cache/kubetrain}
K8S_CACHE="$CACHE_DIR/k8s-$K8S_VERSION"
BIN_DIR="$K8S_CACHE/bin"
IMAGE_DIR="$K8S_CACHE/images"
API_PORT=${KUBETRAIN_API_PORT:-6443}
ETCD_PORT=${KUBETRAIN_ETCD_PORT:-2379}
ETCD_PEER_PORT=${KUBETRAIN_ETCD_PEER_PORT:-2380}
DNS_PORT=${KUBETRAIN_DNS_PORT:-53}
SERVICE_CIDR=${KUBETRAIN_SERVICE_CIDR:-10.96.0.0/16}   # network address must end in .0
POD_CIDR=${KUBETRAIN_POD_CIDR:-10.244.0.0/24}          # network address must end in .0
NODE_NAME=${KUBETRAIN_NODE_NAME:-kubetrain-node}
BRIDGE=${KUBETRAIN_BRIDGE:-kubetrain0}
CLUSTER_DOMAIN=cluster.local
PAUSE_IMAGE=kubetrain.local/pause:3.4
SMOKE_IMAGE=kubetrain.local/smoke:1.0
WAIT_TIMEOUT=${KUBETRAIN_WAIT_TIMEOUT:-120}

API_SVC_IP="${SERVICE_CIDR%.*}.1"     # 10.96.0.1
# shellcheck disable=SC2034  # read by templates/ (kubelet.yaml, kube-dns.yaml) through render
DNS_SVC_IP="${SERVICE_CIDR%.*}.10"    # 10.96.0.10
# shellcheck disable=SC2034  # read by templates/10-kubetrain.conflist through render
POD_GATEWAY="${POD_CIDR%.*}.1"        # 10.244.0.1

# Runtime layout (everything the cluster writes lives under CLUSTER_DIR).
PKI="$CLUSTER_DIR/pki"
RUN="$CLUSTER_DIR/run"            # pid files: "PID STARTTIME"
LOGS="$CLUSTER_DIR/logs"
STATE="$CLUSTER_DIR/state"        # snapshots taken before up, used by down
KUBECONFIG_PATH="$CLUSTER_DIR/admin.kubeconfig"
CTRD="$CLUSTER_DIR/containerd"
CTRD_SOCK="$CTRD/containerd.sock"
RUNC_ROOT="$CTRD/runc"
KUBELET_DIR="$CLUSTER_DIR/kubelet"
CNI_DIR="$CLUSTER_DIR/cni"
DNS_DIR="$CLUSTER_DIR/dns"

# shellcheck source-path=SCRIPTDIR  # (resolves the source= paths below from any directory)
{
  # shellcheck source=cluster/common.sh
  source "$LIB_DIR/common.sh"
  # shellcheck source=cluster/build.sh
  source "$LIB_DIR/build.sh"
  # shellcheck source=cluster/procs.sh
  source "$LIB_DIR/procs.sh"
  # shellcheck source=cluster/pki.sh
  source "$LIB_DIR/pki.sh"
  # shellcheck source=cluster/control-plane.sh
  source "$LIB_DIR/control-plane.sh"
  # shellcheck source=cluster/node.sh
  source "$LIB_DIR/node.sh"
  # shellcheck source=cluster/dns.sh
  source "$LIB_DIR/dns.sh"
  # shellcheck source=cluster/lifecycle.sh
  source "$LIB_DIR/lifecycle.sh"
  # shellcheck source=cluster/inspect.sh
  source "$LIB_DIR/inspect.sh"
  # shellcheck source=cluster/smoke.sh
  source "$LIB_DIR/smoke.sh"
}

# The header's comment block, up to "See e2e/README.md".
usage() { awk 'NR > 1 && /^# See / { exit } NR > 1 { sub(/^# ?/, ""); print }' "$SELF"; }

main() {
  local cmd=${1:-}
  (($#)) && shift
  case "$cmd" in
    up) cmd_up "$@" ;;
    down) cmd_down ;;
    status) cmd_status ;;
    smoke) cmd_smoke ;;
    build)
      need_root
      install_packages full
      build_binaries
      build_images
      ;;
    load-image)
      (($#)) || die "usage: cluster.sh load-image TARBALL..."
      proc_alive containerd || die "containerd of $CLUSTER_DIR is not running (load-image needs a full cluster: cluster.sh up)"
      load_images "$@"
      ;;
    kubectl) kc "$@" ;;
    env) cat "$CLUSTER_DIR/env" ;;
    kubeconfig) echo "$KUBECONFIG_PATH" ;;
    leftovers) cmd_leftovers ;;
    _dns-sync) dns_sync_loop ;;
    -h | --help | help | "") usage ;;
    *) usage; die "unknown command: $cmd" ;;
  esac
}

# One line, so that bash has read it whole before main runs: editing this file
# while a cluster.sh runs (e.g. the dns-sync loop) cannot make bash resume mid-file.
# (The files under cluster/ are read whole by `source` before any of them runs.)
{ main "$@"; exit; }
