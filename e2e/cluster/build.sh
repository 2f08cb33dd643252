# shellcheck shell=bash
# e2e/cluster/build.sh — everything before a cluster can start: the Debian packages, the
# Kubernetes binaries built from Debian's source package (cached in $BIN_DIR), and the pause
# and smoke images (cached in $IMAGE_DIR). Sourced by e2e/cluster.sh.

CP_PACKAGES=(etcd-server openssl curl jq iproute2 procps util-linux gettext-base)
FULL_PACKAGES=(containerd runc containernetworking-plugins iptables conntrack dnsmasq-base
  busybox-static gcc libc6-dev kmod)
BUILD_PACKAGES=(dpkg-dev golang-go rsync jq make binutils golang-github-modern-go-reflect2-dev)
K8S_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

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

# install_packages MODE: what a cluster of MODE (full or control-plane-only) runs on.
install_packages() {
  if [[ $1 == full ]]; then
    apt_install "${CP_PACKAGES[@]}" "${FULL_PACKAGES[@]}"
    command -v python3 >/dev/null || apt_install python3   # e2e/images/make_image.py
  else
    apt_install "${CP_PACKAGES[@]}"
  fi
}

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
  for b in "${K8S_BINARIES[@]}"; do
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
  # The vendored github.com/modern-go/reflect2 v1.0.1 makes kube-apiserver SIGSEGV at
  # random (UnsafeMapType.UnsafeIterate) when built with Go >= 1.18, and Debian's Go is
  # newer: build with Debian's golang-github-modern-go-reflect2-dev (1.0.2) instead.
  local r2=/usr/share/gocode/src/github.com/modern-go/reflect2
  [[ -f "$r2/go_above_118.go" ]] || die "$r2/go_above_118.go missing (golang-github-modern-go-reflect2-dev)"
  rm -rf "$src/vendor/github.com/modern-go/reflect2"
  cp -r "$r2" "$src/vendor/github.com/modern-go/reflect2"
  rm -f "$src/vendor/github.com/modern-go/reflect2/go.mod"
  # GOPATH mode, as Debian's debian/rules builds it.
  mkdir -p "$src/.go/src/k8s.io"
  [[ -L "$src/.go/src/k8s.io/kubernetes" ]] || ln -s ../../.. "$src/.go/src/k8s.io/kubernetes"
  log "building Kubernetes $K8S_VERSION from $src (5-12 min on 2 cores; log: $K8S_CACHE/build.log)"
  local what
  what=$(printf 'cmd/%s ' "${K8S_BINARIES[@]}")
  if ! (cd "$src" && env GOPATH="$src/.go" CGO_ENABLED=0 PATH="/usr/lib/go/bin:$PATH" \
      make WHAT="${what% }" >"$K8S_CACHE/build.log" 2>&1); then
    tail -n 30 "$K8S_CACHE/build.log" >&2
    die "Kubernetes build failed (see $K8S_CACHE/build.log)"
  fi
  # Verify the reflect2 replacement landed: its Go >= 1.18 file is compiled in.
  grep -q 'go_above_118.go' "$src/_output/bin/kube-apiserver" ||
    die "kube-apiserver was not built with reflect2 >= 1.0.2 (go_above_118.go not in binary)"
  mkdir -p "$BIN_DIR"
  local b
  for b in "${K8S_BINARIES[@]}"; do
    install -m 0755 "$src/_output/bin/$b" "$BIN_DIR/$b"
  done
  echo "built $(date -u +%FT%TZ) from $(basename "$src") in $(elapsed "$t0")s with $(go version)" >"$BIN_DIR/.complete"
  log "build done in $(elapsed "$t0")s; binaries cached in $BIN_DIR"
}

# ------------------------------------------------------------------ images ---
# No registry and no image builder here: images are docker-archive tarballs that
# e2e/images/make_image.py writes from a rootfs directory.
build_images() {
  mkdir -p "$IMAGE_DIR"
  local work
  if [[ ! -f "$IMAGE_DIR/pause.tar" ]]; then
    local src
    src=$(fetch_k8s_source)
    work=$(mktemp -d)
    mkdir -p "$work/rootfs"
    # The pause image is nothing but Kubernetes' build/pause/linux/pause.c, built static.
    gcc -Os -Wall -static -DVERSION=v3.4-kubetrain -o "$work/rootfs/pause" "$src/build/pause/linux/pause.c"
    strip "$work/rootfs/pause"
    python3 "$E2E_DIR/images/make_image.py" -t "$PAUSE_IMAGE" -o "$IMAGE_DIR/pause.tar" \
      --entrypoint /pause "$work/rootfs" >&2
    rm -rf "$work"
  fi
  if [[ ! -f "$IMAGE_DIR/smoke.tar" || "$E2E_DIR/images/build-smoke-rootfs.sh" -nt "$IMAGE_DIR/smoke.tar" ]]; then
    work=$(mktemp -d)
    bash "$E2E_DIR/images/build-smoke-rootfs.sh" "$work/rootfs" >&2
    python3 "$E2E_DIR/images/make_image.py" -t "$SMOKE_IMAGE" -o "$IMAGE_DIR/smoke.tar" \
      --cmd /bin/sh --expose 8080/tcp "$work/rootfs" >&2
    rm -rf "$work"
  fi
}
