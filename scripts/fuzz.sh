#!/usr/bin/env bash
# Fuzzes the corpus parsers, the .npy / exported-vector readers and store loading
# (tests/it/hostile.rs, proptest) for MINUTES minutes: rounds of many cases, each round from a
# new random seed (printed, so a failure can be replayed with FUZZ_SEED=...).
# TARGET (a test-name filter, default every hostile:: test) fuzzes one target alone, e.g.
# `scripts/fuzz.sh 10 2000 store_loading_never_panics`.
# The test binary is built once and copied, so rebuilding the tree meanwhile changes nothing.
# Usage: scripts/fuzz.sh [MINUTES] [CASES_PER_ROUND] [TARGET]     (default 10, 2000, hostile::)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
per_round=${2:-2000}
target=${3:-hostile::}
work=$(mktemp -d "${TMPDIR:-/tmp}/tweetsim-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
cargo build --release --quiet
exe=$(cargo test --release --test it --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
runs = [m["executable"] for m in map(json.loads, sys.stdin)
        if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "it"]
print(runs[-1])')
cp "$exe" "$work/it"
start=$(date +%s)
end=$(( start + minutes * 60 ))
round=0
while [ "$(date +%s)" -lt "$end" ]; do
    round=$((round + 1))
    seed=$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')
    echo "round $round: FUZZ_SEED=$seed PROPTEST_CASES=$per_round $target"
    log=$(mktemp)
    if ! FUZZ_SEED=$seed PROPTEST_CASES=$per_round "$work/it" "$target" --test-threads 2 > "$log" 2>&1; then
        grep -E "panicked|minimal failing|FAILED|Test failed" "$log" | head -20
        echo "fuzz failure in round $round: rerun with FUZZ_SEED=$seed PROPTEST_CASES=$per_round scripts/fuzz.sh 1 $per_round $target"
        exit 1
    fi
    grep -E "test result" "$log"
    rm -f "$log"
done
echo "fuzzed $target for $(( ($(date +%s) - start) / 60 )) minutes ($round rounds of $per_round cases): no panic"
