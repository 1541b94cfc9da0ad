#!/usr/bin/env bash
# Load on `tweetsim serve` with wrk (Debian's package), loopback only, every run bounded in
# time: QPS and latency percentiles of GET /similar (text queries, rotating the 20 judged
# reference queries) and GET /tweets/{id}/similar (rotating 200 ids), at 1, 8 and 32
# connections, with the mean texts per encoder call; text queries again with batching
# across requests off (--batch-texts 1); and,
# in the same run, the per-process CLI baseline (`tweetsim similar "text"`, one process
# per query, model load included).
# Usage: scripts/bench-serve.sh [SECONDS per wrk run]   (default 15)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-15}
command -v wrk >/dev/null || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet
[ -f models/all-MiniLM-L6-v2/model.safetensors ] || scripts/fetch-model.sh
work=$(mktemp -d "${TMPDIR:-/tmp}/tweetsim-serve-bench.XXXXXX")
server=
stop() { if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; server=; fi; }
trap 'stop; rm -rf "$work"' EXIT
export XDG_CACHE_HOME="$work/cache" TWEETSIM_MODELS_DIR="$PWD/models" HF_HUB_OFFLINE=1
bin=target/release/tweetsim
"$bin" -q index --store "$work/store" >/dev/null
sleep 3 # files changed in the last 2 s are hashed on every open; let them settle
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"

python3 - "$work" <<'PY'
import json, sys, urllib.parse
work = sys.argv[1]
qs = [q["query"] for q in json.load(open("tests/data/reference/minilm-queries-top10.json"))]
open(f"{work}/text.paths", "w").write("".join(f"/similar?{urllib.parse.urlencode({'q': q})}\n" for q in qs))
ids = [l.split('"id":"', 1)[1].split('"', 1)[0] for l in open(f"{work}/store/" + json.load(open(f"{work}/store/manifest.json"))["generation"] + "/tweets.jsonl")][:200]
open(f"{work}/id.paths", "w").write("".join(f"/tweets/{i}/similar\n" for i in ids))
PY
cat > "$work/rotate.lua" <<'LUA'
local paths = {}
for line in io.lines(os.getenv("WRK_PATHS")) do paths[#paths + 1] = line end
local i = math.random(#paths)
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
LUA

start() {
  "$bin" serve --quiet --addr 127.0.0.1:0 --store "$work/store" "$@" >"$work/out" 2>"$work/err" &
  server=$!
  for _ in $(seq 600); do grep -q '^listening on ' "$work/out" 2>/dev/null && break; sleep 0.2; done
  base=$(sed -n 's/^listening on \(http:[^ ]*\).*/\1/p' "$work/out")
  [ -n "$base" ] || { cat "$work/err"; exit 1; }
  curl -sf "$base/similar?q=warm+up" >/dev/null
}

# The encoder's batch-size histogram: "texts calls" so far.
batches() {
  curl -sf "$base/metrics" | awk '/^tweetsim_encoder_batch_texts_(sum|count)/ {v[$1]=$2} END {print v["tweetsim_encoder_batch_texts_sum"] + 0, v["tweetsim_encoder_batch_texts_count"] + 0}'
}

# One wrk run: prints "label  QPS  p50  p99  non-2xx  texts per encoder call".
load() {
  local label=$1 paths=$2 conns=$3 out before after
  before=$(batches)
  out=$(WRK_PATHS="$work/$paths" timeout -k 5 $((secs + 30)) wrk -t "$((conns < 2 ? 1 : 2))" -c "$conns" -d "${secs}s" --latency -s "$work/rotate.lua" "$base" 2>&1)
  local qps p50 p99 bad
  qps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  bad=$(awk '/Non-2xx/ {print $NF}' <<<"$out"); bad=${bad:-0}
  errs=$(awk '/Socket errors/ {print}' <<<"$out")
  after=$(batches)
  per_call=$(awk -v b="$before" -v a="$after" 'BEGIN {split(b, x, " "); split(a, y, " "); c = y[2] - x[2]; if (c > 0) printf "%.1f", (y[1] - x[1]) / c; else print "-"}')
  printf '%-46s %9s %9s %9s %7s %10s %s\n' "$label" "$qps" "$p50" "$p99" "$bad" "$per_call" "$errs"
}

echo "== per-process CLI baseline: tweetsim similar \"text\" (hybrid, printed), 20 processes"
times=()
while IFS= read -r q; do
  s=$(date +%s%N); "$bin" similar "$q" --store "$work/store" >/dev/null; e=$(date +%s%N)
  times+=($(( (e - s) / 1000 )))
done < <(python3 -c 'import json; [print(q["query"]) for q in json.load(open("tests/data/reference/minilm-queries-top10.json"))]')
cli_ms=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.1f", m / 1000}')
echo "median ${cli_ms} ms per query → $(awk -v m="$cli_ms" 'BEGIN {printf "%.1f", 1000 / m}') queries/s, one process after another"

echo "== tweetsim serve, wrk ${secs} s per row (loopback)"
printf '%-46s %9s %9s %9s %7s %10s\n' "endpoint, connections" "req/s" "p50" "p99" "non-2xx" "texts/call"
start
load "/similar?q= (text), 1 conn" text.paths 1
load "/similar?q= (text), 8 conns" text.paths 8
load "/similar?q= (text), 32 conns" text.paths 32
load "/tweets/{id}/similar, 1 conn" id.paths 1
load "/tweets/{id}/similar, 8 conns" id.paths 8
stop
start --batch-texts 1
load "/similar?q= (text), 8 conns, --batch-texts 1" text.paths 8
load "/similar?q= (text), 32 conns, --batch-texts 1" text.paths 32
stop
