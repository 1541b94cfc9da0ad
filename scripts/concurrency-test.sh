#!/usr/bin/env bash
# Readers and writers at once on one store:
#   1. a reader (`similar --tweet ID --json`, in a loop) while `index` flips the store between
#      corpora A and B ROUNDS times: every answer must be exactly A's or exactly B's;
#   2. two writers started together (A and B): both must exit 0 (the second waits for the
#      lock), and the store must answer exactly as one of them.
# Usage: scripts/concurrency-test.sh [ROUNDS]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-10}
cargo build --release --quiet
[ -f models/all-MiniLM-L6-v2/model.safetensors ] || scripts/fetch-model.sh
work=$(mktemp -d "${TMPDIR:-/tmp}/tweetsim-conc.XXXXXX")
trap 'rm -rf "$work"' EXIT
export XDG_CACHE_HOME="$work/cache" TWEETSIM_MODELS_DIR="$PWD/models" HF_HUB_OFFLINE=1
bin=$PWD/target/release/tweetsim
"$bin" -q synth --tweets 340 --out "$work/all.jsonl" --seed 9 > /dev/null
head -300 "$work/all.jsonl" > "$work/A.jsonl"
cp "$work/all.jsonl" "$work/B.jsonl"

python3 - "$bin" "$work" "$rounds" <<'PY'
import json, os, shutil, subprocess, sys, threading
bin, work, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
ids = [json.loads(l)["id"] for l in open(f"{work}/A.jsonl")][:300:100]

def index(store, corpus):
    return subprocess.run([bin, "-q", "index", "--corpus", f"{work}/{corpus}.jsonl", "--store", store],
                          capture_output=True, text=True)

def similar(store, i):
    p = subprocess.run([bin, "-q", "similar", "--store", store, "--tweet", i, "--json", "-k", "5"],
                       capture_output=True, text=True)
    return p.stdout if p.returncode == 0 else "error: " + p.stderr.strip()

def answers(store):
    return {i: similar(store, i) for i in ids}

# 1. One reader against a flipping writer. Every answer the reader gets, one query at a time,
#    must be the answer of a store state the writer committed (recorded after each commit).
store = f"{work}/store"
assert index(store, "A").returncode == 0
valid = {i: {a} for i, a in answers(store).items()}
stop, seen, bad = threading.Event(), [], []
def reader():
    k = 0
    while not stop.is_set():
        i = ids[k % len(ids)]
        seen.append((i, similar(store, i)))
        k += 1
t = threading.Thread(target=reader)
t.start()
for r in range(rounds):
    p = index(store, "B" if r % 2 == 0 else "A")
    assert p.returncode == 0, p.stderr
    # The writer's own reads of the state it just committed, while the reader carries on.
    for i, a in answers(store).items():
        valid[i].add(a)
stop.set()
t.join()
bad = [(i, a) for i, a in seen if a not in valid[i]]
if bad:
    sys.exit(f"a reader saw an answer no committed store gives: {bad[0][1][:300]}")
print(f"1. {rounds} rewrites under a reader: {len(seen)} reads, each exactly the answer of a committed store")

# 2. Two writers at once, from the same starting store: the result must be what running them
#    one after the other gives, in one order or the other.
def run_sequence(start, order):
    copy = f"{work}/seq"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(start, copy)
    for c in order:
        assert index(copy, c).returncode == 0
    return answers(copy)
for r in range(3):
    start = f"{work}/start"
    shutil.rmtree(start, ignore_errors=True)
    shutil.copytree(store, start)
    expected = {"A then B": run_sequence(start, "AB"), "B then A": run_sequence(start, "BA")}
    results = {}
    def write(c):
        results[c] = index(store, c)
    ws = [threading.Thread(target=write, args=(c,)) for c in "AB"]
    for w in ws: w.start()
    for w in ws: w.join()
    for c, p in results.items():
        assert p.returncode == 0, f"writer {c} failed: {p.stderr}"
    got = answers(store)
    which = [k for k, v in expected.items() if v == got]
    assert which, f"after two writers the store answers neither as A-then-B nor as B-then-A"
    print(f"2. round {r + 1}: two writers at once both succeeded; the store answers as {which[0]}")
PY
