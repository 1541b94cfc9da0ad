#!/usr/bin/env bash
# Renders the HTML topic report of the bundled corpus in headless Chromium and checks that
# every chart was laid out: the page's own script writes, after layout, each chart's element
# count and whether its bounding box is non-empty into <body data-rendered="...">; this script
# reads that back from the rendered DOM and compares it with the report's JSON. Also saves a
# screenshot. Installs Debian's chromium when it is missing.
# Usage: scripts/check-html.sh [SCREENSHOT.png]   (default: target/topics-report.png)
set -euo pipefail
cd "$(dirname "$0")/.."
shot=${1:-target/topics-report.png}

if ! command -v chromium >/dev/null; then
  echo "installing chromium (Debian package)..."
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

cargo build --release --quiet
work=$(mktemp -d "${TMPDIR:-/tmp}/tweetsim-html.XXXXXX")
trap 'rm -rf "$work"' EXIT
bin=target/release/tweetsim
store=${TWEETSIM_STORE:-$work/store}
"$bin" topics --quiet --store "$store" --html "$work/topics.html" --json > "$work/topics.json"

chrome() {
  timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/profile-$1" "${@:2}" "file://$work/topics.html" 2>/dev/null
}
chrome dom --dump-dom > "$work/dom.html"
mkdir -p "$(dirname "$shot")"
chrome shot --window-size=1050,2200 --screenshot="$shot" >/dev/null

python3 - "$work/dom.html" "$work/topics.json" <<'PY'
import json, re, sys
dom, report = open(sys.argv[1]).read(), json.load(open(sys.argv[2]))
m = re.search(r'data-rendered="([^"]*)"', dom)
if not m:
    sys.exit("FAIL: the page's script did not run (no data-rendered on <body>)")
got = dict((k, (int(n), state)) for k, n, state in (p.split(":") for p in m.group(1).split(",")))
topics, tweets = len(report["topics"]), report["tweets"]
months = len(report["topics"][0]["monthly"])
want = {"sizes": topics, "timeline": topics * months, "map": tweets, "engagement": topics}
bad = [f"{k}: {got.get(k)} (want {n} drawn)" for k, n in want.items() if got.get(k) != (n, "drawn")]
if bad:
    sys.exit("FAIL: " + "; ".join(bad))
print(f"ok: {m.group(1)}")
PY
echo "screenshot: $shot"
