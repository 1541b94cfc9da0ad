#!/usr/bin/env bash
# tweetsim's Parquet through pyarrow (PyPI, pinned, in target/interop-venv), both ways: the
# engines users hand tweets and vectors to (Ray Data, Spark, a Milvus bulk import) read and
# write Parquet through Arrow, so pyarrow reading our file, and us reading pyarrow's, is the
# check that matters. Details in scripts/check-parquet-interop.py.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/interop-venv
if ! "$venv/bin/python" -c "import pyarrow" 2>/dev/null; then
  echo "installing pyarrow into $venv (PyPI)..."
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q pyarrow==26.0.1
fi
cargo build --release --quiet
work=$(mktemp -d "${TMPDIR:-/tmp}/tweetsim-interop.XXXXXX")
trap 'rm -rf "$work"' EXIT
export XDG_CACHE_HOME="$work/cache" TWEETSIM_MODELS_DIR="$PWD/models" HF_HUB_OFFLINE=1
bin=target/release/tweetsim
"$bin" -q embed --out "$work/b.parquet" --chunk 256 >/dev/null
timeout -k 10 300 "$venv/bin/python" scripts/check-parquet-interop.py "$bin" "$work"
