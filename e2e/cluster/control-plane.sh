# shellcheck shell=bash
# e2e/cluster/control-plane.sh — etcd (Debian's), kube-apiserver, kube-controller-manager and
# kube-scheduler (built by build.sh), and the checks that they answer. Sourced by e2e/cluster.sh.

start_etcd() {
  start_proc etcd etcd --name kubetrain --data-dir "$CLUSTER_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "kubetrain=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls "" \
    --snapshot-count 10000 --quota-backend-bytes 2147483648 --log-level warn
}

etcd_healthy() { curl -sf "http://127.0.0.1:$ETCD_PORT/health"; }

# start_apiserver NODE_IP. It reaches the kubelet by the node's InternalIP, with the
# client certificate pki.sh made for that, and checks the kubelet's serving certificate
# against the cluster CA.
start_apiserver() {
  local node_ip=$1
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
}

# start_controllers MODE: the controller-manager, and in a full cluster the scheduler.
# Neither serves a port of its own (--secure-port 0: with one they need RBAC bootstrapped
# first, and generate a cert, ~3 s); they start once the apiserver answers and wait for
# its /healthz themselves (10 s). Client QPS is raised: at the default 20 QPS the
# controller-manager takes ~5 s just to start its controllers (each gets its own
# ServiceAccount token). --node-monitor-period 1s, with the kubelet's 1 s status updates,
# takes the node's not-ready taint off soon after it is Ready.
start_controllers() {
  local mode=$1
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
}

api_listening() { curl -sk -o /dev/null --max-time 1 "https://127.0.0.1:$API_PORT/healthz"; }
api_healthy() { curl -sfk --max-time 2 "https://127.0.0.1:$API_PORT/readyz" 2>/dev/null | grep -qx ok; }

default_sa_ready() {
  [[ -n "$(kc -n default get serviceaccount default -o jsonpath='{.secrets[0].name}' 2>/dev/null)" ]]
}
