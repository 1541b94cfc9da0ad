#!/usr/bin/env bash
# Wall time of a command: one warm-up run (page cache, first-use work), then RUNS timed runs,
# output discarded; prints the median, min and max.
#   RUNS=20 scripts/time-runs.sh COMMAND [ARGS...]
set -euo pipefail
"$@" >/dev/null
for _ in $(seq "${RUNS:-20}"); do
  s=$(date +%s%N)
  "$@" >/dev/null
  echo $(( ($(date +%s%N) - s) / 100000 ))
done | sort -n | awk '{ a[NR] = $1 / 10 } END {
  printf "median %.1f ms (min %.1f, max %.1f) per process, %d runs\n", a[int((NR + 1) / 2)], a[1], a[NR], NR }'
