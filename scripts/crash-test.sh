#!/usr/bin/env bash
# Kills `tweetsim index` with SIGKILL at random moments, over fresh and incremental builds, and
# checks after every kill that the store answers exactly as before the build or exactly as
# after it (never a mix, never an error other than "no store yet" for a fresh build).
#
# Two corpora, A (300 synthetic tweets) and B (A plus 40 more), are never modified; the store
# flips between them. Answers are `similar --tweet ID --json` for 5 ids present in both,
# compared byte for byte with the answers before the build and with those of the same build
# run to completion on a copy of the store.
# Kill times are uniform over 1.2x the measured duration of that kind of build.
# Usage: scripts/crash-test.sh [KILLS]   (default 50)
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${1:-50}
cargo build --release --quiet
[ -f models/all-MiniLM-L6-v2/model.safetensors ] || scripts/fetch-model.sh
work=$(mktemp -d "${TMPDIR:-/tmp}/tweetsim-crash.XXXXXX")
trap 'rm -rf "$work"' EXIT
export XDG_CACHE_HOME="$work/cache" TWEETSIM_MODELS_DIR="$PWD/models" HF_HUB_OFFLINE=1
bin=$PWD/target/release/tweetsim
"$bin" -q synth --tweets 340 --out "$work/all.jsonl" --seed 7 > /dev/null
head -300 "$work/all.jsonl" > "$work/A.jsonl"
cp "$work/all.jsonl" "$work/B.jsonl"

python3 - "$bin" "$work" "$kills" <<'PY'
import json, os, random, shutil, signal, subprocess, sys, time
bin, work, kills = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(2022)
ids = [json.loads(l)["id"] for l in open(f"{work}/A.jsonl")][:300:60]

def index(store, corpus, kill_after=None):
    t = time.perf_counter()
    p = subprocess.Popen([bin, "-q", "index", "--corpus", f"{work}/{corpus}.jsonl", "--store", store],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if kill_after is None:
        _, err = p.communicate()
        if p.returncode:
            sys.exit(f"index failed: {err.decode()}")
        return time.perf_counter() - t, True
    try:
        p.wait(timeout=kill_after)
        return time.perf_counter() - t, True     # finished before the kill
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGKILL)
        p.wait()
        return time.perf_counter() - t, False

def answers(store):
    out = []
    for i in ids:
        p = subprocess.run([bin, "-q", "similar", "--store", store, "--tweet", i, "--json", "-k", "5"],
                           capture_output=True, text=True)
        if p.returncode:
            return ("error", p.stderr.strip())
        out.append(p.stdout)
    return ("ok", "".join(out))

# Durations of each kind of build, uninterrupted.
dur = {}
for c in "AB":
    dur[f"fresh-{c}"], _ = index(f"{work}/ref-{c}", c)
dur["incremental"], _ = index(f"{work}/ref-A", "B")
print(f"durations: fresh A {dur['fresh-A']:.1f} s, fresh B {dur['fresh-B']:.1f} s, incremental {dur['incremental']:.1f} s")

def expected_after(store, target):
    """The answers the build would give if not killed: the same build, from the same
    starting store, on a copy (vectors reused from the same generation are the same bytes)."""
    copy = f"{work}/expected"
    shutil.rmtree(copy, ignore_errors=True)
    if os.path.exists(store):
        shutil.copytree(store, copy)
    index(copy, target)
    return answers(copy)

store, state, current = f"{work}/store", None, None
counts = {"before": 0, "after": 0, "no store yet": 0}
for k in range(kills):
    fresh = state is None or rng.random() < 0.3
    if fresh:
        shutil.rmtree(store, ignore_errors=True)
        state, current = None, None
    target = rng.choice("AB") if fresh else ("B" if state == "A" else "A")
    after = expected_after(store, target)
    budget = dur[f"fresh-{target}"] if fresh else dur["incremental"]
    delay = rng.uniform(0, 1.2 * budget)
    before = state
    _, finished = index(store, target, kill_after=delay)
    # No manifest yet: a fresh build killed early. (`similar` would build a store itself.)
    got = answers(store) if os.path.exists(f"{store}/manifest.json") else ("none", "")
    if got == after:
        outcome = "after"
    elif current is not None and got == current:
        outcome = "before"
    elif current is None and got[0] == "none":
        outcome = "no store yet"
    else:
        sys.exit(f"kill {k + 1}: {'fresh' if fresh else 'incremental'} build {state}->{target} killed "
                 f"after {delay:.2f} s left a store that answers neither way: {got[1][:300]}")
    counts[outcome] += 1
    if outcome == "after":
        state, current = target, after
    if state is None:
        index(store, target)      # finish it, so later kills hit incremental builds too
        state, current = target, answers(store)
    print(f"kill {k + 1:>3}: {'fresh      ' if fresh else 'incremental'} {before or '-'} -> {target} "
          f"at {delay:5.2f} s{' (had finished)' if finished else ''}: {outcome}")
print(f"{kills} kills: every store answered as before or as after ({counts})")
PY
