#!/usr/bin/env bash
# End-to-end figures on the bundled corpus, each from fresh processes of the release binary:
#   1. embedding throughput (`tweetsim embed`, the 680 records),
#   2. store build time from scratch (`tweetsim index`: embed + HNSW + files),
#   3. per-process wall time of `tweetsim similar "..."` against a built store.
# Medians over several rounds; machines here are noisy, so read the spread too.
# Usage: scripts/bench.sh [ROUNDS]   (default 5; `similar` runs 4×ROUNDS times)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
rounds=${1:-5}
work=$(mktemp -d "${TMPDIR:-/tmp}/tweetsim-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
export XDG_CACHE_HOME="$work/cache"
python3 - "$rounds" "$work" <<'PY'
import os, re, statistics, subprocess, sys, time
rounds, work = int(sys.argv[1]), sys.argv[2]
bin = "target/release/tweetsim"

def run(*args):
    t = time.perf_counter()
    p = subprocess.run([bin, *args], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(args)} failed: {p.stderr}")
    return time.perf_counter() - t, p

def summary(name, xs, unit, fmt="{:.1f}"):
    xs = sorted(xs)
    print(f"{name:<34} median {fmt.format(statistics.median(xs))} {unit}"
          f"  (min {fmt.format(xs[0])}, max {fmt.format(xs[-1])}, n={len(xs)})")

print(f"cores: {os.cpu_count()}, rounds: {rounds}")
run("similar", "warm up", "--store", f"{work}/store")          # builds the store, fills caches
rates = []
for _ in range(rounds):
    _, p = run("embed", "--out", f"{work}/e.npy")
    rates.append(float(re.search(r"\(([\d.]+) tweets/s", p.stderr).group(1)))
summary("embed 680 tweets (encoder only)", rates, "tweets/s")
builds = []
for i in range(rounds):
    secs, _ = run("index", "--quiet", "--store", f"{work}/fresh{i}")
    builds.append(secs)
summary("index from scratch (process wall)", builds, "s", "{:.2f}")
walls = []
for i in range(4 * rounds):
    secs, _ = run("similar", "tesla autopilot data engine", "--store", f"{work}/store")
    walls.append(secs * 1000)
summary("similar \"...\" (process wall)", walls, "ms", "{:.0f}")
PY
