"""What `tweetsim similar "text"` does, as a minimal Python user would write it: load the
same model files with sentence-transformers, embed the query, rank a tweetsim store's vectors
exactly (numpy; no BM25), print the top 10. The baseline of scripts/bench-query.sh.

Usage: python scripts/similar.py STORE QUERY   (from the repository root)
"""
import json
import sys

import numpy as np
from sentence_transformers import SentenceTransformer

store, query = sys.argv[1], sys.argv[2]
gen = json.load(open(f"{store}/manifest.json"))["generation"]
vectors = np.load(f"{store}/{gen}/embeddings.npy", mmap_mode="r")
model = SentenceTransformer("models/all-MiniLM-L6-v2", device="cpu")
q = model.encode([query], normalize_embeddings=True)[0]
scores = vectors @ q
top = np.argsort(-scores)[:10]
lines = open(f"{store}/{gen}/tweets.jsonl").readlines()
for rank, row in enumerate(top, 1):
    tweet = json.loads(lines[row])
    print(f"{rank:>3} {scores[row]:.3f} {tweet['text'][:100]}")
