# The cluster's DNS records as a hosts file for dnsmasq (e2e/cluster/dns.sh), from
# `jq -s` over the Service list and the Endpoints list of the API. $d is the cluster domain.
# One line per ClusterIP Service (svc.ns.svc.DOMAIN); for a headless Service one per ready
# endpoint address, plus hostname.svc.ns.svc.DOMAIN for pods with hostname + subdomain.
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
  else empty end
