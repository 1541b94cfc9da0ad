#!/usr/bin/env bash
# Fuzzes the corpus parsers, the .npy / exported-vector readers and store loading
# (tests/it/hostile.rs, proptest) for MINUTES minutes: rounds of many cases, each round from a
# new random seed (printed, so a failure can be replayed with FUZZ_SEED=...).
# Usage: scripts/fuzz.sh [MINUTES] [CASES_PER_ROUND]     (default 10 and 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
per_round=${2:-2000}
cargo test --release --test it --no-run --quiet
end=$(( $(date +%s) + minutes * 60 ))
round=0
while [ "$(date +%s)" -lt "$end" ]; do
    round=$((round + 1))
    seed=$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')
    echo "round $round: FUZZ_SEED=$seed PROPTEST_CASES=$per_round"
    log=$(mktemp)
    if ! FUZZ_SEED=$seed PROPTEST_CASES=$per_round cargo test --release --quiet --test it \
        hostile:: -- --test-threads 2 > "$log" 2>&1; then
        grep -E "panicked|minimal failing|FAILED|Test failed" "$log" | head -20
        echo "fuzz failure in round $round: rerun with FUZZ_SEED=$seed PROPTEST_CASES=$per_round"
        exit 1
    fi
    grep -E "test result" "$log"
    rm -f "$log"
done
echo "fuzzed for $minutes minutes ($round rounds of $per_round cases per target): no panic"
