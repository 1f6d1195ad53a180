#!/usr/bin/env bash
# SCIM load (issue 6): 10,000 user creations (no password) by 16 concurrent
# clients while two more time `userName eq` lookups, then lookups alone.
# Prints creates/s and lookup p50/p99 (examples/scim_load.rs checks every answer).
#
#   bench/scim_load.sh
#
# Environment knobs: USERS (10000), CLIENTS (16), LOOKUP_CLIENTS (2),
# LOOKUP_SECS (5), PORT (3893), WORK (target/bench-scim).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
USERS="${USERS:-10000}"
CLIENTS="${CLIENTS:-16}"
LOOKUP_CLIENTS="${LOOKUP_CLIENTS:-2}"
LOOKUP_SECS="${LOOKUP_SECS:-5}"
PORT="${PORT:-3893}"
WORK="${WORK:-$REPO/target/bench-scim}"

(cd "$REPO" && cargo build --release --quiet && cargo build --release --quiet --example scim_load)
CONV="${CONV:-$REPO/target/release/convergences}"
LOAD="$REPO/target/release/examples/scim_load"

rm -rf "$WORK" && mkdir -p "$WORK"
cat >"$WORK/skeleton.ldif" <<'LDIF'
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

dn: ou=groupes,o=219400280,ou=organisations,dc=cig,dc=fr
objectClass: organizationalUnit
ou: groupes

dn: ou=applications,dc=cig,dc=fr
objectClass: organizationalUnit
ou: applications

dn: cn=bip,ou=applications,dc=cig,dc=fr
objectClass: groupOfNames
cn: bip
member:
LDIF
"$CONV" import --data "$WORK/data" "$WORK/skeleton.ldif"
TOKEN="$("$CONV" token create --data "$WORK/data" --org 219400280 --name scim-load | tail -1)"
# The per-request log line is off, as in compare.sh (LOG_OPERATIONS=true to measure it).
CONVERGENCES_LOG_OPERATIONS="${LOG_OPERATIONS:-false}" \
"$CONV" serve --data "$WORK/data" --ldap 127.0.0.1:0 --ldaps 127.0.0.1:0 --scim 127.0.0.1:0 \
    --scim-http "127.0.0.1:$PORT" --no-demo >"$WORK/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/scim/v2/ServiceProviderConfig" && break
    sleep 0.1
done
"$LOAD" --url "http://127.0.0.1:$PORT/scim/v2" --token "$TOKEN" --users "$USERS" --clients "$CLIENTS" \
    --lookup-clients "$LOOKUP_CLIENTS" --lookup-secs "$LOOKUP_SECS"
echo "server RSS: $(awk '/^VmRSS:/ {print $2}' /proc/$PID/status) kB"
