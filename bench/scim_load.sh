#!/usr/bin/env bash
# SCIM load: user creations (no password) by 16 concurrent clients while two
# more time `userName eq` lookups, then lookups alone; in each mode:
#   minimal  a name and an email (issue 6's figure)
#   full     every attribute of RFC 7643 §4.1 and the enterprise extension,
#            a manager included (ENTITLEMENT=bip grants an application too)
#   patch    minimal users, then one PATCH each (title, work phone, work email)
# Prints, per mode, operations/s, p50/p99 and the server's CPU per operation
# (examples/scim_load.rs checks every answer). Each mode starts from the same
# store: the nearly empty skeleton, or with DIRECTORY=100k the 100,000-agent
# directory of ../shared/bench (gen_ldif.py), whose first organisation the
# users are created in.
#
#   bench/scim_load.sh
#   DIRECTORY=100k MODES="minimal full" bench/scim_load.sh
#
# Environment knobs: MODES ("minimal full patch"), DIRECTORY (skeleton),
# USERS (10000), CLIENTS (16), LOOKUP_CLIENTS (2), LOOKUP_SECS (5), PORT (3893),
# ENTITLEMENT (none), WORK (target/bench-scim), BENCH_KIT (../shared/bench).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
KIT="${BENCH_KIT:-$REPO/../shared/bench}"
MODES="${MODES:-minimal full patch}"
DIRECTORY="${DIRECTORY:-skeleton}"
USERS="${USERS:-10000}"
CLIENTS="${CLIENTS:-16}"
LOOKUP_CLIENTS="${LOOKUP_CLIENTS:-2}"
LOOKUP_SECS="${LOOKUP_SECS:-5}"
PORT="${PORT:-3893}"
WORK="${WORK:-$REPO/target/bench-scim}"

(cd "$REPO" && cargo build --release --quiet && cargo build --release --quiet --example scim_load)
CONV="${CONV:-$REPO/target/release/convergences}"
LOAD="$REPO/target/release/examples/scim_load"

rm -rf "$WORK/base" && mkdir -p "$WORK/base"
case "$DIRECTORY" in
skeleton)
    ORG=219400280
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
    ;;
100k)
    [ -r "$KIT/gen_ldif.py" ] || { echo "scim_load.sh: no benchmark kit at $KIT (set BENCH_KIT)" >&2; exit 1; }
    if [ ! -r "$WORK/cig-100k.ldif" ]; then
        python3 "$KIT/gen_ldif.py" --agents 100000 --orgs 300 --out "$WORK/cig-100k.ldif" >/dev/null
    fi
    cp "$WORK/cig-100k.ldif" "$WORK/base.ldif"
    # The first organisation of the manifest: o=<SIREN> above its ou=agents.
    ORG="$(grep -v '^#' "$WORK/cig-100k.orgs.tsv" | head -1 | cut -f1 | sed -e 's/^ou=agents,o=//' -e 's/,.*//')"
    ;;
*) echo "scim_load.sh: DIRECTORY is skeleton or 100k" >&2; exit 2 ;;
esac
echo "== importing the $DIRECTORY directory (users go into o=$ORG)"
"$CONV" import --data "$WORK/base/data" "$WORK/base.ldif" >/dev/null
TOKEN="$("$CONV" token create --data "$WORK/base/data" --org "$ORG" --name scim-load | tail -1)"

for MODE in $MODES; do
    rm -rf "$WORK/$MODE" && cp -r "$WORK/base" "$WORK/$MODE"
    # The per-request log line is off, as in compare.sh (LOG_OPERATIONS=true to measure it).
    CONVERGENCES_LOG_OPERATIONS="${LOG_OPERATIONS:-false}" \
    "$CONV" serve --data "$WORK/$MODE/data" --ldap 127.0.0.1:0 --ldaps 127.0.0.1:0 --scim 127.0.0.1:0 \
        --scim-http "127.0.0.1:$PORT" --console 127.0.0.1:0 --console-http 127.0.0.1:0 --no-demo >"$WORK/$MODE/server.log" 2>&1 &
    PID=$!
    trap 'kill $PID 2>/dev/null || true' EXIT
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$PORT/scim/v2/ServiceProviderConfig" && break
        sleep 0.1
    done
    EXTRA=()
    [ -n "${ENTITLEMENT:-}" ] && EXTRA+=(--entitlement "$ENTITLEMENT")
    echo "== $MODE ($DIRECTORY)"
    "$LOAD" --url "http://127.0.0.1:$PORT/scim/v2" --token "$TOKEN" --users "$USERS" --clients "$CLIENTS" \
        --lookup-clients "$LOOKUP_CLIENTS" --lookup-secs "$LOOKUP_SECS" --mode "$MODE" --server-pid "$PID" \
        ${EXTRA[@]+"${EXTRA[@]}"} | tr ' ' '\n' | sed 's/^/  /'
    echo "  server_rss_kb=$(awk '/^VmRSS:/ {print $2}' /proc/$PID/status)"
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
done
