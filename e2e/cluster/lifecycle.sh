# shellcheck shell=bash
# e2e/cluster/lifecycle.sh — `up` and `down`: the order in which the parts of a cluster
# start and stop. Sourced by e2e/cluster.sh.

CP_COMPONENTS=(etcd kube-apiserver kube-controller-manager)
FULL_COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy dnsmasq dns-sync)

component_list() { if [[ "$1" == control-plane-only ]]; then echo "${CP_COMPONENTS[@]}"; else echo "${FULL_COMPONENTS[@]}"; fi; }

all_alive() {
  local mode=$1 c
  for c in $(component_list "$mode"); do proc_alive "$c" || return 1; done
}

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

# ---------------------------------------------------------------------- up ---
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
  install_packages "$mode"
  build_binaries
  if [[ $mode == full ]]; then build_images; fi
  local tstart
  tstart=$(now)
  trap on_up_exit EXIT
  node_ip=$(detect_node_ip)
  check_ports "$mode" "$node_ip"
  log "starting $mode cluster in $CLUSTER_DIR (node IP $node_ip)"
  mkdir -p "$CLUSTER_DIR"
  find "$CLUSTER_DIR" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf --one-file-system {} +
  mkdir -p "$RUN" "$LOGS" "$STATE"
  local f
  for f in "$LOGS"/*.log; do if [[ -f "$f" ]]; then mv -f "$f" "$f.prev"; fi; done
  echo "$mode" >"$CLUSTER_DIR/mode"
  echo "$node_ip" >"$STATE/node-ip"
  snapshot_host_state
  # etcd and containerd need no certificates: start them first, overlap the rest.
  start_etcd
  if [[ $mode == full ]]; then
    write_node_configs "$node_ip"
    start_containerd
  fi

  gen_pki "$node_ip"
  write_configs
  log "certificates and configs written after $(elapsed "$tstart")s"

  wait_for "etcd" 30 etcd_healthy || die "etcd did not become healthy (see $LOGS/etcd.log)"
  log "etcd healthy after $(elapsed "$tstart")s"
  start_apiserver "$node_ip"

  if [[ $mode == full ]]; then
    wait_for "containerd" 30 containerd_up || die "containerd did not start (see $LOGS/containerd.log)"
    load_images "$IMAGE_DIR/pause.tar" "$IMAGE_DIR/smoke.tar" &
    load_pid=$!
    start_node_agents "$node_ip"
    start_dns "$node_ip"
  fi

  wait_for "kube-apiserver to listen" "$WAIT_TIMEOUT" api_listening || die "kube-apiserver not listening (see $LOGS/kube-apiserver.log)"
  start_controllers "$mode"
  wait_for "kube-apiserver /readyz" "$WAIT_TIMEOUT" api_healthy || die "kube-apiserver not ready (see $LOGS/kube-apiserver.log)"
  log "kube-apiserver ready after $(elapsed "$tstart")s"
  if [[ $mode == full ]]; then
    apply_kube_dns "$node_ip"
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
  stop_containers
  stop_proc kube-apiserver 15
  stop_proc etcd 10
  # Anything else recorded (e.g. from a newer version of this script).
  for c in "$RUN"/*; do if [[ -f "$c" ]]; then stop_proc "$(basename "$c")" 5; fi; done

  # Node-level state (iptables, the bridge, sysctls, pod logs, CNI results, cgroups) exists
  # only for a full cluster. A control-plane-only one made none of it, and must not undo a full
  # cluster's that runs beside it: its snapshot was taken while that one was up.
  local mode=full
  [[ -f "$CLUSTER_DIR/mode" ]] && mode=$(<"$CLUSTER_DIR/mode")
  if [[ $mode == full ]]; then
    undo_host_state
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
