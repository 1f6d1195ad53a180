#!/usr/bin/env bash
# Convergences and OpenLDAP slapd (mdb), side by side, in one run on one machine:
# the same generated directory loaded into both (slapadd / `convergences import`),
# the same ldapbench workloads against each, alternating, and a table of
# ops/s, p50, p99, server CPU per operation, import time and resident memory,
# with the ratio Convergences / slapd.
#
#   bench/compare.sh
#
# It uses the benchmark kit of ../shared/bench (gen_ldif.py, slapd.sh,
# ldapbench): set BENCH_KIT to use a copy elsewhere. Needs slapd and
# slapadd (Debian: slapd, ldap-utils), python3 and cargo.
#
# Environment knobs (all optional):
#   AGENTS / ORGS   size of the generated directory      default 100000 / 300 (the kit's cig-100k)
#   MODES           workloads (empty: none, for COLD_START_SECS alone)  default "search-eq search-sub bind search-org mixed"
#   DURATION        measured seconds per run             default 10
#   WARMUP          warm-up seconds per run              default 2
#   CONNS           concurrent connections               default 16
#   REPEAT          runs per workload and server         default 3 (medians are reported)
#   CACHE_MB        Convergences' redb page cache        default 384 (the 100k store is ~290 MB:
#                   the cache holds it whole; RSS is counted against slapd's mapped database)
#   WORK            scratch directory                    default target/bench
#   COLD_START_SECS after the workloads, restart each server and measure ops/s in each of
#                   the first N seconds after it answers (search-eq, bind)   default 0 (off)
#   COLD_EVICT      with COLD_START_SECS: also drop each server's files from the kernel's page
#                   cache before its restart (a reboot, a standby that never served)  default 0
#   LOG_OPERATIONS  Convergences' per-operation log      default false (slapd's kit runs at
#                   loglevel 0); true: the server's default, written to $WORK/convergences.log
#                   (emptied after each run)
#
# Convergences runs with the configuration that matches slapd's in the kit:
# the `baseline` access policy (any bound identity reads everything but
# passwords: the kit's mixed workload searches as the agent it just bound as),
# no lockout (the bind workload sends 10 % wrong passwords on purpose) and no
# re-hash to argon2id (the bind workload measures {SSHA} verification, which
# is what slapd does).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
KIT="${BENCH_KIT:-$REPO/../shared/bench}"
AGENTS="${AGENTS:-100000}"
ORGS="${ORGS:-300}"
MODES="${MODES-search-eq search-sub bind search-org mixed}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CONNS="${CONNS:-16}"
REPEAT="${REPEAT:-3}"
CACHE_MB="${CACHE_MB:-384}"
WORK="${WORK:-$REPO/target/bench}"
LOG_OPERATIONS="${LOG_OPERATIONS:-false}"
COLD_START_SECS="${COLD_START_SECS:-0}"
COLD_EVICT="${COLD_EVICT:-0}"
SLAPD_PORT="${SLAPD_PORT:-3890}"
CONV_PORT="${CONV_PORT:-3891}"

[ -r "$KIT/gen_ldif.py" ] || { echo "compare.sh: no benchmark kit at $KIT (set BENCH_KIT)" >&2; exit 1; }
mkdir -p "$WORK"
LDIF="$WORK/cig-$AGENTS.ldif"
MANIFEST="$WORK/cig-$AGENTS"

echo "== building (release)"
(cd "$REPO" && cargo build --release --quiet)
CONV="${CONV:-$REPO/target/release/convergences}"
BENCH_BIN="$WORK/ldapbench-target/release/ldapbench"
(cd "$KIT/ldapbench" && CARGO_TARGET_DIR="$WORK/ldapbench-target" cargo build --release --quiet)

if [ ! -r "$LDIF" ]; then
    echo "== generating $LDIF ($AGENTS agents, $ORGS organisations)"
    python3 "$KIT/gen_ldif.py" --agents "$AGENTS" --orgs "$ORGS" --out "$LDIF"
fi

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

CONV_PID=""
cleanup() {
    [ -n "$CONV_PID" ] && kill "$CONV_PID" 2>/dev/null || true
    "$KIT/slapd.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "== slapd: slapadd and start"
"$KIT/slapd.sh" stop >/dev/null 2>&1 || true
slapd_out="$("$KIT/slapd.sh" start "$LDIF" "$SLAPD_PORT")"
echo "$slapd_out" | tail -2
# shellcheck disable=SC1091
. "$KIT/run/slapd.env"
SLAPD_IMPORT="$SLAPD_IMPORT_S"

echo "== convergences: import and start"
rm -rf "$WORK/convergences-data"
t0=$(date +%s.%N)
"$CONV" import --data "$WORK/convergences-data" "$LDIF"
t1=$(date +%s.%N)
CONV_IMPORT=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
# slapd runs with `loglevel 0`: the per-operation log line is off here too,
# unless LOG_OPERATIONS=true (appended to a file, as a journal would take it).
: >"$WORK/convergences.log"
# Until it answers: start it, then wait for `url` to answer a rootDSE search.
answers() {
    for _ in $(seq 1 600); do
        ldapsearch -x -H "$1" -b "" -s base >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "compare.sh: $1 does not answer" >&2
    exit 1
}
start_convergences() {
    CONVERGENCES_ACCESS_POLICY=baseline CONVERGENCES_PASSWORD_REHASH=false CONVERGENCES_PASSWORD_MAX_FAILURES=0 \
    CONVERGENCES_CACHE_MB="$CACHE_MB" CONVERGENCES_LOG_OPERATIONS="$LOG_OPERATIONS" \
        "$CONV" serve --data "$WORK/convergences-data" --ldap "127.0.0.1:$CONV_PORT" --ldaps 127.0.0.1:0 \
        --scim 127.0.0.1:0 --scim-http 127.0.0.1:0 --console 127.0.0.1:0 --console-http 127.0.0.1:0 --no-demo \
        >>"$WORK/convergences.log" 2>&1 &
    CONV_PID=$!
    answers "ldap://127.0.0.1:$CONV_PORT"
}
start_convergences

RAW="$WORK/runs.tsv"
: >"$RAW"
run() { # server url pid mode round
    local out
    out="$("$BENCH_BIN" "$4" --url "$2" --conns "$CONNS" --duration "$DURATION" --warmup "$WARMUP" \
        --manifest "$MANIFEST" --server-pid "$3" 2>&1 | tail -1)"
    echo -e "$1\t$4\t$5\t$out" >>"$RAW"
    # The operation lines of a run (a few hundred MB) are not kept.
    if [ "$1" = convergences ] && [ "$LOG_OPERATIONS" = true ]; then : >"$WORK/convergences.log"; fi
    echo "   $1 $4 #$5: $(echo "$out" | tr ' ' '\n' | grep -E '^(ops_per_sec|p99_us|errors)=' | tr '\n' ' ')"
}
echo "== workloads: ${MODES}; $REPEAT rounds, alternating servers"
for round in $(seq 1 "$REPEAT"); do
    for mode in $MODES; do
        run slapd "$SLAPD_URL" "$SLAPD_PID" "$mode" "$round"
        run convergences "ldap://127.0.0.1:$CONV_PORT" "$CONV_PID" "$mode" "$round"
    done
done
SLAPD_RSS=$(rss_kb "$SLAPD_PID")
CONV_RSS=$(rss_kb "$CONV_PID")

# Cold starts: each server stopped and started again, then one-second runs
# back to back, from the moment it answers.
COLD="$WORK/cold.tsv"
: >"$COLD"
evict() { # files...: out of the kernel's page cache
    python3 -c 'import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)' "$@"
}
restart_slapd() {
    kill -TERM "$SLAPD_PID"
    while kill -0 "$SLAPD_PID" 2>/dev/null; do sleep 0.1; done
    rm -f "$SLAPD_DIR/slapd.pid"
    if [ "$COLD_EVICT" = 1 ]; then evict "$SLAPD_DIR"/db/*.mdb; fi
    "$(command -v slapd || echo /usr/sbin/slapd)" -f "$SLAPD_DIR/slapd.conf" -h "$SLAPD_URL/"
    answers "$SLAPD_URL"
    SLAPD_PID="$(cat "$SLAPD_DIR/slapd.pid")"
    sed -i "s/^SLAPD_PID=.*/SLAPD_PID=$SLAPD_PID/" "$KIT/run/slapd.env"
}
restart_convergences() {
    kill -TERM "$CONV_PID"
    wait "$CONV_PID" 2>/dev/null || true
    if [ "$COLD_EVICT" = 1 ]; then evict "$WORK/convergences-data/convergences.redb"; fi
    start_convergences
}
if [ "$COLD_START_SECS" -gt 0 ]; then
    echo "== cold starts: ops/s in each of the first $COLD_START_SECS s$([ "$COLD_EVICT" = 1 ] && echo ', page cache dropped')"
    for mode in search-eq bind; do
        for server in slapd convergences; do
            if [ "$server" = slapd ]; then restart_slapd; url="$SLAPD_URL"; pid="$SLAPD_PID"
            else restart_convergences; url="ldap://127.0.0.1:$CONV_PORT"; pid="$CONV_PID"; fi
            for sec in $(seq 1 "$COLD_START_SECS"); do
                out="$("$BENCH_BIN" "$mode" --url "$url" --conns "$CONNS" --duration 1 --warmup 0 \
                    --manifest "$MANIFEST" --server-pid "$pid" 2>&1 | tail -1)"
                echo -e "$server\t$mode\t$sec\t$out" >>"$COLD"
            done
            echo "   $server $mode: $(awk -F'\t' -v s="$server" -v m="$mode" '$1 == s && $2 == m' "$COLD" |
                grep -o 'ops_per_sec=[0-9.]*' | cut -d= -f2 | cut -d. -f1 | tr '\n' ' ')"
        done
    done
fi

python3 - "$RAW" "$SLAPD_IMPORT" "$CONV_IMPORT" "$SLAPD_RSS" "$CONV_RSS" "$LOG_OPERATIONS" "$COLD" <<'EOF'
import statistics, sys
raw, slapd_import, conv_import, slapd_rss, conv_rss, log_operations, cold = sys.argv[1:]
runs = {}
for line in open(raw):
    server, mode, _round, kv = line.rstrip("\n").split("\t", 3)
    d = dict(p.split("=", 1) for p in kv.split() if "=" in p)
    runs.setdefault((server, mode), []).append(d)
modes = list(dict.fromkeys(m for (_, m) in runs))
if not runs:
    print("(no workloads run: MODES was empty)")
def med(server, mode, key):
    vals = [float(d[key]) for d in runs.get((server, mode), []) if key in d]
    return statistics.median(vals) if vals else float("nan")
print()
print("| workload | slapd ops/s | conv. ops/s | ratio | slapd p50/p99 µs | conv. p50/p99 µs | slapd CPU µs/op | conv. CPU µs/op | CPU ratio | errors |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for m in modes:
    s_ops, c_ops = med("slapd", m, "ops_per_sec"), med("convergences", m, "ops_per_sec")
    s_cpu, c_cpu = med("slapd", m, "server_cpu_us_per_op"), med("convergences", m, "server_cpu_us_per_op")
    errors = sum(int(d.get("errors", 0)) for (s, mm), ds in runs.items() if mm == m for d in ds)
    print(f"| {m} | {s_ops:,.0f} | {c_ops:,.0f} | {c_ops / s_ops:.2f}× "
          f"| {med('slapd', m, 'p50_us'):.0f} / {med('slapd', m, 'p99_us'):.0f} "
          f"| {med('convergences', m, 'p50_us'):.0f} / {med('convergences', m, 'p99_us'):.0f} "
          f"| {s_cpu:.1f} | {c_cpu:.1f} | {c_cpu / s_cpu:.2f} | {errors} |")
print()
print(f"| | slapd | convergences | ratio |")
print(f"|---|---:|---:|---:|")
print(f"| import (s) | {float(slapd_import):.1f} | {float(conv_import):.1f} | {float(conv_import) / float(slapd_import):.2f} |")
print(f"| RSS after the runs (MB) | {int(slapd_rss) / 1024:.0f} | {int(conv_rss) / 1024:.0f} | {int(conv_rss) / int(slapd_rss):.2f} |")
print()
print("medians of", max((len(v) for v in runs.values()), default=0), "runs per cell; raw results in", raw)
print("Convergences' per-operation log:", "on" if log_operations == "true" else "off")
curves = {}
for line in open(cold):
    server, mode, sec, kv = line.rstrip("\n").split("\t", 3)
    d = dict(p.split("=", 1) for p in kv.split() if "=" in p)
    curves.setdefault(mode, {}).setdefault(int(sec), {})[server] = float(d.get("ops_per_sec", "nan"))
for mode, secs in curves.items():
    print()
    print(f"| {mode}: second after start | slapd ops/s | conv. ops/s | ratio |")
    print("|---:|---:|---:|---:|")
    for sec in sorted(secs):
        s, c = secs[sec].get("slapd", float("nan")), secs[sec].get("convergences", float("nan"))
        print(f"| {sec} | {s:,.0f} | {c:,.0f} | {c / s:.2f}× |")
EOF
