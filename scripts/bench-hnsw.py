"""hnswlib on the vectors and queries benches/hnsw_scale.rs wrote, single thread, same
parameters (M = 16, ef_construction = 200, inner product), then ours and hnswlib side by side.
Usage: bench-hnsw.py OUT   (run by scripts/bench-hnsw.sh)"""

import json
import sys
import time

import hnswlib
import numpy as np

# Finer between 256 and 384, where recall on these vectors jumps (clusters of ~300 rows);
# beyond 768 for 1M, where recall climbs slowly up there (the same list as hnsw_scale.rs).
EFS = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 288, 320, 352, 384, 512, 768, 1024, 1536, 2048]
K = 10


def at_recall(table, target):
    """QPS of the cheapest ef reaching `target` recall@10 (None if none does)."""
    ok = [row for row in table if row["recall"] >= target]
    return (ok[0]["ef"], ok[0]["qps"]) if ok else (None, None)


def main(out):
    base = np.load(f"{out}/base.npy")
    queries = np.load(f"{out}/queries.npy")
    with open(f"{out}/truth.json") as f:
        truth = [set(t) for t in json.load(f)]
    with open(f"{out}/ours.json") as f:
        ours = json.load(f)
    n, dim = base.shape

    index = hnswlib.Index(space="ip", dim=dim)
    index.init_index(max_elements=n, M=16, ef_construction=200, random_seed=100)
    index.set_num_threads(1)
    t = time.perf_counter()
    index.add_items(base, np.arange(n), num_threads=1)
    build = time.perf_counter() - t
    print(f"hnswlib {hnswlib.__version__ if hasattr(hnswlib, '__version__') else ''}: "
          f"build {build:.1f} s ({1000 * build / n:.2f} ms per vector), single thread")
    print(f"{'ef':>5} {'recall@10':>10} {'QPS':>10} {'ms/query':>12}")
    table = []
    for ef in EFS:
        index.set_ef(ef)
        t = time.perf_counter()
        labels, _ = index.knn_query(queries, k=K, num_threads=1)
        secs = time.perf_counter() - t
        found = sum(len(truth[i] & set(labels[i].tolist())) for i in range(len(queries)))
        recall = found / (K * len(queries))
        table.append({"ef": ef, "recall": recall, "qps": len(queries) / secs})
        print(f"{ef:>5} {recall:>10.4f} {len(queries) / secs:>10.0f} {1000 * secs / len(queries):>12.3f}")

    print()
    print(f"side by side, {n} vectors, {len(queries)} queries, single thread:")
    print(f"{'':>10} {'build s':>8} {'ef@0.95':>8} {'QPS@0.95':>9} {'ef@0.99':>8} {'QPS@0.99':>9}")
    for name, tab, b in [("tweetsim", ours["table"], ours["build_s"] or float("nan")), ("hnswlib", table, build)]:
        e95, q95 = at_recall(tab, 0.95)
        e99, q99 = at_recall(tab, 0.99)
        fmt = lambda v, f: "-" if v is None else format(v, f)
        print(f"{name:>10} {b:>8.1f} {fmt(e95, 'd'):>8} {fmt(q95, '.0f'):>9} {fmt(e99, 'd'):>8} {fmt(q99, '.0f'):>9}")


if __name__ == "__main__":
    main(sys.argv[1])
