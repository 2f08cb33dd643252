# shellcheck shell=bash
# e2e/cluster/node.sh — the one node of a full cluster: a private containerd, the kubelet,
# kube-proxy (iptables), the pod network (CNI bridge), the host state they change (sysctls,
# iptables, mounts, shared directories) and its undoing. Sourced by e2e/cluster.sh.

# Host sysctls that the kubelet, kube-proxy or the CNI bridge change; restored by down.
SYSCTLS=(net/ipv4/ip_forward net/ipv4/conf/all/route_localnet net/bridge/bridge-nf-call-iptables
  net/bridge/bridge-nf-call-ip6tables vm/overcommit_memory vm/panic_on_oom kernel/panic
  kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes)

detect_node_ip() {
  if [[ -n "${KUBETRAIN_NODE_IP:-}" ]]; then echo "$KUBETRAIN_NODE_IP"; return; fi
  local dev ip
  dev=$(ip -4 route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit }}')
  if [[ -n "$dev" ]]; then
    ip=$(ip -4 -o addr show dev "$dev" scope global | awk '{split($4, a, "/"); print a[1]; exit}')
  fi
  if [[ -z "${ip:-}" ]]; then
    ip=$(ip -4 -o addr show scope global | awk -v br="$BRIDGE" '$2 != br {split($4, a, "/"); print a[1]; exit}')
  fi
  [[ -n "${ip:-}" ]] || die "no global IPv4 address found for the node; set KUBETRAIN_NODE_IP"
  echo "$ip"
}

# write_node_configs NODE_IP: containerd's, the CNI network's and the kubelet's.
write_node_configs() {
  local node_ip=$1 runc
  runc=$(command -v runc) || die "runc not found"
  mkdir -p "$CTRD" "$CNI_DIR/net.d" "$CNI_DIR/ipam" "$KUBELET_DIR" "$DNS_DIR/hosts.d"
  # Dedicated containerd: own root, state, socket, runc root, never the system one.
  render containerd.toml RUNC_BIN="$runc" >"$CTRD/config.toml"
  # Pod network: one bridge, host-local IPAM on a private CIDR; no masquerade
  # (pods have no business leaving the machine), hairpin for pod->own Service.
  render 10-kubetrain.conflist >"$CNI_DIR/net.d/10-kubetrain.conflist"
  # Pods get only the cluster DNS; no host search domains or upstream resolvers.
  printf 'nameserver %s\n' "$node_ip" >"$KUBELET_DIR/resolv.conf"
  render kubelet.yaml NODE_IP="$node_ip" >"$KUBELET_DIR/config.yaml"
}

start_containerd() { start_proc containerd containerd --config "$CTRD/config.toml"; }
containerd_up() { ctr --address "$CTRD_SOCK" version; }

load_images() {
  local t
  for t in "$@"; do
    [[ -f "$t" ]] || die "no such image tarball: $t"
    ctr --address "$CTRD_SOCK" --namespace k8s.io images import "$t" >&2 ||
      die "ctr images import $t failed"
  done
}

# start_node_agents NODE_IP: the host network set up, then the kubelet and kube-proxy.
# Both run with --oom-score-adj=0: without CAP_SYS_RESOURCE (see templates/containerd.toml)
# the -999 they would ask for themselves fails.
start_node_agents() {
  local node_ip=$1 proxy_extra=()
  setup_host_network
  start_proc kubelet "$BIN_DIR/kubelet" \
    --config "$KUBELET_DIR/config.yaml" --kubeconfig "$CLUSTER_DIR/config/kubelet.kubeconfig" \
    --container-runtime remote --container-runtime-endpoint "unix://$CTRD_SOCK" \
    --runtime-request-timeout 2m --pod-infra-container-image "$PAUSE_IMAGE" \
    --hostname-override "$NODE_NAME" --node-ip "$node_ip" \
    --root-dir "$KUBELET_DIR" --cert-dir "$KUBELET_DIR/pki" --oom-score-adj=0 --v 1
  [[ "$MASQ_ALL" == true ]] && proxy_extra+=(--masquerade-all)
  start_proc kube-proxy "$BIN_DIR/kube-proxy" \
    --kubeconfig "$CLUSTER_DIR/config/kube-proxy.kubeconfig" --hostname-override "$NODE_NAME" \
    --proxy-mode iptables --cluster-cidr "$POD_CIDR" --bind-address "$node_ip" \
    --oom-score-adj=0 --conntrack-max-per-core 0 --conntrack-tcp-timeout-established 0 \
    --conntrack-tcp-timeout-close-wait 0 --healthz-bind-address 127.0.0.1:10256 \
    --metrics-bind-address 127.0.0.1:10249 --profiling=false "${proxy_extra[@]}" --v 1
}

node_ready() {
  local out
  out=$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status} {.spec.taints[*].key}' 2>/dev/null) || return 1
  [[ "$out" == "True "* && "$out" != *node.kubernetes.io/not-ready* ]]
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

# Sets MASQ_ALL (true or false) for kube-proxy's --masquerade-all.
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

# Kills every task of our containerd, then the runc leftovers and shims that belong
# to our socket (never anything of another containerd), then containerd.
stop_containers() {
  local ns ids id
  if proc_alive containerd; then
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
}

# Undoes what a full cluster changed on the host (after its processes are gone): iptables
# rules of kube-proxy/kubelet/CNI/the guard, mounts, the bridge and its veths, sysctls, pod
# logs, CNI results, cgroups; only what `up` created (see snapshot_host_state).
undo_host_state() {
  # kube-proxy --cleanup removes every KUBE- rule, so only when none existed before up.
  if [[ -x "$BIN_DIR/kube-proxy" && -f "$STATE/iptables-chains" ]] && command -v iptables >/dev/null &&
    ! grep -q ' KUBE-' "$STATE/iptables-chains"; then
    "$BIN_DIR/kube-proxy" --cleanup --proxy-mode iptables >>"$LOGS/kube-proxy-cleanup.log" 2>&1 || true
  fi
  if [[ -f "$STATE/iptables-chains" ]] && command -v iptables >/dev/null; then cleanup_iptables; fi
  unmount_under "$CLUSTER_DIR"
  local dev
  for dev in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link del "$dev" 2>/dev/null || true
  done
  if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE"; fi
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
  local prefix=$1 m i mnts
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
