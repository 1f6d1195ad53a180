#!/usr/bin/env bash
# Console load: CLIENTS référents (16), each signed in with its own session,
# browse their organisation's pages for SECS seconds (examples/console_load.rs
# checks every answer): home page with its figures, agents list (first page,
# page 2, a search), an agent's page, its edit form. On the 100,000-agent
# directory of ../shared/bench (gen_ldif.py), whose largest organisations
# get one référent each, the largest of all first. Prints, per page, requests
# and p50/p99 latency (client side, same host: an upper bound of the
# server's), and the server's CPU per request.
#
#   bench/console_load.sh
#   CLIENTS=32 SECS=30 bench/console_load.sh
#
# Environment knobs: CLIENTS (16), SECS (20), REFERENTS (16 organisations),
# PORT (3895), WORK (target/bench-console), BENCH_KIT (../shared/bench).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
KIT="${BENCH_KIT:-$REPO/../shared/bench}"
CLIENTS="${CLIENTS:-16}"
SECS="${SECS:-20}"
REFERENTS="${REFERENTS:-16}"
PORT="${PORT:-3895}"
WORK="${WORK:-$REPO/target/bench-console}"
[ -r "$KIT/gen_ldif.py" ] || { echo "console_load.sh: no benchmark kit at $KIT (set BENCH_KIT)" >&2; exit 1; }

(cd "$REPO" && cargo build --release --quiet && cargo build --release --quiet --example console_load)
CONV="${CONV:-$REPO/target/release/convergences}"
LOAD="$REPO/target/release/examples/console_load"

mkdir -p "$WORK"
if [ ! -r "$WORK/cig-100k.ldif" ]; then
    python3 "$KIT/gen_ldif.py" --agents 100000 --orgs 300 --out "$WORK/cig-100k.ldif" >/dev/null
fi
# The largest organisations, and the first agent of each as its référent.
grep -v '^#' "$WORK/cig-100k.orgs.tsv" | sort -t$'\t' -k2,2nr | awk -v n="$REFERENTS" 'NR <= n { print $1 }' >"$WORK/orgs.txt"
: >"$WORK/referents.tsv"
cp "$WORK/cig-100k.ldif" "$WORK/base.ldif"
while read -r agents; do
    org="${agents#ou=agents,}"
    siren="${org#o=}"
    siren="${siren%%,*}"
    first="$(awk -F'\t' -v c=",$agents" 'substr($2, length($2) - length(c) + 1) == c { print; exit }' "$WORK/cig-100k.agents.tsv")"
    uid="$(cut -f1 <<<"$first")"
    dn="$(cut -f2 <<<"$first")"
    password="$(cut -f3 <<<"$first")"
    printf '%s\t%s\t%s\n' "$uid" "$password" "$siren" >>"$WORK/referents.tsv"
    printf '\ndn: cn=referents,%s\nobjectClass: groupOfNames\ncn: referents\nmember: %s\n' "$org" "$dn" >>"$WORK/base.ldif"
done <"$WORK/orgs.txt"

rm -rf "$WORK/data"
echo "== importing the 100k directory with $(wc -l <"$WORK/referents.tsv") référents"
"$CONV" import --data "$WORK/data" "$WORK/base.ldif" >/dev/null
CONVERGENCES_LOG_OPERATIONS="${LOG_OPERATIONS:-false}" \
"$CONV" serve --data "$WORK/data" --ldap 127.0.0.1:0 --ldaps 127.0.0.1:0 --scim 127.0.0.1:0 --scim-http 127.0.0.1:0 \
    --console 127.0.0.1:0 --console-http "127.0.0.1:$PORT" --no-demo >"$WORK/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/connexion" && break
    sleep 0.1
done
echo "== $CLIENTS référents for ${SECS}s (largest organisation: $(head -1 "$WORK/orgs.txt"))"
"$LOAD" --url "http://127.0.0.1:$PORT" --referents "$WORK/referents.tsv" --clients "$CLIENTS" --secs "$SECS" \
    --server-pid "$PID" | sed 's/^/  /'
echo "  server_rss_kb=$(awk '/^VmRSS:/ {print $2}' /proc/$PID/status)"
