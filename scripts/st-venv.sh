#!/usr/bin/env bash
# Makes target/bench-venv with sentence-transformers and torch from PyPI, once (a few GB,
# minutes), and prints the path of its python. Used by the scripts that compare against
# sentence-transformers.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/bench-venv
if ! "$venv/bin/python" -c "import sentence_transformers, torch" 2>/dev/null; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q torch sentence-transformers >&2
fi
echo "$PWD/$venv/bin/python"
