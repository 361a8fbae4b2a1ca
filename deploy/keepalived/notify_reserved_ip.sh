#!/bin/bash
# Example for a provider's reserved (floating) IP; not run by the tests.
#
# Where the provider, not ARP, decides which machine receives an address,
# keepalived still elects the active edge, and this notify script asks the
# provider's API to point the reserved IP at this machine when it becomes
# MASTER. The other edge needs to do nothing when it loses the address: the
# new MASTER's call moves it. Shown for DigitalOcean's reserved IPs; other
# providers have the same call (see docs/several-machines.md).
#
# In keepalived.conf, instead of notify_state.sh:
#     notify "/bin/bash /etc/keepalived/notify_reserved_ip.sh"
# keepalived appends TYPE NAME STATE PRIORITY.
#
# /etc/keepalived/reserved-ip.env (root, mode 600):
#     RESERVED_IP=203.0.113.10
#     API_TOKEN=...            a token that may assign reserved IPs
set -eu
state=${3:-}
[ "$state" = MASTER ] || exit 0

# shellcheck source=/dev/null
. /etc/keepalived/reserved-ip.env
# This machine's id, from the provider's metadata service.
droplet_id=$(curl -fsS --max-time 2 http://169.254.169.254/metadata/v1/id)

for attempt in 1 2 3 4 5; do
  if curl -fsS --max-time 5 -X POST \
       -H "Authorization: Bearer $API_TOKEN" -H "Content-Type: application/json" \
       -d "{\"type\": \"assign\", \"droplet_id\": $droplet_id}" \
       "https://api.digitalocean.com/v2/reserved_ips/$RESERVED_IP/actions" >/dev/null; then
    logger -t twooter-edge "reserved IP $RESERVED_IP assigned to this machine ($droplet_id)"
    exit 0
  fi
  sleep "$attempt"
done
logger -t twooter-edge "could not assign reserved IP $RESERVED_IP to this machine ($droplet_id)"
exit 1
