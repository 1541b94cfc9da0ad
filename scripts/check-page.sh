#!/usr/bin/env bash
# The search page of `tweetsim serve`, driven in headless Chromium as a person would use it:
# type a query and see the hits the API returns, filter, click "more like this", read the
# error of a bad filter, click a topic and a chart bar. Starts the server on a free loopback
# port with a store of its own, and stops it on exit. Installs Debian's chromium,
# chromium-driver and python3-selenium when missing. Saves a screenshot.
# Usage: scripts/check-page.sh [SCREENSHOT.png]   (default: target/serve-page.png)
set -euo pipefail
cd "$(dirname "$0")/.."
shot=${1:-target/serve-page.png}

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
  || ! /usr/bin/python3 -c 'import selenium' 2>/dev/null; then
  echo "installing chromium, chromium-driver and python3-selenium (Debian packages)..."
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver python3-selenium >/dev/null
fi

cargo build --release --quiet
work=$(mktemp -d "${TMPDIR:-/tmp}/tweetsim-page.XXXXXX")
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

target/release/tweetsim serve --quiet --addr 127.0.0.1:0 --store "$work/store" >"$work/out" 2>"$work/err" &
server=$!
for _ in $(seq 600); do
  grep -q '^listening on ' "$work/out" 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || { cat "$work/err"; echo "FAIL: tweetsim serve exited"; exit 1; }
  sleep 0.2
done
base=$(sed -n 's/^listening on \(http:[^ ]*\).*/\1/p' "$work/out")
[ -n "$base" ] || { cat "$work/err"; echo "FAIL: tweetsim serve did not start within 120 s"; exit 1; }
echo "server at $base"
mkdir -p "$(dirname "$shot")"
timeout -k 10 300 /usr/bin/python3 scripts/check-page.py "$base" "$shot" "$work/profile"
