#!/usr/bin/env bash
# The store at scale, and our HNSW beside hnswlib on the same vectors and queries.
#
#   scripts/bench-hnsw.sh [N]        (default 200000; HNSWLIB=0 skips step 2)
#
# 1. `cargo bench --bench hnsw_scale -- N OUT`: N synthetic tweets with vectors near real
#    ones; build time and peak RSS, appending 1% more, Store::open time, recall@10 and
#    single-thread QPS per ef over 1,000 held-out queries (exact ground truth).
# 2. hnswlib (PyPI, in target/hnsw-venv, made here) on the same vectors, queries and
#    parameters, single thread; the side-by-side table: QPS at recall@10 0.95 and 0.99.
# 3. `tweetsim similar --tweet ID --store OUT/store`, 20 processes: median wall time.
#
# Needs the model in models/ (scripts/fetch-model.sh) and about 4 GB of memory per 1M tweets.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200000}
OUT=target/bench-hnsw/$N
venv=target/hnsw-venv

bash scripts/fetch-model.sh >/dev/null
if [ "${HNSWLIB:-1}" != 0 ] && { [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import hnswlib, numpy" 2>/dev/null; }; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q numpy hnswlib
fi

echo "== tweetsim (hnsw_rs, SIMD dot), N = $N"
cargo bench -q --bench hnsw_scale -- "$N" "$OUT"
if [ "${HNSWLIB:-1}" != 0 ]; then
  echo
  echo "== hnswlib, same vectors"
  "$venv/bin/python" scripts/bench-hnsw.py "$OUT"
fi

echo
echo "== tweetsim similar --tweet ID --store $OUT/store, 20 processes"
scripts/time-similar.sh "$OUT/store"
