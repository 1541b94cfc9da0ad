#!/usr/bin/env bash
# Wall time of one `tweetsim similar` process against a built store: a warm-up run (fills the
# page cache, and lets the store remember which files it checked), then RUNS timed processes;
# prints the median, min and max.
#
#   scripts/time-similar.sh STORE [SIMILAR ARGS...]   (default: --tweet <the store's first tweet>)
#   RUNS=20 by default, e.g. RUNS=50 scripts/time-similar.sh st "tesla autopilot data engine"
set -euo pipefail
cd "$(dirname "$0")/.."
store=${1:?usage: scripts/time-similar.sh STORE [SIMILAR ARGS...]}
shift
cargo build -q --release
bin=target/release/tweetsim
if [ $# -eq 0 ]; then
  gen=$(sed -n 's/.*"generation": "\(.*\)".*/\1/p' "$store/manifest.json")
  set -- --tweet "$(head -1 "$store/$gen/tweets.jsonl" | sed 's/^{"id":"\([0-9]*\)".*/\1/')"
fi
"$bin" -q similar --store "$store" -k 5 "$@" >/dev/null
for _ in $(seq "${RUNS:-20}"); do
  s=$(date +%s%N)
  "$bin" -q similar --store "$store" -k 5 "$@" >/dev/null
  echo $(( ($(date +%s%N) - s) / 100000 ))
done | sort -n | awk '{ a[NR] = $1 / 10 } END {
  printf "median %.1f ms (min %.1f, max %.1f) per process, %d runs\n", a[int((NR + 1) / 2)], a[1], a[NR], NR }'
