#!/bin/bash
# keepalived's check of its own HAProxy: exit 0 when HAProxy answers its
# monitor URI with 200, anything else otherwise.
#   check_haproxy.sh [HOST [PORT [PATH]]]   (default 127.0.0.1 8405 /healthz)
# Plain bash (/dev/tcp), so that an edge needs no HTTP client installed.
set -u
host=${1:-127.0.0.1}
port=${2:-8405}
path=${3:-/healthz}
exec 3<>"/dev/tcp/$host/$port" 2>/dev/null || exit 1
printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$host" >&3
IFS= read -r -t 2 status <&3 || exit 1
case $status in
  "HTTP/1."?" 200 "*) exit 0 ;;
esac
exit 1
