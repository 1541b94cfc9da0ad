#!/usr/bin/env bash
# The GPU check of issue 6, in two halves.
#
#   scripts/gpu-check.sh prepare     here, on the build machine: builds the cuda binary
#                                    (scripts/build-cuda.sh), strips and xz-compresses it, and
#                                    writes the model with f16 weights, all into .gpu/ (~55 MiB:
#                                    a device call carries at most 64 MiB, repo included).
#   scripts/gpu-check.sh run         on the GPU machine, from the repo root, with .gpu carried,
#                                    e.g. through the device tool:
#                                      run(command="bash scripts/gpu-check.sh run", carry=[".gpu"])
#
# `run` prints (and writes to $OUT/gpu-check.txt when $OUT is set):
#   - the device;
#   - fidelity: min/mean cosine of our f16 and bf16 embeddings of the 680 reference texts
#     against sentence-transformers' f32 reference (tests/data/reference/);
#   - throughput (tweets/s) of `tweetsim embed` on the 680 bundled tweets, and on 1,000,000
#     synthetic tweets (`tweetsim synth`) at bf16 with token budgets 16k, 64k and 256k;
#   - sentence-transformers (the machine's torch) on the same 1M texts, bf16, for the ratio.
# Environment: N (synthetic tweets, default 1000000), BUDGETS (default "16384 65536 262144"),
# DEVICE (default cuda; `DEVICE=cpu N=3000 BUDGETS=4096 scripts/gpu-check.sh run` rehearses
# everything but the GPU and sentence-transformers on this machine, with the CPU binary).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}

prepare() {
    [ -x target/cuda/release/tweetsim ] && [ -z "${REBUILD:-}" ] || scripts/build-cuda.sh
    # The build must be current: rebuild (incremental) if any source is newer than it.
    if [ -n "$(find src Cargo.toml Cargo.lock -newer target/cuda/release/tweetsim | head -1)" ]; then
        scripts/build-cuda.sh
    fi
    rm -rf .gpu && mkdir -p .gpu/model/1_Pooling
    strip -o .gpu/tweetsim target/cuda/release/tweetsim
    xz -6 -T0 .gpu/tweetsim
    local m=models/all-MiniLM-L6-v2
    [ -f $m/model.safetensors ] || scripts/fetch-model.sh
    cp $m/*.json $m/vocab.txt .gpu/model/
    cp $m/1_Pooling/config.json .gpu/model/1_Pooling/
    python3 scripts/half-weights.py $m/model.safetensors .gpu/model/model.safetensors
    grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
    du -sh .gpu; du -b --max-depth=0 .gpu | awk '{ printf "%.1f MiB to carry (limit 64 MiB with the repo)\n", $1/1048576 }'
}

run() {
    local out=${OUT:-/tmp/gpu-check-out} device=${DEVICE:-cuda} n=${N:-1000000}
    local budgets=${BUDGETS:-16384 65536 262144} work=/tmp/gpu-check
    mkdir -p "$out" "$work"
    : > "$out/gpu-check.txt"
    log() { echo "$@" | tee -a "$out/gpu-check.txt"; }
    local bin=$work/tweetsim
    if [ "$device" = cpu ]; then
        bin=$PWD/target/release/tweetsim
    else
        # The CUDA libraries come with the machine's PyTorch (cu13 wheels); the driver
        # provides libcuda.
        local nv
        nv=$(python3 -c 'import nvidia, os; print(list(nvidia.__path__)[0])')
        export LD_LIBRARY_PATH="$(ls -d "$nv"/cu13/lib "$nv"/*/lib 2>/dev/null | paste -sd:)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        # Unpack once per warm machine.
        if ! cmp -s .gpu/tweetsim.xz "$work/tweetsim.xz"; then
            xz -dc .gpu/tweetsim.xz > "$bin" && chmod +x "$bin" && cp .gpu/tweetsim.xz "$work/"
        fi
        log "device: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader)"
    fi
    local model=$PWD/.gpu/model
    [ -d "$model" ] || model=$PWD/models/all-MiniLM-L6-v2
    export XDG_CACHE_HOME=$work/cache HF_HUB_OFFLINE=1
    local ts=("$bin" --model "$model" --device "$device")
    log "binary: $("$bin" --version); model: $model"

    # Fidelity: the reference texts verbatim, against sentence-transformers' f32 vectors.
    python3 - "$work/ref.jsonl" <<'PY'
import json, sys
texts = json.load(open("tests/data/reference/minilm-tweets-texts.json"))
with open(sys.argv[1], "w") as f:
    for i, t in enumerate(texts):
        # The JSONL reader decodes HTML entities; escaping '&' hands it back the exact text.
        f.write(json.dumps({"id": i + 1, "text": t["text"].replace("&", "&amp;")}) + "\n")
PY
    local dtypes="f16 bf16"
    [ "$device" = cpu ] && dtypes="f32 bf16"
    for dt in $dtypes; do
        "${ts[@]}" -q embed --verbatim --dtype "$dt" --corpus "$work/ref.jsonl" --out "$work/ref-$dt.npy" > /dev/null
        python3 - "$work/ref-$dt.npy" "$dt" <<'PY' | tee -a "$out/gpu-check.txt"
import struct, sys
def load(path):
    b = open(path, "rb").read()
    hlen = struct.unpack("<H", b[8:10])[0]
    shape = b[10:10 + hlen].decode().split("'shape': (")[1].split(")")[0]
    rows, cols = (int(x) for x in shape.split(",") if x.strip())
    vals = struct.unpack(f"<{rows * cols}f", b[10 + hlen:])
    return [vals[i * cols:(i + 1) * cols] for i in range(rows)]
got = load(sys.argv[1])
ref = load("tests/data/reference/minilm-tweets-embeddings.npy")
def cos(a, b):
    d = sum(x * y for x, y in zip(a, b))
    return d / (sum(x * x for x in a) ** 0.5 * sum(y * y for y in b) ** 0.5)
c = [cos(a, b) for a, b in zip(got, ref)]
print(f"fidelity {sys.argv[2]}: min cosine {min(c):.6f}, mean {sum(c) / len(c):.6f} over {len(c)} texts (need >= 0.999)")
PY
    done

    # The bundled corpus: twice, the first run pays for loading the GPU kernels.
    for round in cold warm; do
        log "bundled 680 tweets, $round: $("${ts[@]}" embed --out "$work/bundled.npy" 2>&1 >/dev/null | grep embedded)"
    done

    # 1M synthetic tweets, streamed, per token budget.
    [ -f "$work/synth-$n.jsonl" ] || "$bin" -q synth --tweets "$n" --out "$work/synth-$n.jsonl" > /dev/null
    for b in $budgets; do
        rm -f "$work"/big.*
        local t0 t1
        t0=$(date +%s.%N)
        local line
        line=$("${ts[@]}" embed --corpus "$work/synth-$n.jsonl" --out "$work/big.npy" --batch-tokens "$b" --chunk 65536 2>&1 >/dev/null | grep embedded)
        t1=$(date +%s.%N)
        log "synthetic $n tweets, budget $b tokens: $line; wall incl. load $(python3 -c "print(round($t1 - $t0, 1))") s"
    done
    rm -f "$work"/big.*

    [ "$device" = cpu ] && { log "(cpu rehearsal: sentence-transformers comparison skipped)"; return; }
    python3 - "$work/synth-$n.jsonl" "$model" <<'PY' | tee -a "$out/gpu-check.txt"
import json, sys, time, torch
from sentence_transformers import SentenceTransformer
texts = [json.loads(l)["text"] for l in open(sys.argv[1])]
m = SentenceTransformer(sys.argv[2], device="cuda").to(torch.bfloat16)
m.encode(texts[:20000], batch_size=512, convert_to_tensor=True)  # warm-up
torch.cuda.synchronize()
t = time.perf_counter()
m.encode(texts, batch_size=512, convert_to_tensor=True)
torch.cuda.synchronize()
s = time.perf_counter() - t
print(f"sentence-transformers {__import__('sentence_transformers').__version__}, torch {torch.__version__}, bf16, batch 512: {len(texts)} texts in {s:.1f} s = {len(texts) / s:.0f} texts/s")
PY
}

case "$mode" in
    prepare) prepare ;;
    run) run ;;
    *) sed -n '2,21p' "$0"; exit 2 ;;
esac
