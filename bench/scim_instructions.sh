#!/usr/bin/env bash
# Server instructions per SCIM operation, counted by valgrind's callgrind:
# repeatable whatever else the machine does (the load figures of
# scim_load.sh move with the host). For each mode of examples/scim_load.rs,
# the server runs under callgrind twice on the same store, once for USERS
# operations and once for none; the difference divided by USERS is what one
# operation costs (start-up and shutdown cancel out).
#
#   bench/scim_instructions.sh                 # minimal and full creates, patches
#   CONV=/path/to/other/convergences bench/scim_instructions.sh
#
# Environment knobs: MODES ("minimal full patch"), USERS (1000), CLIENTS (4),
# PORT (3894), WORK (target/bench-instructions). Needs valgrind.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
MODES="${MODES:-minimal full patch}"
USERS="${USERS:-1000}"
CLIENTS="${CLIENTS:-4}"
PORT="${PORT:-3894}"
WORK="${WORK:-$REPO/target/bench-instructions}"
command -v valgrind >/dev/null || { echo "scim_instructions.sh: needs valgrind" >&2; exit 1; }

(cd "$REPO" && cargo build --release --quiet && cargo build --release --quiet --example scim_load)
CONV="${CONV:-$REPO/target/release/convergences}"
LOAD="$REPO/target/release/examples/scim_load"

rm -rf "$WORK" && mkdir -p "$WORK"
cat >"$WORK/base.ldif" <<'LDIF'
dn: dc=cig,dc=fr
objectClass: dcObject
objectClass: organization
dc: cig
o: CIG

dn: ou=organisations,dc=cig,dc=fr
objectClass: organizationalUnit
ou: organisations

dn: o=219400280,ou=organisations,dc=cig,dc=fr
objectClass: organization
objectClass: cigOrganisation
o: 219400280
cigSiren: 219400280
cigApplication: bip

dn: ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr
objectClass: organizationalUnit
ou: agents

dn: ou=applications,dc=cig,dc=fr
objectClass: organizationalUnit
ou: applications

dn: cn=bip,ou=applications,dc=cig,dc=fr
objectClass: groupOfNames
cn: bip
member:
LDIF
"$CONV" import --data "$WORK/base" "$WORK/base.ldif" >/dev/null
TOKEN="$("$CONV" token create --data "$WORK/base" --org 219400280 --name instructions | tail -1)"

# Total instructions of one server run doing `n` operations of `mode`.
count() {
    local mode=$1 n=$2 dir="$WORK/run-$1-$2"
    rm -rf "$dir" && cp -r "$WORK/base" "$dir"
    CONVERGENCES_LOG_OPERATIONS=false valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" \
        "$CONV" serve --data "$dir" --ldap 127.0.0.1:0 --ldaps 127.0.0.1:0 --scim 127.0.0.1:0 \
        --scim-http "127.0.0.1:$PORT" --console 127.0.0.1:0 --console-http 127.0.0.1:0 --no-demo >"$dir/server.log" 2>&1 &
    local pid=$!
    for _ in $(seq 1 600); do
        curl -s -o /dev/null "http://127.0.0.1:$PORT/scim/v2/ServiceProviderConfig" && break
        sleep 0.2
    done
    if [ "$n" -gt 0 ]; then
        "$LOAD" --url "http://127.0.0.1:$PORT/scim/v2" --token "$TOKEN" --users "$n" --clients "$CLIENTS" \
            --lookup-clients 0 --lookup-secs 0 --mode "$mode" --prefix "i$mode" >"$dir/load.txt"
    fi
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    # callgrind's summary line: "summary: <instructions>".
    awk '/^summary:/ {print $2}' "$dir/callgrind.out"*
}

for MODE in $MODES; do
    idle=$(count "$MODE" 0)
    busy=$(count "$MODE" "$USERS")
    ops=$USERS
    [ "$MODE" = patch ] && ops=$((USERS * 2))
    echo "$MODE: $(( (busy - idle) / USERS )) instructions per user ($USERS users$([ "$MODE" = patch ] && echo ', each created then patched'))"
done
