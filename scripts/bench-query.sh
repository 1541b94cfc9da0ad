#!/usr/bin/env bash
# `tweetsim similar "text"` per process against a store of the bundled corpus, beside a
# minimal Python sentence-transformers script doing the same (scripts/similar.py: same model
# files, same store vectors, exact top 10, printed), RUNS processes each after a warm-up;
# then where our time goes (`--timings`, 5 runs).
# Usage: scripts/bench-query.sh [RUNS]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
query="tesla autopilot data engine"
cargo build --release --quiet
[ -f models/all-MiniLM-L6-v2/model.safetensors ] || scripts/fetch-model.sh
python=$(scripts/st-venv.sh)
work=$(mktemp -d "${TMPDIR:-/tmp}/tweetsim-query.XXXXXX")
trap 'rm -rf "$work"' EXIT
export XDG_CACHE_HOME="$work/cache" TWEETSIM_MODELS_DIR="$PWD/models" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TQDM_DISABLE=1
bin=target/release/tweetsim
"$bin" -q index --store "$work/store" >/dev/null
sleep 3 # files changed in the last 2 s are hashed on every open; let them settle

echo "== tweetsim similar \"$query\" (hybrid search, printed), $runs processes"
RUNS=$runs scripts/time-similar.sh "$work/store" "$query"
echo "== python scripts/similar.py (sentence-transformers, exact dense top 10), $runs processes"
RUNS=$runs scripts/time-runs.sh "$python" scripts/similar.py "$work/store" "$query"
echo "== where tweetsim's time goes (--timings)"
for _ in 1 2 3 4 5; do
  "$bin" similar "$query" --store "$work/store" --timings 2>&1 >/dev/null | tail -1
done
