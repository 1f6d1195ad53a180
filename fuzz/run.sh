#!/usr/bin/env bash
# Build every fuzz target and run each for a while; a crash fails the run and
# leaves its input in fuzz/artifacts/<target>/.
#
#   fuzz/run.sh                 # 10 s per target (what .ci/run does)
#   FUZZ_SECONDS=3600 fuzz/run.sh ldap_session   # a longer run of one target
#
# libFuzzer without a sanitizer (`-s none`) works with the stable toolchain;
# panics and stack overflows are what it finds here (safe Rust needs no ASan).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
SECONDS_EACH="${FUZZ_SECONDS:-10}"
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(ldap_session dn ldap_filter scim_filter scim_patch ldif schema)
fi
cargo fuzz build -s none -O
for t in "${TARGETS[@]}"; do
    # Run on a scratch copy of the checked-in corpus: new inputs stay out of git.
    work="fuzz/target/corpus/$t"
    rm -rf "$work" && mkdir -p "$work" && cp -r "fuzz/corpus/$t/." "$work/"
    echo "== fuzzing $t for ${SECONDS_EACH}s"
    log="fuzz/target/$t.log"
    if ! cargo fuzz run -s none -O "$t" "$work" -- -max_total_time="$SECONDS_EACH" -rss_limit_mb=4096 -timeout=10 >"$log" 2>&1; then
        tail -40 "$log" >&2
        echo "fuzz target $t failed; the input is in fuzz/artifacts/$t/" >&2
        exit 1
    fi
    grep -E "^#[0-9]+" "$log" | tail -1 || true
done
