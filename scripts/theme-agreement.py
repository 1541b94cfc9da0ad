#!/usr/bin/env python3
"""Agreement between two hand labellings of the same tweets into the guided themes: how many
labels are the same, and each theme's F1 of one labelling scored against the other (the figure
guided mode is held to). Lists every disagreement.

Usage: scripts/theme-agreement.py FIRST.tsv [FIRST2.tsv ...] -- SECOND.tsv
(each file: `status id <TAB> entry number <TAB> label <TAB> ...` rows, '#' lines skipped)
"""
import sys

THEMES = ["tesla", "llm", "teaching", "image generation", "speech"]


def load(paths):
    labels = {}
    for path in paths:
        for n, line in enumerate(open(path, encoding="utf-8"), 1):
            if line.startswith("#") or not line.strip():
                continue
            f = line.rstrip("\n").split("\t")
            if len(f) < 3 or not f[1].isdigit():
                sys.exit(f"{path}:{n}: expected status id, entry number, label")
            if f[0] in labels:
                sys.exit(f"{path}:{n}: status id {f[0]} is labelled twice")
            labels[f[0]] = (int(f[1]), f[2])
    return labels


def main():
    args = sys.argv[1:]
    if "--" not in args:
        sys.exit(__doc__)
    cut = args.index("--")
    a, b = load(args[:cut]), load(args[cut + 1 :])
    if set(a) != set(b):
        sys.exit(f"the files label different tweets: {len(set(a) ^ set(b))} not in both")
    same = sum(a[i][1] == b[i][1] for i in a)
    print(f"same label: {same} of {len(a)}")
    for t in THEMES:
        tp = sum(a[i][1] == t and b[i][1] == t for i in a)
        only_a = sum(a[i][1] == t and b[i][1] != t for i in a)
        only_b = sum(a[i][1] != t and b[i][1] == t for i in a)
        if tp + only_a + only_b == 0:
            print(f"{t:17s} F1 n/a (neither labelling uses it)")
            continue
        f1 = 2 * tp / (2 * tp + only_a + only_b)
        print(f"{t:17s} F1 {f1:.2f} (both {tp}, first only {only_a}, second only {only_b})")
    for i in sorted(a, key=lambda i: a[i][0]):
        if a[i][1] != b[i][1]:
            print(f"  #{a[i][0]:03d} {i}: {a[i][1]} / {b[i][1]}")


if __name__ == "__main__":
    main()
