#!/usr/bin/env bash
# What limited searches cost on a directory that bench/compare.sh imported:
# a paged search (RFC 2696) below the suffix, its first pages and the whole
# directory page after page; a size-limited search over a long index list
# (objectClass=inetOrgPerson, -z 50); and a SCIM list, one page of 100 of
# the largest organisation's agents, and deeper in it. Uses python3's ldap3,
# ldapsearch and curl. Run it once per binary to compare two (CONV=).
#
#   WORK      where compare.sh left its store and manifest  default target/bench
#   AGENTS    the directory's size, to find the manifest      default 100000
#   CONV      the binary                                      default target/release/convergences
#   CACHE_MB  redb's cache                                    default 384
#   PAGE      page size of the whole walk                     default 1000
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
WORK="${WORK:-$REPO/target/bench}"
AGENTS="${AGENTS:-100000}"
CONV="${CONV:-$REPO/target/release/convergences}"
CACHE_MB="${CACHE_MB:-384}"
PAGE="${PAGE:-1000}"
LDAP_PORT="${LDAP_PORT:-3897}"
SCIM_PORT="${SCIM_PORT:-3896}"
DATA="$WORK/convergences-data"
MANIFEST="$WORK/cig-$AGENTS"
[ -d "$DATA" ] || { echo "paged.sh: no store at $DATA (run bench/compare.sh with the same WORK first)" >&2; exit 1; }
python3 -c 'import ldap3' 2>/dev/null || { echo "paged.sh: needs python3's ldap3 (pip install ldap3)" >&2; exit 1; }

# The largest organisation, and a SCIM token bound to it (written before the server starts).
ORG="$(awk -F'\t' '!/^#/ && $2 > max { max = $2; dn = $1 } END { print dn }' "$MANIFEST.orgs.tsv" | sed -e 's/^ou=agents,o=//' -e 's/,.*//')"
TOKEN="$("$CONV" token create --data "$DATA" --org "$ORG" --name paged-bench | tail -1)"

CONVERGENCES_ACCESS_POLICY=baseline CONVERGENCES_PASSWORD_REHASH=false CONVERGENCES_CACHE_MB="$CACHE_MB" \
CONVERGENCES_LOG_OPERATIONS=false \
    "$CONV" serve --data "$DATA" --ldap "127.0.0.1:$LDAP_PORT" --ldaps 127.0.0.1:0 --scim 127.0.0.1:0 \
    --scim-http "127.0.0.1:$SCIM_PORT" --console 127.0.0.1:0 --console-http 127.0.0.1:0 --no-demo \
    >"$WORK/paged-server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
URL="ldap://127.0.0.1:$LDAP_PORT"
for _ in $(seq 1 600); do ldapsearch -x -H "$URL" -b "" -s base >/dev/null 2>&1 && break; sleep 0.05; done
# The start's read-ahead and cache walk (README, Operating it) are over by then.
sleep 15

SVC=(cn=svc-annuaire,ou=services,dc=cig,dc=fr secret-svc-annuaire)
walk() { # page-size pages
    python3 - "$URL" "${SVC[@]}" "$1" "$2" <<'PY'
import sys, time
from ldap3 import Server, Connection, SUBTREE
url, dn, pw, size, pages = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
c = Connection(Server(url), dn, pw, auto_bind=True)
cookie, times, n = None, [], 0
for _ in range(pages):
    t = time.perf_counter()
    c.search("dc=cig,dc=fr", "(objectClass=inetOrgPerson)", SUBTREE, attributes=["1.1"], paged_size=size, paged_cookie=cookie)
    times.append(time.perf_counter() - t)
    n += sum(1 for e in c.response if e["type"] == "searchResEntry")
    cookie = c.result["controls"]["1.2.840.113556.1.4.319"]["value"]["cookie"]
    if not cookie:
        break
med = sorted(times)[len(times) // 2]
print(f"{len(times)} pages of {size}, {n} entries: first {times[0]*1000:.1f} ms, median {med*1000:.1f} ms, total {sum(times):.2f} s")
PY
}
echo "== paged search below the suffix, (objectClass=inetOrgPerson)"
echo "   first 40 pages: $(walk 500 40)"
echo "   the whole directory: $(walk "$PAGE" 100000000)"
echo "   server peak resident memory: $(awk '/^VmHWM:/ {print $2, $3}' "/proc/$PID/status")"

per_op() { # label command... (run 20 times)
    local label=$1; shift
    local t0 t1
    t0=$(date +%s%N)
    for _ in $(seq 1 20); do "$@" >/dev/null 2>&1 || true; done
    t1=$(date +%s%N)
    echo "   $label: $(( (t1 - t0) / 20000000 )) ms each (client start included)"
}
echo "== size-limited search, one long index list"
per_op "-z 50 (objectClass=inetOrgPerson) below the suffix" \
    ldapsearch -x -H "$URL" -D "${SVC[0]}" -w "${SVC[1]}" -b dc=cig,dc=fr -z 50 "(objectClass=inetOrgPerson)" 1.1
echo "== SCIM list of the largest organisation (o=$ORG)"
SCIM="http://127.0.0.1:$SCIM_PORT/scim/v2/Users"
total="$(curl -s -H "Authorization: Bearer $TOKEN" "$SCIM?count=0" | python3 -c 'import json,sys; print(json.load(sys.stdin)["totalResults"])')"
echo "   totalResults $total"
for q in "count=100" "startIndex=$(( total / 2 ))&count=100" "count=0"; do
    per_op "$q" curl -sf -o /dev/null -H "Authorization: Bearer $TOKEN" "$SCIM?$q"
done
