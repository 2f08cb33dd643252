# shellcheck shell=bash
# e2e/cluster/pki.sh — the cluster's CA, the certificates of every component (openssl,
# EC P-256; RSA for the service-account signing key) and the kubeconfigs that use them.
# Sourced by e2e/cluster.sh.

# gen_pki NODE_IP: a new CA and every certificate, in $PKI.
gen_pki() {
  local node_ip=$1
  mkdir -p "$PKI"
  (
    cd "$PKI" || exit
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
  # kubectl logs/exec/port-forward go from the apiserver to the kubelet, which accepts
  # only a client certificate signed by the cluster CA (and serves one of its own from
  # it: kubelet-server below).
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

# gen_cert NAME CN ORG EKU SANS: $PKI/NAME.key and NAME.crt, signed by the cluster CA.
gen_cert() {
  local name=$1 cn=$2 org=$3 eku=$4 sans=$5 subj ext
  subj="/CN=$cn"
  [[ -n "$org" ]] && subj="/O=$org$subj"
  ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=$eku"
  [[ -n "$sans" ]] && ext+=$'\n'"subjectAltName=$sans"
  (
    cd "$PKI" || exit
    openssl ecparam -name prime256v1 -genkey -noout -out "$name.key" 2>/dev/null
    openssl req -new -key "$name.key" -subj "$subj" 2>/dev/null |
      openssl x509 -req -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" -days 365 \
        -extfile <(printf '%s\n' "$ext") -out "$name.crt" 2>/dev/null
  )
}

write_kubeconfig() { # FILE USER CERT-NAME SERVER
  render kubeconfig.yaml USER_NAME="$2" CERT="$3" SERVER="$4" >"$1"
}

# write_configs: the kubeconfigs of the admin and of every component, the `env` file,
# and $CLUSTER_DIR/bin/kubectl.
write_configs() {
  local api="https://127.0.0.1:$API_PORT"
  mkdir -p "$CLUSTER_DIR/config"
  write_kubeconfig "$KUBECONFIG_PATH" admin admin "$api"
  write_kubeconfig "$CLUSTER_DIR/config/controller-manager.kubeconfig" controller-manager controller-manager "$api"
  write_kubeconfig "$CLUSTER_DIR/config/scheduler.kubeconfig" scheduler scheduler "$api"
  write_kubeconfig "$CLUSTER_DIR/config/kubelet.kubeconfig" kubelet kubelet-client "$api"
  write_kubeconfig "$CLUSTER_DIR/config/kube-proxy.kubeconfig" kube-proxy kube-proxy "$api"
  render cluster.env SERVER="$api" >"$CLUSTER_DIR/env"
  mkdir -p "$CLUSTER_DIR/bin"
  ln -sf "$BIN_DIR/kubectl" "$CLUSTER_DIR/bin/kubectl"
}
