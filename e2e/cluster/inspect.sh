# shellcheck shell=bash
# e2e/cluster/inspect.sh — `status` (is it up, and how big) and `leftovers` (did `down`
# leave anything on the host). Sourced by e2e/cluster.sh.

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

# Lists anything a cluster could leave on the host; exit 1 if something is found.
cmd_leftovers() {
  sanity_check_dir
  local found=0 out
  # Every process of ours names the cluster dir in its arguments (other clusters,
  # with another KUBETRAIN_CLUSTER_DIR, may share the binaries and stay out of this).
  # shellcheck disable=SC2009  # pgrep -f takes a regex; the dir must match as a plain string
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
