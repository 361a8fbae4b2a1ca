#!/bin/bash
# keepalived notify script: keeps the edge's current VRRP state in a file,
# for the operator and for `twooter cluster status`.
#   notify_state.sh STATE_FILE   (keepalived appends: TYPE NAME STATE PRIORITY)
set -eu
file=$1
state=${4:-UNKNOWN}
printf '%s\n' "$state" > "$file.new"
mv -f "$file.new" "$file"
