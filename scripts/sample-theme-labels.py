#!/usr/bin/env python3
"""Draws a sample of tweets to label by hand into the guided themes of tests/it/topics.rs.

The sample is fixed by the seed and the corpus alone (never by what tweetsim predicts): for
each theme, up to 12 tweets whose text matches a broad keyword pattern for it, so every theme
has positives to measure; then drawn uniformly from the rest up to 120. Tweets already in an
earlier labels file are skipped, so a second sample is disjoint from the first.

Writes `status id <TAB> entry number <TAB> (label to fill) <TAB> text` rows to stdout.

Usage: scripts/sample-theme-labels.py STORE_GEN/tweets.jsonl SEED [EXCLUDE.tsv ...]
"""
import json
import random
import re
import sys

PATTERNS = {
    "tesla": r"tesla|autopilot|\bfsd\b|optimus|self-driving|ai day",
    "llm": r"\bgpt|\bllms?\b|language model|chatgpt|\bprompt|copilot",
    "teaching": r"lecture|course|video|teach|educat|student|\bclass|zero to hero|makemore|micrograd",
    "image generation": r"stable ?diffusion|dall|diffusion|\bimages?\b|dreambooth|stableboost|\bart\b",
    "speech": r"whisper|speech|audio|podcast|transcri|lexicap",
}
PER_THEME = 12
TOTAL = 120


def main():
    path, seed, excluded = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    tweets = [json.loads(line) for line in open(path, encoding="utf-8")]
    skip = set()
    for f in excluded:
        skip |= {l.split("\t")[0] for l in open(f, encoding="utf-8") if not l.startswith("#")}
    pool = [t for t in tweets if t["id"] not in skip]
    rng = random.Random(seed)
    chosen = []
    for theme, pattern in PATTERNS.items():
        hits = [t for t in pool if re.search(pattern, t["text"], re.I) and t not in chosen]
        chosen += rng.sample(hits, min(PER_THEME, len(hits)))
    rest = [t for t in pool if t not in chosen]
    chosen += rng.sample(rest, min(TOTAL - len(chosen), len(rest)))
    chosen.sort(key=lambda t: int(t["id"]))
    for t in chosen:
        text = " ".join(t["text"].split())
        print(f"{t['id']}\t{t['num']}\t\t{text}")


if __name__ == "__main__":
    main()
