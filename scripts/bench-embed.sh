#!/usr/bin/env bash
# Our CPU encoder against sentence-transformers (PyTorch), alternating, on the same strings
# and the same model files, in one run:
#   - the 680 reference tweets (tests/data/reference), and a synthetic set (`tweetsim synth`,
#     default 20,000 tweets) for steady state;
#   - per round: tweets/s of each, their ratio; then the median ratio, tokens/s, and our
#     GFLOP/s as a share of the machine's f32 peak (2 FLOP per multiply-add, 21 MFLOP per
#     token for MiniLM-L6 at these lengths; the peak is measured by examples/fma_peak.rs on
#     all cores, since CPUs with the same instruction set have one or two FMA units per core).
# Both sides: all cores (torch.set_num_threads, our default), length-sorted batches of 32,
# model load excluded, texts embedded verbatim (no tweet cleaning, so both see one string).
# sentence-transformers and torch come from PyPI into target/bench-venv (first run: a few GB,
# minutes), loading the model offline from models/all-MiniLM-L6-v2.
# Usage: scripts/bench-embed.sh [ROUNDS] [SYNTH_TWEETS]     (default 3 and 20000)
# Extra flags for our side go in TWEETSIM_FLAGS, e.g. TWEETSIM_FLAGS="--workers 2".
# On a CPU with AMX (our products then run on its tiles, src/embed/amx.rs) each round also
# times ours with TWEETSIM_AMX=off, the AVX-512 path every other x86-64 CPU takes.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
synth_n=${2:-20000}
cargo build --release --quiet --bin tweetsim --example fma_peak
[ -f models/all-MiniLM-L6-v2/model.safetensors ] || scripts/fetch-model.sh
python=$(scripts/st-venv.sh)
work=target/bench-embed
mkdir -p "$work"
export XDG_CACHE_HOME="$PWD/$work/cache" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
python3 - "$work/ref.jsonl" <<'PY'
import json, sys
texts = json.load(open("tests/data/reference/minilm-tweets-texts.json"))
with open(sys.argv[1], "w") as f:
    for i, t in enumerate(texts):
        # Our JSONL reader decodes HTML entities; escaping '&' hands it back the exact text.
        f.write(json.dumps({"id": i + 1, "text": t["text"].replace("&", "&amp;")}) + "\n")
PY
[ -f "$work/synth-$synth_n.jsonl" ] || target/release/tweetsim -q synth --tweets "$synth_n" --out "$work/synth-$synth_n.jsonl" > /dev/null

"$python" - "$rounds" "$work" "$synth_n" <<'PY'
import json, os, re, shlex, statistics, subprocess, sys, time
rounds, work, synth_n = int(sys.argv[1]), sys.argv[2], sys.argv[3]
flags = shlex.split(os.environ.get("TWEETSIM_FLAGS", ""))
cores = os.cpu_count()
peak_line = subprocess.run(["target/release/examples/fma_peak"], capture_output=True,
                           text=True, check=True).stdout.strip()
peak = float(peak_line.split()[0])  # GFLOP/s

ST = r'''
import json, sys, time, torch
from sentence_transformers import SentenceTransformer
torch.set_num_threads(int(sys.argv[3]))
texts = [json.loads(l)["text"].replace("&amp;", "&") for l in open(sys.argv[1])]
m = SentenceTransformer(sys.argv[2], device="cpu")
m.encode(texts[:64], batch_size=32)
t = time.perf_counter()
m.encode(texts, batch_size=32)
s = time.perf_counter() - t
tokens = sum(len(m.tokenizer(x, truncation=True, max_length=256)["input_ids"]) for x in texts)
print(json.dumps({"rate": len(texts) / s, "tokens": tokens}))
'''

amx = "amx_bf16" in open("/proc/cpuinfo").read() and os.environ.get("TWEETSIM_AMX") not in ("off", "0")

def ours(path, env=None):
    p = subprocess.run(["target/release/tweetsim", *flags, "embed", "--verbatim", "--corpus", path,
                        "--out", f"{work}/ours.npy", "--chunk", "1000000"],
                       capture_output=True, text=True, env=env)
    if p.returncode:
        sys.exit(p.stderr)
    return float(re.search(r"\(([\d.]+) tweets/s", p.stderr).group(1))

def theirs(path):
    p = subprocess.run([sys.executable, "-c", ST, path, "models/all-MiniLM-L6-v2", str(cores)],
                       capture_output=True, text=True)
    if p.returncode:
        sys.exit(p.stderr)
    return json.loads(p.stdout.strip().splitlines()[-1])

print(f"cores {cores}, measured {peak_line}; flags: {' '.join(flags) or '(none)'}")
if amx:
    print("this CPU has AMX: our matrix products run on its tiles (3 bf16 products per f32 one), "
          "so our GFLOP/s can pass the f32 FMA peak; 'avx512' is ours with TWEETSIM_AMX=off")
for name, path in [("680 reference tweets", f"{work}/ref.jsonl"),
                   (f"{synth_n} synthetic tweets", f"{work}/synth-{synth_n}.jsonl")]:
    n = sum(1 for _ in open(path))
    ratios, ours_rates, st_rates, tokens, avx_ratios = [], [], [], 0, []
    for r in range(rounds):
        a = ours(path)
        b = theirs(path)
        tokens = b["tokens"]
        ours_rates.append(a); st_rates.append(b["rate"]); ratios.append(a / b["rate"])
        line = (f"  {name}, round {r + 1}: ours {a:.1f} tweets/s, sentence-transformers "
                f"{b['rate']:.1f} tweets/s, ratio {a / b['rate']:.2f}")
        if amx:
            c = ours(path, env={**os.environ, "TWEETSIM_AMX": "off"})
            avx_ratios.append(c / b["rate"])
            line += f"; avx512 {c:.1f} tweets/s, ratio {c / b['rate']:.2f}"
        print(line)
    med = statistics.median(ours_rates)
    tok_s = med * tokens / n
    gflops = tok_s * 21e6 / 1e9
    print(f"{name}: median ratio {statistics.median(ratios):.2f} (ours {med:.1f}, theirs "
          f"{statistics.median(st_rates):.1f} tweets/s); ours {tok_s:.0f} tokens/s, "
          f"~{gflops:.0f} GFLOP/s = {100 * gflops / peak:.0f}% of f32 peak"
          + (f"; avx512 median ratio {statistics.median(avx_ratios):.2f}" if amx else ""))
PY
