# shellcheck shell=bash
# e2e/cluster/smoke.sh — `smoke`: a pod behind Services, reached from another pod by
# Service names (DNS, kube-proxy, headless records), the API called with a ServiceAccount
# token, and kubectl logs/exec; with timings. Sourced by e2e/cluster.sh.

namespace_gone() { ! kc get namespace "$1"; }
sa_token_ready() { [[ -n "$(kc -n "$1" get sa default -o jsonpath='{.secrets[0].name}')" ]]; }
pod_running() { [[ "$(kc -n "$1" get pod "$2" -o jsonpath='{.status.phase}')" == Running ]]; }

cmd_smoke() {
  [[ "$(cat "$CLUSTER_DIR/mode" 2>/dev/null)" == full ]] || die "smoke needs a full cluster: e2e/cluster.sh up"
  local ns=kubetrain-smoke t0 phase
  if kc get namespace "$ns" >/dev/null 2>&1; then
    kc delete namespace "$ns" --wait=false >/dev/null
    wait_for "old namespace $ns to go" 120 namespace_gone "$ns" || die "namespace $ns is stuck"
  fi
  kc create namespace "$ns" >/dev/null
  wait_for "ServiceAccount $ns/default token" 30 sa_token_ready "$ns" || die "no ServiceAccount token in $ns"
  t0=$(now)
  render smoke-web.yaml | kc -n "$ns" apply -f - >/dev/null
  wait_for "pod web Running" 120 pod_running "$ns" web ||
    { smoke_diag "$ns"; die "smoke: pod web did not reach Running"; }
  local t_running
  t_running=$(elapsed "$t0")
  log "smoke: pod web Running ${t_running}s after create"
  local tc
  tc=$(now)
  render smoke-client.yaml NS="$ns" | kc -n "$ns" apply -f - >/dev/null
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
