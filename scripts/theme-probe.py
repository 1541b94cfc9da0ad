#!/usr/bin/env python3
"""How far MiniLM's tweet vectors can separate the guided themes when the labels are given:
a supervised ceiling for `tweetsim topics --themes` (which only gets the names).

A logistic regression (C = 1, classes balanced; fixed, not tuned) is trained on hand labels
and scored on labels it did not see: one hand-labelled set → the other, both ways, and 10-fold
cross-validation over both sets pooled. Features are the tweet vectors with the corpus mean
and top principal component removed, then mixed 0.7 own / 0.3 mean of the 5 nearest
neighbours, as guided mode reads them (also reported without the mixing).

Needs numpy and scikit-learn (the venv of scripts/st-venv.sh has both).

Usage:
  tweetsim embed --out /tmp/emb.npy
  scripts/theme-probe.py /tmp/emb.npy tests/data/theme-labels.tsv tests/data/theme-labels-2.tsv
"""
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

THEMES = ["tesla", "llm", "teaching", "image generation", "speech"]


def load_vectors(npy):
    vectors = np.load(npy).astype(np.float64)
    ids = open(npy[: -len(".npy")] + ".ids").read().split()
    first = {}
    for row, i in enumerate(ids):
        first.setdefault(i, row)  # the corpus repeats some tweets: keep the first
    rows = sorted(first.values())
    return vectors[rows], [ids[r] for r in rows]


def features(v, mix):
    centred = v - v.mean(0)
    top = np.linalg.eigh(centred.T @ centred)[1][:, -1]
    x = centred - np.outer(centred @ top, top)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    if mix:
        sims = x @ x.T
        np.fill_diagonal(sims, -np.inf)
        near = np.argsort(-sims, axis=1, kind="stable")[:, :5]
        x = 0.7 * x + 0.3 * x[near].mean(1)
    return x


def load_labels(path, row_of):
    out = []
    for line in open(path, encoding="utf-8"):
        if not line.startswith("#"):
            f = line.split("\t")
            out.append((row_of[f[0]], f[2]))
    return out


def f1(labels, predicted):
    scores = []
    for t in THEMES:
        tp = sum(l == t and p == t for l, p in zip(labels, predicted))
        fp = sum(l != t and p == t for l, p in zip(labels, predicted))
        fn = sum(l == t and p != t for l, p in zip(labels, predicted))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return scores


def row(name, scores):
    cells = " | ".join(f"{s:.2f}" for s in scores)
    print(f"| {name} | {cells} | {np.mean(scores):.2f} |")


def main():
    npy, first, second = sys.argv[1:4]
    vectors, ids = load_vectors(npy)
    row_of = {i: r for r, i in enumerate(ids)}
    a, b = load_labels(first, row_of), load_labels(second, row_of)
    print("| features, split | " + " | ".join(THEMES) + " | mean |")
    print("| --- " * (len(THEMES) + 2) + "|")
    for mix in (False, True):
        x = features(vectors, mix)
        tag = "smoothed" if mix else "plain"
        model = lambda: LogisticRegression(C=1.0, max_iter=5000, class_weight="balanced")
        for (train, test, split) in ((a, b, "set 1 → set 2"), (b, a, "set 2 → set 1")):
            fit = model().fit(x[[r for r, _ in train]], [l for _, l in train])
            predicted = fit.predict(x[[r for r, _ in test]])
            row(f"{tag}, {split}", f1([l for _, l in test], predicted))
        both = a + b
        labels = [l for _, l in both]
        folds = StratifiedKFold(10, shuffle=True, random_state=0)
        predicted = cross_val_predict(model(), x[[r for r, _ in both]], labels, cv=folds)
        row(f"{tag}, both sets, 10-fold", f1(labels, predicted))


if __name__ == "__main__":
    main()
