#!/usr/bin/env python3
"""Embeds a store's tweets with any sentence-transformers model folder, in the form
`tweetsim embed --out` writes (OUT.npy, float32 rows, L2-normalised; OUT.ids, one status id per
line), so scripts/theme-probe.py can compare encoders on the same texts.

The text is the one tweetsim embeds (src/corpus/mod.rs, Tweet::embedding_text: leading reply
@handles and t.co links removed; the store already holds entity-decoded text). Check it on
MiniLM: this script's vectors and `tweetsim embed`'s agree to cosine ≥ 0.9999 per row.

Usage (the venv of scripts/st-venv.sh):
  target/bench-venv/bin/python scripts/st-embed.py STORE_GEN/tweets.jsonl MODEL_DIR OUT
"""
import json
import os
import re
import sys

import numpy as np
from sentence_transformers import SentenceTransformer

HANDLE = re.compile(r"@[A-Za-z0-9_]+")


def embedding_text(text):
    rest = text.lstrip()
    while True:
        m = HANDLE.match(rest)
        if not m:
            break
        rest = rest[m.end() :].lstrip()
    lines = []
    for line in rest.split("\n"):
        words = [w for w in line.split(" ") if not w.startswith(("https://t.co/", "http://t.co/"))]
        lines.append(" ".join(words).rstrip())
    out = "\n".join(lines).strip()
    return out or text


def main():
    tweets_jsonl, model_dir, out = sys.argv[1:4]
    tweets = [json.loads(line) for line in open(tweets_jsonl, encoding="utf-8")]
    # Rows removed from the store (tombstones) are not its tweets any more.
    tombstones = os.path.join(os.path.dirname(tweets_jsonl), "tombstones.json")
    if os.path.exists(tombstones):
        dead = set(json.load(open(tombstones)))
        tweets = [t for row, t in enumerate(tweets) if row not in dead]
    model = SentenceTransformer(model_dir, device="cpu")
    vectors = model.encode(
        [embedding_text(t["text"]) for t in tweets],
        batch_size=32,
        normalize_embeddings=True,
        show_progress_bar=False,
    )
    np.save(out + ".npy", vectors.astype(np.float32))
    with open(out + ".ids", "w") as f:
        f.writelines(f"{t['id']}\n" for t in tweets)
    print(f"{out}.npy: {vectors.shape[0]} × {vectors.shape[1]}")


if __name__ == "__main__":
    main()
