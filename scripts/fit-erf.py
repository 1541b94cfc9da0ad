#!/usr/bin/env python3
"""Prints ERF_PIECES for src/simd.rs: erf on [k, k + 1], k = 0..3, as degree-9 polynomials in
x - k - 1/2 (lowest power first), Chebyshev least-squares fits rounded to f32, and the worst
error of their f32 evaluation against scipy's erf.
Usage: target/bench-venv/bin/python scripts/fit-erf.py   (needs numpy and scipy)"""
import numpy as np
from scipy.special import erf

DEGREE = 9
rows, worst = [], 0.0
for k in range(4):
    x = np.linspace(k, k + 1, 20001)
    t = x - (k + 0.5)
    cheb = np.polynomial.chebyshev.chebfit(2 * t, erf(x), DEGREE)
    # Powers of u = 2t, then of t.
    coef = (np.polynomial.chebyshev.cheb2poly(cheb) * 2.0 ** np.arange(DEGREE + 1)).astype(np.float32)
    y = np.zeros_like(t, dtype=np.float32)
    for c in coef[::-1]:
        y = y * t.astype(np.float32) + c
    worst = max(worst, float(np.abs(y - erf(x)).max()))
    rows.append(coef)


def lit(v):
    if abs(v) < 1e-3:
        return np.format_float_scientific(v, unique=True, trim="-")
    return np.format_float_positional(v, unique=True, trim="-")


print(f"const ERF_PIECES: [[f32; {DEGREE + 1}]; 4] = [")
for r in rows:
    print("    [" + ", ".join(lit(v) for v in r) + "],")
print("];")
print(f"// worst |error| on [0, 4]: {worst:.2e}")
