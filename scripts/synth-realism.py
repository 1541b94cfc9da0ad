"""Neighbourhood statistics of the synthetic vectors beside the real embeddings of the same
synthetic texts. Usage: synth-realism.py OUT   (run by scripts/synth-realism.sh)

For 500 rows of each set (leave-one-out, exact search): mean cosine of the 1st and 10th
nearest neighbour, the median gap between the 10th and 11th (near-ties make recall@10 by id
hard), the median local intrinsic dimension (Levina–Bickel MLE over the 20 nearest), and
hnswlib's recall@10 (M = 16, ef_construction = 200) at ef 16 and 64. The synthetic vectors'
noise (`synth::NOISE`) was chosen with it: 0.012 matches the real embeddings' statistics."""

import sys

import hnswlib
import numpy as np

QUERIES = 500
LID_K = 20


def unit(x):
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def stats(name, x):
    rng = np.random.default_rng(0)
    rows = rng.choice(len(x), QUERIES, replace=False)
    sims = x[rows] @ x.T
    sims[np.arange(QUERIES), rows] = -np.inf
    top = -np.sort(-sims, axis=1)[:, : LID_K + 1]
    dist = np.sqrt(np.maximum(2 - 2 * top, 1e-12))
    lid = -1 / np.mean(np.log(dist[:, : LID_K - 1] / dist[:, LID_K - 1 : LID_K]), axis=1)
    truth = np.argsort(-sims, axis=1)[:, :10]
    index = hnswlib.Index(space="ip", dim=x.shape[1])
    index.init_index(len(x), M=16, ef_construction=200, random_seed=1)
    index.add_items(x, np.arange(len(x)))
    index.set_num_threads(1)
    recall = {}
    for ef in (16, 64):
        index.set_ef(ef)
        labels, _ = index.knn_query(x[rows], k=11)
        found = [[l for l in ls if l != r][:10] for ls, r in zip(labels, rows)]
        recall[ef] = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)])
    print(
        f"| {name} | {top[:, 0].mean():.3f} | {top[:, 9].mean():.3f} | "
        f"{np.median(top[:, 9] - top[:, 10]):.4f} | {np.median(lid):.1f} | "
        f"{recall[16]:.3f} | {recall[64]:.3f} |"
    )


def main(out):
    real = unit(np.load(f"{out}/real.npy"))
    synth = unit(np.load(f"{out}/synth.npy"))
    bundled = unit(np.load(f"{out}/bundled.npy"))
    n = len(real)
    print(f"{n} synthetic tweets; cosine of each synthetic vector with the real embedding of "
          f"its text: median {np.median((real * synth).sum(1)):.3f}")
    print()
    print("| vectors | NN1 cos | NN10 cos | NN10−NN11 gap | LID | hnswlib recall@10 ef 16 | ef 64 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    stats("real embeddings of the synthetic texts", real)
    stats("`synth::Halves`: head and tail embeddings, token-weighted, + N(0, 0.012²)", synth)
    # The generator before it: whole-tweet embeddings of the two parents, mixed 0.7 / 0.3,
    # with isotropic noise.
    rng = np.random.default_rng(5)
    a = bundled[rng.integers(0, len(bundled), n)]
    b = bundled[rng.integers(0, len(bundled), n)]
    noise = 0.02 * rng.standard_normal(a.shape).astype(np.float32)
    stats("previous generator: 0.7·a + 0.3·b + N(0, 0.02²)", unit(0.7 * a + 0.3 * b + noise))


if __name__ == "__main__":
    main(sys.argv[1])
