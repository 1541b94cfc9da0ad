#!/usr/bin/env bash
# How close are the synthetic vectors (`tweetsim synth --vectors`) to what the model really
# gives for the synthetic texts? Makes N synthetic tweets with vectors, embeds their texts
# with the real model, and prints the same neighbourhood statistics for both (and for
# the previous generator's mixes), plus hnswlib's recall on each: a harder synthetic set
# than the real embeddings makes scale benchmarks pessimistic.
#
#   scripts/synth-realism.sh [N]     (default 20000; embedding N texts takes ~5 min on 2 cores)
#
# Needs the model in models/ (scripts/fetch-model.sh); numpy and hnswlib go into
# target/hnsw-venv (made here, as scripts/bench-hnsw.sh does).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20000}
OUT=target/synth-realism/$N
venv=target/hnsw-venv
mkdir -p "$OUT"

bash scripts/fetch-model.sh >/dev/null
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import hnswlib, numpy" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q numpy hnswlib
fi
cargo build -q --release
bin=target/release/tweetsim

"$bin" synth -q --tweets "$N" --out "$OUT/synth.jsonl" --vectors
"$bin" embed -q --out "$OUT/bundled.npy"
[ -f "$OUT/real.npy" ] || "$bin" embed -q --corpus "$OUT/synth.jsonl" --out "$OUT/real.npy"
"$venv/bin/python" scripts/synth-realism.py "$OUT"
