#!/usr/bin/env bash
# Wall time of one `tweetsim similar` process against a built store (scripts/time-runs.sh: a
# warm-up run, which also lets the store remember the files it checked, then RUNS runs).
#
#   scripts/time-similar.sh STORE [SIMILAR ARGS...]   (default: --tweet <the store's first tweet>)
#   RUNS=20 by default, e.g. RUNS=50 scripts/time-similar.sh st "tesla autopilot data engine"
set -euo pipefail
cd "$(dirname "$0")/.."
store=${1:?usage: scripts/time-similar.sh STORE [SIMILAR ARGS...]}
shift
cargo build -q --release
if [ $# -eq 0 ]; then
  gen=$(sed -n 's/.*"generation": "\(.*\)".*/\1/p' "$store/manifest.json")
  set -- --tweet "$(head -1 "$store/$gen/tweets.jsonl" | sed 's/^{"id":"\([0-9]*\)".*/\1/')"
fi
scripts/time-runs.sh target/release/tweetsim -q similar --store "$store" -k 5 "$@"
