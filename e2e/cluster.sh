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
#   e2e/cluster.sh build                       only install packages and build/cache binaries
#   e2e/cluster.sh leftovers                   after down: list anything left on the host (exit 1 if any)
#
# See e2e/README.md. Only stdout of `up` is the kubeconfig path; progress goes to stderr.
# shellcheck disable=SC2317  # (functions called through wait_for/trap look unreachable to it)
set -euo pipefail

K8S_VERSION=v1.20.2
E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$E2E_DIR/cluster.sh"
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

svc_prefix=${SERVICE_CIDR%.*}           # 10.96.0
API_SVC_IP="$svc_prefix.1"
DNS_SVC_IP="$svc_prefix.10"
pod_prefix=${POD_CIDR%.*}
POD_GATEWAY="$pod_prefix.1"

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

CP_COMPONENTS=(etcd kube-apiserver kube-controller-manager)
FULL_COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy dnsmasq dns-sync)
# Host sysctls that the kubelet, kube-proxy or the CNI bridge change; restored by down.
SYSCTLS=(net/ipv4/ip_forward net/ipv4/conf/all/route_localnet net/bridge/bridge-nf-call-iptables
  net/bridge/bridge-nf-call-ip6tables vm/overcommit_memory vm/panic_on_oom kernel/panic
  kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes)

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

# ---------------------------------------------------------------- packages ---
apt_updated=0
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  if ((apt_updated == 0)); then
    log "apt-get update"
    apt-get update -qq >&2
    apt_updated=1
  fi
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

CP_PACKAGES=(etcd-server openssl curl jq iproute2 procps util-linux)
FULL_PACKAGES=(containerd runc containernetworking-plugins iptables conntrack dnsmasq-base
  busybox-static gcc libc6-dev kmod)
BUILD_PACKAGES=(dpkg-dev golang-go rsync jq make binutils golang-github-modern-go-reflect2-dev)

# ------------------------------------------------------------------- build ---
# Adds a deb-src entry derived at run time from the machine's own Debian sources
# (only files/lines that point at a Debian archive; no host name is hard-coded).
ensure_deb_src() {
  if apt-cache showsrc kubernetes 2>/dev/null | grep -q '^Package: kubernetes'; then return 0; fi
  local f=/etc/apt/sources.list.d/kubetrain-deb-src.sources src
  rm -f "$f" /etc/apt/sources.list.d/kubetrain-deb-src.list
  for src in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$src" ]] || continue
    if ! { grep -q '^Types:.*\bdeb\b' "$src" && grep -qiE '^(URIs:.*/debian|Signed-By:.*debian-archive-keyring)' "$src"; }; then
      continue
    fi
    sed -e 's/^Types:.*/Types: deb-src/' "$src"
    echo
  done >"$f.tmp"
  if [[ -s "$f.tmp" ]]; then
    mv "$f.tmp" "$f"
  else
    rm -f "$f.tmp"
    f=/etc/apt/sources.list.d/kubetrain-deb-src.list
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      sed -n 's/^[[:space:]]*deb[[:space:]]\(.*\/debian.*\)/deb-src \1/p' >"$f"
  fi
  [[ -s "$f" ]] || { rm -f "$f"; die "no Debian apt sources found to derive a deb-src entry from"; }
  log "added deb-src entry $f (derived from this machine's apt sources)"
  apt-get update -qq >&2 || log "WARNING: apt-get update reported errors"
  apt_updated=1
  apt-cache showsrc kubernetes 2>/dev/null | grep -q '^Package: kubernetes' ||
    die "apt has no source package 'kubernetes' even with $f"
}

binaries_cached() {
  local b
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
    [[ -x "$BIN_DIR/$b" ]] || return 1
  done
  [[ -f "$BIN_DIR/.complete" ]]
}

k8s_source_dir() {
  local d
  d=$(find "$K8S_CACHE/src" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' 2>/dev/null | head -n1)
  [[ -n "$d" && -f "$d/debian/rules" ]] && { echo "$d"; return 0; }
  return 1
}

fetch_k8s_source() {
  local d
  if d=$(k8s_source_dir); then echo "$d"; return 0; fi
  apt_install dpkg-dev
  ensure_deb_src
  mkdir -p "$K8S_CACHE/src"
  log "apt-get source kubernetes"
  (cd "$K8S_CACHE/src" && apt-get source -qq kubernetes >&2)
  k8s_source_dir || die "apt-get source kubernetes produced no source tree"
}

build_binaries() {
  if binaries_cached; then
    log "using cached Kubernetes binaries in $BIN_DIR"
    return 0
  fi
  apt_install "${BUILD_PACKAGES[@]}"
  local src t0
  src=$(fetch_k8s_source)
  t0=$(now)
  # Fact 1: vendored reflect2 v1.0.1 makes kube-apiserver SIGSEGV at random
  # (UnsafeMapType.UnsafeIterate) when built with Go >= 1.18; use Debian's 1.0.2.
  local r2=/usr/share/gocode/src/github.com/modern-go/reflect2
  [[ -f "$r2/go_above_118.go" ]] || die "$r2/go_above_118.go missing (golang-github-modern-go-reflect2-dev)"
  rm -rf "$src/vendor/github.com/modern-go/reflect2"
  cp -r "$r2" "$src/vendor/github.com/modern-go/reflect2"
  rm -f "$src/vendor/github.com/modern-go/reflect2/go.mod"
  # GOPATH mode, as Debian's debian/rules builds it.
  mkdir -p "$src/.go/src/k8s.io"
  [[ -L "$src/.go/src/k8s.io/kubernetes" ]] || ln -s ../../.. "$src/.go/src/k8s.io/kubernetes"
  log "building Kubernetes $K8S_VERSION from $src (5-12 min on 2 cores; log: $K8S_CACHE/build.log)"
  if ! (cd "$src" && env GOPATH="$src/.go" CGO_ENABLED=0 PATH="/usr/lib/go/bin:$PATH" \
      make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubelet cmd/kube-proxy cmd/kubectl" \
      >"$K8S_CACHE/build.log" 2>&1); then
    tail -n 30 "$K8S_CACHE/build.log" >&2
    die "Kubernetes build failed (see $K8S_CACHE/build.log)"
  fi
  # Verify the fix landed: the Go >= 1.18 file of reflect2 is compiled in.
  grep -q 'go_above_118.go' "$src/_output/bin/kube-apiserver" ||
    die "kube-apiserver was not built with reflect2 >= 1.0.2 (go_above_118.go not in binary)"
  mkdir -p "$BIN_DIR"
  local b
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
    install -m 0755 "$src/_output/bin/$b" "$BIN_DIR/$b"
  done
  echo "built $(date -u +%FT%TZ) from $(basename "$src") in $(elapsed "$t0")s with $(go version)" >"$BIN_DIR/.complete"
  log "build done in $(elapsed "$t0")s; binaries cached in $BIN_DIR"
}

# ------------------------------------------------------------------ images ---
build_images() {
  mkdir -p "$IMAGE_DIR"
  if [[ ! -f "$IMAGE_DIR/pause.tar" ]]; then
    local src work
    src=$(fetch_k8s_source)
    work=$(mktemp -d)
    mkdir -p "$work/rootfs"
    # Fact 4: the pause image is just build/pause/linux/pause.c, static.
    gcc -Os -Wall -static -DVERSION=v3.4-kubetrain -o "$work/rootfs/pause" "$src/build/pause/linux/pause.c"
    strip "$work/rootfs/pause"
    python3 "$E2E_DIR/images/make_image.py" -t "$PAUSE_IMAGE" -o "$IMAGE_DIR/pause.tar" \
      --entrypoint /pause "$work/rootfs" >&2
    rm -rf "$work"
  fi
  if [[ ! -f "$IMAGE_DIR/smoke.tar" || "$E2E_DIR/images/build-smoke-rootfs.sh" -nt "$IMAGE_DIR/smoke.tar" ]]; then
    local work
    work=$(mktemp -d)
    bash "$E2E_DIR/images/build-smoke-rootfs.sh" "$work/rootfs" >&2
    python3 "$E2E_DIR/images/make_image.py" -t "$SMOKE_IMAGE" -o "$IMAGE_DIR/smoke.tar" \
      --cmd /bin/sh --expose 8080/tcp "$work/rootfs" >&2
    rm -rf "$work"
  fi
}

load_images() {
  local t
  for t in "$@"; do
    [[ -f "$t" ]] || die "no such image tarball: $t"
    ctr --address "$CTRD_SOCK" --namespace k8s.io images import "$t" >&2 ||
      die "ctr images import $t failed"
  done
}

# --------------------------------------------------------------- processes ---
# Start time (field 22 of /proc/PID/stat, after the ')' that ends comm); fails
# for a gone PID or a zombie (our daemons are reparented to PID 1, which may reap late).
proc_starttime() {
  local stat rest
  stat=$(<"/proc/$1/stat") 2>/dev/null || return 1
  rest=${stat##*) }
  # shellcheck disable=SC2086
  set -- $rest
  [[ "$1" != Z && "$1" != X ]] || return 1
  echo "${20}"
}

# start_proc NAME CMD... : runs CMD in its own session, logs to LOGS/NAME.log,
# records "PID STARTTIME" in RUN/NAME.
start_proc() {
  local name=$1; shift
  local pidfile="$RUN/$name.pid.tmp"
  rm -f "$pidfile"
  # shellcheck disable=SC2016  # $$ and $@ expand in the child shell
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  local i pid=""
  for ((i = 0; i < 200; i++)); do
    [[ -s "$pidfile" ]] && { pid=$(<"$pidfile"); break; }
    sleep 0.01
  done
  [[ -n "$pid" ]] || die "could not start $name"
  echo "$pid $(proc_starttime "$pid")" >"$RUN/$name"
  rm -f "$pidfile"
}

# proc_alive NAME: true if the recorded PID still runs with the recorded start time.
proc_alive() {
  local f="$RUN/$1" pid st cur
  [[ -f "$f" ]] || return 1
  read -r pid st <"$f" || return 1
  [[ -n "$pid" && -n "$st" ]] || return 1
  cur=$(proc_starttime "$pid") || return 1
  [[ "$cur" == "$st" ]]
}
proc_pid() { local pid _; read -r pid _ <"$RUN/$1"; echo "$pid"; }

# stop_proc NAME [TIMEOUT]: SIGTERM, then SIGKILL; only if PID and start time match.
stop_proc() {
  local name=$1 timeout=${2:-10} pid i t0
  [[ -f "$RUN/$name" ]] || return 0
  t0=$(now)
  if proc_alive "$name"; then
    pid=$(proc_pid "$name")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 20; i++)); do
      proc_alive "$name" || break
      sleep 0.05
    done
    if proc_alive "$name"; then
      log "$name ($pid) did not exit on SIGTERM; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 100; i++)); do proc_alive "$name" || break; sleep 0.05; done
    fi
    log "stopped $name ($pid) in $(elapsed "$t0")s"
  fi
  rm -f "$RUN/$name"
}

wait_for() { # wait_for DESCRIPTION TIMEOUT_S CMD...: poll CMD until it succeeds
  local what=$1 timeout=$2; shift 2
  local deadline
  deadline=$(($(date +%s) + timeout))
  until "$@" >/dev/null 2>&1; do
    (($(date +%s) < deadline)) || { log "timed out after ${timeout}s waiting for $what"; return 1; }
    sleep 0.1
  done
}

# ------------------------------------------------------------------ config ---
detect_node_ip() {
  if [[ -n "${KUBETRAIN_NODE_IP:-}" ]]; then echo "$KUBETRAIN_NODE_IP"; return; fi
  local dev ip
  dev=$(ip -4 route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit }}')
  if [[ -n "$dev" ]]; then
    ip=$(ip -4 -o addr show dev "$dev" scope global | awk '{split($4, a, "/"); print a[1]; exit}')
  fi
  if [[ -z "${ip:-}" ]]; then
    ip=$(ip -4 -o addr show scope global | awk '$2 != "'"$BRIDGE"'" {split($4, a, "/"); print a[1]; exit}')
  fi
  [[ -n "${ip:-}" ]] || die "no global IPv4 address found for the node; set KUBETRAIN_NODE_IP"
  echo "$ip"
}

gen_pki() {
  local node_ip=$1
  mkdir -p "$PKI"
  (
    cd "$PKI"
    openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
    openssl req -x509 -new -key ca.key -subj "/CN=kubetrain-ca" -days 3650 -out ca.crt \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
    # Service-account token signing key (RSA: what every client expects of RS256 JWTs).
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
  # In parallel; name CN O EKU SANs
  local pids=() p
  gen_cert apiserver kube-apiserver "" serverAuth \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN,DNS:localhost,IP:127.0.0.1,IP:$API_SVC_IP,IP:$node_ip" &
  pids+=($!)
  # Fact 5: the apiserver talks to the kubelet with a client cert from the cluster CA.
  gen_cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters clientAuth "" &
  pids+=($!)
  gen_cert admin kubetrain-admin system:masters clientAuth "" &
  pids+=($!)
  gen_cert controller-manager system:kube-controller-manager "" clientAuth "" &
  pids+=($!)
  gen_cert scheduler system:kube-scheduler "" clientAuth "" &
  pids+=($!)
  gen_cert kube-proxy system:kube-proxy "" clientAuth "" &
  pids+=($!)
  gen_cert kubelet-client "system:node:$NODE_NAME" system:nodes clientAuth "" &
  pids+=($!)
  gen_cert kubelet-server "system:node:$NODE_NAME" system:nodes serverAuth "DNS:$NODE_NAME,DNS:localhost,IP:$node_ip,IP:127.0.0.1" &
  pids+=($!)
  for p in "${pids[@]}"; do wait "$p" || die "certificate generation failed"; done
}

gen_cert() {
  local name=$1 cn=$2 org=$3 eku=$4 sans=$5 subj ext
  subj="/CN=$cn"
  [[ -n "$org" ]] && subj="/O=$org$subj"
  ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=$eku"
  [[ -n "$sans" ]] && ext+=$'\n'"subjectAltName=$sans"
  (
    cd "$PKI"
    openssl ecparam -name prime256v1 -genkey -noout -out "$name.key" 2>/dev/null
    openssl req -new -key "$name.key" -subj "$subj" 2>/dev/null |
      openssl x509 -req -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" -days 365 \
        -extfile <(printf '%s\n' "$ext") -out "$name.crt" 2>/dev/null
  )
}

write_kubeconfig() { # file user cert-name server
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kubetrain
  cluster:
    server: $4
    certificate-authority: $PKI/ca.crt
users:
- name: $2
  user:
    client-certificate: $PKI/$3.crt
    client-key: $PKI/$3.key
contexts:
- name: kubetrain
  context: {cluster: kubetrain, user: $2}
current-context: kubetrain
EOF
}

write_configs() {
  local node_ip=$1 api="https://127.0.0.1:$API_PORT"
  mkdir -p "$CLUSTER_DIR/config"
  write_kubeconfig "$KUBECONFIG_PATH" admin admin "$api"
  write_kubeconfig "$CLUSTER_DIR/config/controller-manager.kubeconfig" controller-manager controller-manager "$api"
  write_kubeconfig "$CLUSTER_DIR/config/scheduler.kubeconfig" scheduler scheduler "$api"
  write_kubeconfig "$CLUSTER_DIR/config/kubelet.kubeconfig" kubelet kubelet-client "$api"
  write_kubeconfig "$CLUSTER_DIR/config/kube-proxy.kubeconfig" kube-proxy kube-proxy "$api"
  cat >"$CLUSTER_DIR/env" <<EOF
export KUBECONFIG=$KUBECONFIG_PATH
export KUBETRAIN_API_SERVER=$api
export KUBETRAIN_CLUSTER_DIR=$CLUSTER_DIR
export PATH=$CLUSTER_DIR/bin:\$PATH
EOF
  mkdir -p "$CLUSTER_DIR/bin"
  ln -sf "$BIN_DIR/kubectl" "$CLUSTER_DIR/bin/kubectl"
}

write_node_configs() {
  local node_ip=$1
  mkdir -p "$CTRD" "$CNI_DIR/net.d" "$CNI_DIR/ipam" "$KUBELET_DIR" "$DNS_DIR/hosts.d"
  # Dedicated containerd: own root, state, socket, runc root, never the system one.
  cat >"$CTRD/config.toml" <<EOF
version = 2
root = "$CTRD/root"
state = "$CTRD/state"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$CTRD/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Fact 2: no CAP_SYS_RESOURCE here, so oom_score_adj cannot go below 0; CRI
  # asks -998 for sandboxes and runc then fails "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$RUNC_ROOT"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CNI_DIR/net.d"
    max_conf_num = 1
EOF
  # Pod network: one bridge, host-local IPAM on a private CIDR; no masquerade
  # (pods have no business leaving the machine), hairpin for pod->own Service.
  cat >"$CNI_DIR/net.d/10-kubetrain.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "kubetrain",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$CNI_DIR/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$POD_GATEWAY"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  # Pods get only the cluster DNS; no host search domains or upstream resolvers.
  printf 'nameserver %s\n' "$node_ip" >"$KUBELET_DIR/resolv.conf"
  cat >"$KUBELET_DIR/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $node_ip
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true, cacheTTL: 10s}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: Webhook
  webhook: {cacheAuthorizedTTL: 10s, cacheUnauthorizedTTL: 5s}
tlsCertFile: $PKI/kubelet-server.crt
tlsPrivateKeyFile: $PKI/kubelet-server.key
clusterDomain: $CLUSTER_DOMAIN
clusterDNS: [$DNS_SVC_IP]
resolvConf: $KUBELET_DIR/resolv.conf
cgroupDriver: cgroupfs
failSwapOn: false
# Fact 5: 1 s node status updates make the node Ready (and untainted) quickly.
nodeStatusUpdateFrequency: 1s
nodeStatusReportFrequency: 1s
syncFrequency: 10s
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
maxPods: 110
kubeAPIQPS: 50
kubeAPIBurst: 100
EOF
}

# ------------------------------------------------------------- host state ---
snapshot_host_state() {
  mkdir -p "$STATE"
  local s
  : >"$STATE/sysctls"
  for s in "${SYSCTLS[@]}"; do
    [[ -r "/proc/sys/$s" ]] && printf '%s %s\n' "$s" "$(cat "/proc/sys/$s")" >>"$STATE/sysctls"
  done
  local fam t
  for fam in iptables ip6tables; do
    command -v "$fam-save" >/dev/null || continue
    for t in filter nat mangle; do
      "$fam-save" -t "$t" 2>/dev/null | sed -n 's/^:\([^ ]*\) .*/\1/p' | sed "s/^/$fam $t /"
    done
  done >"$STATE/iptables-chains"
  [[ -d /sys/fs/cgroup/memory/kubepods || -d /sys/fs/cgroup/cpu/kubepods || -d /sys/fs/cgroup/unified/kubepods ]] ||
    touch "$STATE/own-kubepods-cgroup"
  [[ -d /var/log/pods ]] || touch "$STATE/own-var-log-pods"
  find /var/log/pods -mindepth 1 -maxdepth 1 >"$STATE/var-log-pods" 2>/dev/null || true
  [[ -d /var/log/containers ]] || touch "$STATE/own-var-log-containers"
  [[ -d /var/lib/cni ]] || touch "$STATE/own-var-lib-cni"
  [[ -d /run/containerd ]] || touch "$STATE/own-run-containerd"
}

setup_host_network() {
  # Service traffic is DNATed by the host and routed back onto the bridge.
  echo 1 >/proc/sys/net/ipv4/ip_forward
  # Pod -> Service -> pod on the same bridge: replies must pass iptables (conntrack)
  # to be un-DNATed. Needs br_netfilter; without it kube-proxy --masquerade-all
  # (SNAT to the bridge IP, so replies are routed) is the workaround.
  if [[ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ]]; then
    modprobe br_netfilter 2>/dev/null || true
  fi
  if [[ -w /proc/sys/net/bridge/bridge-nf-call-iptables ]]; then
    echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables
    MASQ_ALL=false
  else
    log "br_netfilter unavailable: kube-proxy runs with --masquerade-all"
    MASQ_ALL=true
  fi
  # Guard: forwarding is on now, so keep pod traffic on this machine.
  iptables -N KUBETRAIN-GUARD 2>/dev/null || iptables -F KUBETRAIN-GUARD
  iptables -A KUBETRAIN-GUARD -i "$BRIDGE" -o "$BRIDGE" -j RETURN
  iptables -A KUBETRAIN-GUARD -s "$POD_CIDR" ! -o "$BRIDGE" -j DROP
  iptables -A KUBETRAIN-GUARD -d "$POD_CIDR" ! -i "$BRIDGE" -j DROP
  iptables -C FORWARD -j KUBETRAIN-GUARD 2>/dev/null || iptables -I FORWARD 1 -j KUBETRAIN-GUARD
}

# Deletes the chains of one family/table that match ^(KUBE-|CNI-|KUBETRAIN-) and
# were not there before `up` (snapshot), with every rule that jumps to them.
cleanup_iptables() {
  local fam t chains c rules
  for fam in iptables ip6tables; do
    command -v "$fam-save" >/dev/null || continue
    for t in filter nat mangle; do
      chains=()
      while read -r c; do
        if [[ -f "$STATE/iptables-chains" ]] && grep -qxF "$fam $t $c" "$STATE/iptables-chains"; then continue; fi
        chains+=("$c")
      done < <("$fam-save" -t "$t" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\|CNI-[^ ]*\|KUBETRAIN-[^ ]*\) .*/\1/p')
      ((${#chains[@]})) || continue
      local alt
      alt=$(printf '%s|' "${chains[@]}"); alt=${alt%|}
      rules=$("$fam-save" -t "$t" | grep -E -- "^-A [^ ]+ .*-j ($alt)( |\$)" | sed 's/^-A /-D /' || true)
      {
        echo "*$t"
        [[ -n "$rules" ]] && echo "$rules"
        for c in "${chains[@]}"; do echo "-F $c"; done
        for c in "${chains[@]}"; do echo "-X $c"; done
        echo COMMIT
      } | "$fam-restore" --noflush || log "WARNING: $fam-restore cleanup of table $t failed"
    done
  done
}

restore_sysctls() {
  [[ -f "$STATE/sysctls" ]] || return 0
  local k v
  while read -r k v; do
    if [[ -w "/proc/sys/$k" ]]; then echo "$v" >"/proc/sys/$k" 2>/dev/null || true; fi
  done <"$STATE/sysctls"
}

unmount_under() { # unmount everything mounted at or below $1, deepest first
  local prefix=$1 m i
  for ((i = 0; i < 5; i++)); do
    mapfile -t mnts < <(awk -v p="$prefix" '$5 == p || index($5, p "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r)
    ((${#mnts[@]})) || return 0
    for m in "${mnts[@]}"; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
  done
  awk -v p="$prefix" '$5 == p || index($5, p "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo &&
    log "WARNING: mounts remain under $prefix"
  return 0
}

# --------------------------------------------------------------------- DNS ---
# Fact 3: Debian has no CoreDNS. dnsmasq serves cluster.local from a hosts file
# that this loop rewrites from Services and Endpoints. No upstream resolvers.
dns_sync_loop() {
  local api="https://127.0.0.1:$API_PORT" out="$DNS_DIR/hosts.d/cluster.hosts" tmp="$DNS_DIR/cluster.hosts.new"
  local curl_args=(-sf --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key")
  while [[ -d "$DNS_DIR" ]]; do
    if curl "${curl_args[@]}" "$api/api/v1/services" -o "$DNS_DIR/svc.json" &&
      curl "${curl_args[@]}" "$api/api/v1/endpoints" -o "$DNS_DIR/ep.json" &&
      jq -r -s --arg d "$CLUSTER_DOMAIN" '
        .[0].items as $svcs | .[1].items as $eps
        | ($eps | map({key: "\(.metadata.namespace)/\(.metadata.name)", value: .}) | from_entries) as $epmap
        | $svcs[]
        | "\(.metadata.name).\(.metadata.namespace).svc.\($d)" as $fqdn
        | if (.spec.clusterIP // "") != "" and .spec.clusterIP != "None" then
            "\(.spec.clusterIP) \($fqdn)"
          elif .spec.clusterIP == "None" then
            ($epmap["\(.metadata.namespace)/\(.metadata.name)"].subsets // [])[]
            | (.addresses // [])[]
            | "\(.ip) \($fqdn)", (select(.hostname) | "\(.ip) \(.hostname).\($fqdn)")
          else empty end' "$DNS_DIR/svc.json" "$DNS_DIR/ep.json" >"$tmp"; then
      if ! cmp -s "$tmp" "$out"; then mv "$tmp" "$out"; fi # dnsmasq --hostsdir reloads it
    fi
    sleep 1 &
    wait $! || true
  done
}

# ---------------------------------------------------------------------- up ---
component_list() { if [[ "$1" == control-plane-only ]]; then echo "${CP_COMPONENTS[@]}"; else echo "${FULL_COMPONENTS[@]}"; fi; }

# Fails early, naming the port, if something else already listens on one we need
# (e.g. a system etcd that a package's init script started).
check_ports() {
  local mode=$1 node_ip=$2 p busy=()
  local ports=("$ETCD_PORT" "$ETCD_PEER_PORT" "$API_PORT")
  [[ $mode == full ]] && ports+=(10250 10248 10256 10249)
  for p in "${ports[@]}"; do
    ss -Hltn "sport = :$p" 2>/dev/null | grep -q . && busy+=("tcp/$p")
  done
  if [[ $mode == full ]] && ss -Hlun "sport = :$DNS_PORT" 2>/dev/null | grep -qE "($node_ip|0\.0\.0\.0|\*):$DNS_PORT"; then
    busy+=("udp/$DNS_PORT")
  fi
  ((${#busy[@]} == 0)) || die "ports already in use: ${busy[*]} (another cluster or a system etcd/dnsmasq? see KUBETRAIN_*_PORT)"
}

api_listening() { curl -sk -o /dev/null --max-time 1 "https://127.0.0.1:$API_PORT/healthz"; }
api_healthy() { curl -sfk --max-time 2 "https://127.0.0.1:$API_PORT/readyz" 2>/dev/null | grep -qx ok; }

all_alive() {
  local mode=$1 c
  for c in $(component_list "$mode"); do proc_alive "$c" || return 1; done
}

kc() { "$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

node_ready() {
  local out
  out=$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status} {.spec.taints[*].key}' 2>/dev/null) || return 1
  [[ "$out" == "True "* && "$out" != *node.kubernetes.io/not-ready* ]]
}

default_sa_ready() {
  [[ -n "$(kc -n default get serviceaccount default -o jsonpath='{.secrets[0].name}' 2>/dev/null)" ]]
}

cmd_up() {
  local mode=full
  while (($#)); do
    case "$1" in
      --control-plane-only) mode=control-plane-only ;;
      --full) mode=full ;;
      *) die "unknown option to up: $1" ;;
    esac
    shift
  done
  need_root
  sanity_check_dir
  if [[ -f "$CLUSTER_DIR/mode" ]]; then
    local cur
    cur=$(<"$CLUSTER_DIR/mode")
    if [[ "$cur" == "$mode" ]] && all_alive "$mode" && api_healthy && { [[ $mode != full ]] || node_ready; }; then
      log "cluster already up ($mode)"
      echo "$KUBECONFIG_PATH"
      return 0
    fi
    log "existing cluster state ($cur) is not a healthy $mode cluster; tearing it down first"
    cmd_down
  elif [[ -d "$RUN" ]]; then
    cmd_down
  fi

  local t0 node_ip load_pid=""
  t0=$(now)
  if [[ $mode == full ]]; then apt_install "${CP_PACKAGES[@]}" "${FULL_PACKAGES[@]}"; else apt_install "${CP_PACKAGES[@]}"; fi
  build_binaries
  if [[ $mode == full ]]; then
    command -v python3 >/dev/null || apt_install python3
    build_images
  fi
  local tstart
  tstart=$(now)
  trap on_up_exit EXIT
  node_ip=$(detect_node_ip)
  check_ports "$mode" "$node_ip"
  log "starting $mode cluster in $CLUSTER_DIR (node IP $node_ip)"
  mkdir -p "$CLUSTER_DIR"
  find "$CLUSTER_DIR" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf --one-file-system {} +
  mkdir -p "$RUN" "$LOGS" "$STATE"
  for f in "$LOGS"/*.log; do [[ -f "$f" ]] && mv -f "$f" "$f.prev"; done
  echo "$mode" >"$CLUSTER_DIR/mode"
  echo "$node_ip" >"$STATE/node-ip"
  snapshot_host_state
  # etcd and containerd need no certificates: start them first, overlap the rest.
  start_proc etcd etcd --name kubetrain --data-dir "$CLUSTER_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "kubetrain=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls "" \
    --snapshot-count 10000 --quota-backend-bytes 2147483648 --log-level warn

  if [[ $mode == full ]]; then
    write_node_configs "$node_ip"
    start_proc containerd containerd --config "$CTRD/config.toml"
  fi

  gen_pki "$node_ip"
  write_configs "$node_ip"
  log "certificates and configs written after $(elapsed "$tstart")s"

  wait_for "etcd" 30 curl -sf "http://127.0.0.1:$ETCD_PORT/health" || die "etcd did not become healthy (see $LOGS/etcd.log)"
  log "etcd healthy after $(elapsed "$tstart")s"
  local admission=NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultStorageClass,DefaultTolerationSeconds,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ResourceQuota,NodeRestriction,Priority
  start_proc kube-apiserver "$BIN_DIR/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 0.0.0.0 --secure-port "$API_PORT" --insecure-port 0 --advertise-address "$node_ip" \
    --service-cluster-ip-range "$SERVICE_CIDR" --service-node-port-range 30000-32767 \
    --allow-privileged=true --authorization-mode Node,RBAC --enable-admission-plugins "$admission" \
    --client-ca-file "$PKI/ca.crt" --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-account-issuer "https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
    --profiling=false --event-ttl 1h --v 1

  if [[ $mode == full ]]; then
    wait_for "containerd" 30 ctr --address "$CTRD_SOCK" version || die "containerd did not start (see $LOGS/containerd.log)"
    load_images "$IMAGE_DIR/pause.tar" "$IMAGE_DIR/smoke.tar" &
    load_pid=$!
    setup_host_network
    # Fact 2 again: the kubelet and kube-proxy must not ask for a negative oom_score_adj.
    start_proc kubelet "$BIN_DIR/kubelet" \
      --config "$KUBELET_DIR/config.yaml" --kubeconfig "$CLUSTER_DIR/config/kubelet.kubeconfig" \
      --container-runtime remote --container-runtime-endpoint "unix://$CTRD_SOCK" \
      --runtime-request-timeout 2m --pod-infra-container-image "$PAUSE_IMAGE" \
      --hostname-override "$NODE_NAME" --node-ip "$node_ip" \
      --root-dir "$KUBELET_DIR" --cert-dir "$KUBELET_DIR/pki" --oom-score-adj=0 --v 1
    local proxy_extra=()
    [[ "${MASQ_ALL:-false}" == true ]] && proxy_extra+=(--masquerade-all)
    start_proc kube-proxy "$BIN_DIR/kube-proxy" \
      --kubeconfig "$CLUSTER_DIR/config/kube-proxy.kubeconfig" --hostname-override "$NODE_NAME" \
      --proxy-mode iptables --cluster-cidr "$POD_CIDR" --bind-address "$node_ip" \
      --oom-score-adj=0 --conntrack-max-per-core 0 --conntrack-tcp-timeout-established 0 \
      --conntrack-tcp-timeout-close-wait 0 --healthz-bind-address 127.0.0.1:10256 \
      --metrics-bind-address 127.0.0.1:10249 --profiling=false "${proxy_extra[@]}" --v 1
    start_proc dnsmasq dnsmasq --keep-in-foreground --conf-file=/dev/null --log-facility=- --pid-file= \
      --user=root --no-resolv --no-hosts --no-poll --bind-interfaces --listen-address "$node_ip" \
      --port "$DNS_PORT" --local="/$CLUSTER_DOMAIN/" --domain-needed --hostsdir "$DNS_DIR/hosts.d" --local-ttl 1
    start_proc dns-sync "$SELF" _dns-sync "$CLUSTER_DIR/" # (the argument only marks the process as ours)
  fi

  # Controller-manager and scheduler serve no port of their own (--secure-port 0:
  # with one they need RBAC bootstrapped first, and generate a cert, ~3 s); they
  # start once the apiserver answers and wait for its /healthz themselves (10 s).
  # Client QPS is raised: at the default 20 QPS the controller-manager takes ~5 s
  # just to start its controllers (each gets its own ServiceAccount token).
  wait_for "kube-apiserver to listen" "$WAIT_TIMEOUT" api_listening || die "kube-apiserver not listening (see $LOGS/kube-apiserver.log)"
  # The node lifecycle controller would taint and evict pods of nodes that the
  # tests fake in control-plane-only mode; it stays off there (override below).
  local controllers='*'
  [[ $mode == control-plane-only ]] && controllers='*,-nodelifecycle'
  controllers=${KUBETRAIN_CM_CONTROLLERS:-$controllers}
  start_proc kube-controller-manager "$BIN_DIR/kube-controller-manager" \
    --kubeconfig "$CLUSTER_DIR/config/controller-manager.kubeconfig" \
    --secure-port 0 --port 0 --leader-elect=false \
    --controllers "$controllers" --use-service-account-credentials=true \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" --cluster-name kubetrain \
    --node-monitor-period 1s --kube-api-qps 200 --kube-api-burst 400 --profiling=false --v 1
  if [[ $mode == full ]]; then
    start_proc kube-scheduler "$BIN_DIR/kube-scheduler" \
      --kubeconfig "$CLUSTER_DIR/config/scheduler.kubeconfig" \
      --secure-port 0 --port 0 --leader-elect=false --profiling=false --v 1
  fi
  wait_for "kube-apiserver /readyz" "$WAIT_TIMEOUT" api_healthy || die "kube-apiserver not ready (see $LOGS/kube-apiserver.log)"
  log "kube-apiserver ready after $(elapsed "$tstart")s"
  if [[ $mode == full ]]; then
    kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns, kubernetes.io/name: KubeDNS}}
spec:
  clusterIP: $DNS_SVC_IP
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: $DNS_PORT}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: $DNS_PORT}
---
apiVersion: v1
kind: Endpoints
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
subsets:
- addresses: [{ip: "$node_ip"}]
  ports:
  - {name: dns, port: $DNS_PORT, protocol: UDP}
  - {name: dns-tcp, port: $DNS_PORT, protocol: TCP}
EOF
    wait "$load_pid" || die "image import failed"
    wait_for "node $NODE_NAME Ready without not-ready taint" "$WAIT_TIMEOUT" node_ready ||
      die "node not Ready (see $LOGS/kubelet.log)"
    log "node $NODE_NAME Ready after $(elapsed "$tstart")s"
  fi
  wait_for "default ServiceAccount token" "$WAIT_TIMEOUT" default_sa_ready || die "default ServiceAccount has no token"
  all_alive "$mode" || { cmd_status >&2 || true; die "a component exited during startup"; }
  trap - EXIT
  log "cluster up ($mode) in $(elapsed "$tstart")s (total $(elapsed "$t0")s); KUBECONFIG=$KUBECONFIG_PATH"
  echo "$KUBECONFIG_PATH"
}

# A failed `up` tears down what it started (logs stay), unless KUBETRAIN_KEEP_ON_FAILURE=1.
on_up_exit() {
  local rc=$?
  ((rc)) || return 0
  if [[ "${KUBETRAIN_KEEP_ON_FAILURE:-0}" == 1 ]]; then
    log "up failed; KUBETRAIN_KEEP_ON_FAILURE=1, leaving the cluster as it is (run: $SELF down)"
  else
    log "up failed; tearing down (logs in $LOGS; KUBETRAIN_KEEP_ON_FAILURE=1 keeps the cluster)"
    cmd_down || true
  fi
  exit "$rc"
}

# -------------------------------------------------------------------- down ---
cmd_down() {
  need_root
  sanity_check_dir
  [[ -d "$CLUSTER_DIR" ]] || { log "nothing to do: $CLUSTER_DIR does not exist"; return 0; }
  log "stopping cluster in $CLUSTER_DIR"
  local c
  for c in dns-sync dnsmasq kube-proxy kubelet kube-scheduler kube-controller-manager; do stop_proc "$c" 10; done

  # Containers: kill every task of our containerd, then the runc leftovers and
  # shims that belong to our socket (never anything of another containerd).
  if proc_alive containerd; then
    local ns ids id
    for ns in $(ctr --address "$CTRD_SOCK" namespaces list -q 2>/dev/null); do
      ids=$(ctr --address "$CTRD_SOCK" -n "$ns" tasks list -q 2>/dev/null || true)
      for id in $ids; do ctr --address "$CTRD_SOCK" -n "$ns" tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1 || true; done
      for id in $ids; do ctr --address "$CTRD_SOCK" -n "$ns" tasks delete -f "$id" >/dev/null 2>&1 || true; done
    done
  fi
  stop_proc containerd 10
  if [[ -d "$RUNC_ROOT" ]] && command -v runc >/dev/null; then
    local rr
    for rr in "$RUNC_ROOT"/*/; do
      [[ -d "$rr" ]] || continue
      for id in $(runc --root "$rr" list -q 2>/dev/null); do runc --root "$rr" delete -f "$id" >/dev/null 2>&1 || true; done
    done
  fi
  local pid
  for pid in $(pgrep -f "containerd-shim.* -address $CTRD_SOCK( |\$)" 2>/dev/null || true); do
    kill -KILL "$pid" 2>/dev/null || true
  done
  stop_proc kube-apiserver 15
  stop_proc etcd 10
  # Anything else recorded (e.g. from a newer version of this script).
  for c in "$RUN"/*; do [[ -f "$c" ]] && stop_proc "$(basename "$c")" 5; done

  # Node-level state (iptables, the bridge, sysctls, pod logs, CNI results, cgroups) exists
  # only for a full cluster. A control-plane-only one made none of it, and must not undo a full
  # cluster's that runs beside it: its snapshot was taken while that one was up.
  local mode=full
  [[ -f "$CLUSTER_DIR/mode" ]] && mode=$(<"$CLUSTER_DIR/mode")
  if [[ $mode == full ]]; then
    # Network: iptables rules of kube-proxy/kubelet/CNI/guard, the bridge, veths.
    # kube-proxy --cleanup removes every KUBE- rule, so only when none existed before up.
    if [[ -x "$BIN_DIR/kube-proxy" && -f "$STATE/iptables-chains" ]] && command -v iptables >/dev/null &&
      ! grep -q ' KUBE-' "$STATE/iptables-chains"; then
      "$BIN_DIR/kube-proxy" --cleanup --proxy-mode iptables >>"$LOGS/kube-proxy-cleanup.log" 2>&1 || true
    fi
    [[ -f "$STATE/iptables-chains" ]] && command -v iptables >/dev/null && cleanup_iptables
    unmount_under "$CLUSTER_DIR"
    local dev
    for dev in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
      ip link del "$dev" 2>/dev/null || true
    done
    ip link show "$BRIDGE" >/dev/null 2>&1 && ip link del "$BRIDGE"
    restore_sysctls

    # Kubelet's cgroups, pod log dirs, CNI result cache: only what we created.
    if [[ -f "$STATE/var-log-pods" && -d /var/log/pods ]]; then
      local d
      while read -r d; do
        grep -qxF "$d" "$STATE/var-log-pods" || rm -rf "$d"
      done < <(find /var/log/pods -mindepth 1 -maxdepth 1)
    fi
    if [[ -d /var/log/containers ]]; then
      find /var/log/containers -maxdepth 1 -xtype l -delete 2>/dev/null || true
    fi
    if [[ -f "$STATE/own-var-log-pods" ]]; then rmdir /var/log/pods 2>/dev/null || true; fi
    if [[ -f "$STATE/own-var-log-containers" ]]; then rmdir /var/log/containers 2>/dev/null || true; fi
    rm -f /var/lib/cni/results/kubetrain-* 2>/dev/null || true
    if [[ -f "$STATE/own-var-lib-cni" ]]; then
      rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null || true
    fi
    if [[ -f "$STATE/own-run-containerd" ]]; then
      rmdir /run/containerd/s /run/containerd/runc/k8s.io /run/containerd/runc /run/containerd 2>/dev/null || true
    fi
    if [[ -f "$STATE/own-kubepods-cgroup" ]]; then
      local h
      for h in /sys/fs/cgroup/*/kubepods; do
        if [[ -d "$h" ]]; then find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
      done
    fi
  else
    unmount_under "$CLUSTER_DIR"
  fi

  if awk -v p="$CLUSTER_DIR" 'index($5, p "/") == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo; then
    log "WARNING: mounts remain under $CLUSTER_DIR; leaving its files in place"
  else
    find "$CLUSTER_DIR" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf --one-file-system {} +
  fi
  log "cluster down (logs kept in $LOGS)"
}

# ------------------------------------------------------------------ status ---
cmd_status() {
  sanity_check_dir
  if [[ ! -f "$CLUSTER_DIR/mode" ]]; then
    echo "no cluster in $CLUSTER_DIR"
    return 1
  fi
  local mode rc=0 c pid rss
  mode=$(<"$CLUSTER_DIR/mode")
  echo "cluster dir: $CLUSTER_DIR   mode: $mode"
  echo "KUBECONFIG=$KUBECONFIG_PATH   API server: https://127.0.0.1:$API_PORT"
  for c in $(component_list "$mode"); do
    if proc_alive "$c"; then
      pid=$(proc_pid "$c")
      rss=$(awk '/^VmRSS/ {printf "%d MiB", $2 / 1024}' "/proc/$pid/status" 2>/dev/null)
      printf '  %-24s running  pid %-7s rss %s\n' "$c" "$pid" "$rss"
    else
      printf '  %-24s NOT RUNNING\n' "$c"
      rc=1
    fi
  done
  if api_healthy; then echo "  API /readyz: ok"; else echo "  API /readyz: FAILING"; rc=1; fi
  if [[ $mode == full ]]; then
    if node_ready; then echo "  node $NODE_NAME: Ready"; else echo "  node $NODE_NAME: NOT Ready"; rc=1; fi
  fi
  local cp_rss=0
  for c in etcd kube-apiserver kube-controller-manager kube-scheduler; do
    proc_alive "$c" || continue
    pid=$(proc_pid "$c")
    cp_rss=$((cp_rss + $(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")))
  done
  echo "  control plane RSS (etcd+apiserver+controller-manager+scheduler): $((cp_rss / 1024)) MiB"
  return $rc
}

# ------------------------------------------------------------------- smoke ---
cmd_smoke() {
  [[ "$(cat "$CLUSTER_DIR/mode" 2>/dev/null)" == full ]] || die "smoke needs a full cluster: e2e/cluster.sh up"
  local ns=kubetrain-smoke t0 phase
  if kc get namespace "$ns" >/dev/null 2>&1; then
    kc delete namespace "$ns" --wait=false >/dev/null
    wait_for "old namespace $ns to go" 120 bash -c "! '$BIN_DIR/kubectl' --kubeconfig '$KUBECONFIG_PATH' get namespace $ns" || die "namespace $ns is stuck"
  fi
  kc create namespace "$ns" >/dev/null
  wait_for "ServiceAccount $ns/default token" 30 bash -c \
    "[[ -n \"\$('$BIN_DIR/kubectl' --kubeconfig '$KUBECONFIG_PATH' -n $ns get sa default -o jsonpath='{.secrets[0].name}')\" ]]" ||
    die "no ServiceAccount token in $ns"
  t0=$(now)
  kc -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  hostname: web-0
  subdomain: web-headless
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: $SMOKE_IMAGE
    imagePullPolicy: Never
    command: [httpd, -f, -v, -p, "8080", -h, /www]
    ports: [{containerPort: 8080, name: http}]
    readinessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web-headless}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 8080, targetPort: http}]
EOF
  wait_for "pod web Running" 120 bash -c "[[ \$('$BIN_DIR/kubectl' --kubeconfig '$KUBECONFIG_PATH' -n $ns get pod web -o jsonpath='{.status.phase}') == Running ]]" ||
    { smoke_diag "$ns"; die "smoke: pod web did not reach Running"; }
  local t_running
  t_running=$(elapsed "$t0")
  log "smoke: pod web Running ${t_running}s after create"
  local tc
  tc=$(now)
  kc -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: client
    image: $SMOKE_IMAGE
    imagePullPolicy: Never
    command:
    - sh
    - -c
    - |
      set -e
      # (Debian's static busybox wget segfaults on -T; timeout(1) bounds it instead.)
      cat /etc/resolv.conf
      fetch() { i=0; until out=\$(timeout 3 wget -q -O - "\$1"); do i=\$((i+1)); [ \$i -lt 30 ] || return 1; sleep 0.5; done; echo "GET \$1 -> \$out"; [ "\$out" = kubetrain-smoke-ok ]; }
      fetch http://web
      fetch http://web.$ns
      fetch http://web.$ns.svc
      fetch http://web.$ns.svc.$CLUSTER_DOMAIN
      fetch http://web-headless:8080
      fetch http://web-0.web-headless:8080
      nslookup kubernetes.default.svc.$CLUSTER_DOMAIN
      sa=/var/run/secrets/kubernetes.io/serviceaccount
      api=\$(timeout 5 wget -q -O - --no-check-certificate --header "Authorization: Bearer \$(cat \$sa/token)" https://kubernetes.default.svc/api)
      echo "GET https://kubernetes.default.svc/api with SA token -> \$api"
      echo "\$api" | grep -q '"kind": *"APIVersions"'
      echo SMOKE-CLIENT-OK
EOF
  local deadline=$(($(date +%s) + 120))
  while :; do
    phase=$(kc -n "$ns" get pod client -o jsonpath='{.status.phase}' 2>/dev/null || true)
    [[ "$phase" == Succeeded || "$phase" == Failed ]] && break
    (($(date +%s) < deadline)) || break
    sleep 0.2
  done
  local t_client
  t_client=$(elapsed "$tc")
  local logs
  logs=$(kc -n "$ns" logs client 2>&1 || true)
  printf '%s\n' "$logs" | sed 's/^/  client| /' >&2
  if [[ "$phase" != Succeeded ]] || ! grep -q SMOKE-CLIENT-OK <<<"$logs"; then
    smoke_diag "$ns"
    die "smoke: client pod phase '$phase' (it must reach the web pod through Service names)"
  fi
  # exec through apiserver -> kubelet -> containerd streaming.
  local ex
  ex=$(kc -n "$ns" exec web -- wget -q -O - http://127.0.0.1:8080/ 2>&1) || { smoke_diag "$ns"; die "smoke: kubectl exec failed: $ex"; }
  [[ "$ex" == kubetrain-smoke-ok ]] || die "smoke: kubectl exec returned '$ex'"
  kc delete namespace "$ns" --wait=false >/dev/null
  log "smoke: PASSED — web pod Running in ${t_running}s; client pod (DNS + Service + headless + SA token) Succeeded in ${t_client}s; kubectl logs/exec ok"
  echo "smoke passed: pod_running_s=$t_running client_succeeded_s=$t_client"
}

smoke_diag() {
  local ns=$1
  {
    kc -n "$ns" get pods,svc,endpoints -o wide
    kc -n "$ns" describe pods | tail -n 60
    kc -n "$ns" logs web --tail 20
    echo "--- dns hosts"; cat "$DNS_DIR/hosts.d/cluster.hosts" 2>/dev/null
  } >&2 2>&1 || true
}

# --------------------------------------------------------------- leftovers ---
# Lists anything a cluster could leave on the host; exit 1 if something is found.
cmd_leftovers() {
  sanity_check_dir
  local found=0 out
  # shellcheck disable=SC2009  # one pattern over full command lines
  # Every process of ours names the cluster dir in its arguments (other clusters,
  # with another KUBETRAIN_CLUSTER_DIR, may share the binaries and stay out of this).
  out=$(ps -eo pid=,args= | grep -F -- "$CLUSTER_DIR/" | grep -v -E 'grep -F|cluster.sh leftovers' || true)
  [[ -z "$out" ]] || { echo "processes:"; echo "$out"; found=1; }
  out=$(awk -v p="$CLUSTER_DIR" '$5 == p || index($5, p "/") == 1 { print $5 }' /proc/self/mountinfo)
  [[ -z "$out" ]] || { echo "mounts:"; echo "$out"; found=1; }
  local fam
  for fam in iptables ip6tables; do
    command -v "$fam-save" >/dev/null || continue
    out=$("$fam-save" 2>/dev/null | grep -E '^:(KUBE-|CNI-|KUBETRAIN-)|-j (KUBE-|CNI-|KUBETRAIN-)' || true)
    [[ -z "$out" ]] || { echo "$fam:"; echo "$out"; found=1; }
  done
  out=$(ip -o link show 2>/dev/null | grep -E "$BRIDGE|veth" || true)
  [[ -z "$out" ]] || { echo "links:"; echo "$out"; found=1; }
  out=$(ls -d /sys/fs/cgroup/*/kubepods /var/log/pods/* /var/lib/cni/results/kubetrain-* /run/containerd/s/* 2>/dev/null || true)
  [[ -z "$out" ]] || { echo "files:"; echo "$out"; found=1; }
  if ((found)); then return 1; fi
  echo "no leftovers: no cluster processes, mounts under $CLUSTER_DIR, KUBE-/CNI-/KUBETRAIN- iptables chains or rules, $BRIDGE/veth links, kubepods cgroups, pod logs"
}

# -------------------------------------------------------------------- main ---
usage() { sed -n '2,15p' "$SELF" | sed 's/^# \{0,1\}//'; }

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
      apt_install "${CP_PACKAGES[@]}" "${FULL_PACKAGES[@]}"
      command -v python3 >/dev/null || apt_install python3
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
{ main "$@"; exit; }
