# shellcheck shell=bash
# e2e/cluster/dns.sh — cluster DNS without CoreDNS, which Debian does not package: dnsmasq
# on the node IP answers for cluster.local from a hosts directory that a loop (dns-sync,
# `cluster.sh _dns-sync`) rewrites once a second from the API's Services and Endpoints.
# No upstream resolvers: names outside the cluster fail at once. Sourced by e2e/cluster.sh.

# start_dns NODE_IP: dnsmasq and the dns-sync loop.
start_dns() {
  local node_ip=$1
  start_proc dnsmasq dnsmasq --keep-in-foreground --conf-file=/dev/null --log-facility=- --pid-file= \
    --user=root --no-resolv --no-hosts --no-poll --bind-interfaces --listen-address "$node_ip" \
    --port "$DNS_PORT" --local="/$CLUSTER_DOMAIN/" --domain-needed --hostsdir "$DNS_DIR/hosts.d" --local-ttl 1
  start_proc dns-sync "$SELF" _dns-sync "$CLUSTER_DIR/" # (the argument only marks the process as ours)
}

# apply_kube_dns NODE_IP: the kube-dns Service (at the kubelet's clusterDNS address) and
# its Endpoints (dnsmasq on the node), which pods reach through kube-proxy.
apply_kube_dns() {
  render kube-dns.yaml NODE_IP="$1" | kc apply -f - >/dev/null
}

# The dns-sync loop: dnsmasq --hostsdir re-reads a file of it when it changes.
dns_sync_loop() {
  local api="https://127.0.0.1:$API_PORT" out="$DNS_DIR/hosts.d/cluster.hosts" tmp="$DNS_DIR/cluster.hosts.new"
  local curl_args=(-sf --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key")
  while [[ -d "$DNS_DIR" ]]; do
    if curl "${curl_args[@]}" "$api/api/v1/services" -o "$DNS_DIR/svc.json" &&
      curl "${curl_args[@]}" "$api/api/v1/endpoints" -o "$DNS_DIR/ep.json" &&
      jq -r -s --arg d "$CLUSTER_DOMAIN" -f "$LIB_DIR/dns-hosts.jq" "$DNS_DIR/svc.json" "$DNS_DIR/ep.json" >"$tmp"; then
      if ! cmp -s "$tmp" "$out"; then mv "$tmp" "$out"; fi
    fi
    sleep 1 &
    wait $! || true
  done
}
