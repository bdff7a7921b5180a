#!/usr/bin/env python3
"""Fit the degree-5 polynomial the AVX-512 kernels use for e^r on
|r| <= ln2/2 (crates/ferrolite-kernels/src/optimized/elementwise.rs,
`EXP_P5`), and report its error in f32 arithmetic with FMAs.

e^r = 1 + r * (c1 + r * (c2 + r * (c3 + r * (c4 + r * c5)))), with the
constant term fixed at 1 so that e^0 is exact. The fit minimises the
largest relative error (Lawson's iteratively reweighted least squares on
Chebyshev nodes, which converges to the minimax fit).

usage: python3 tools/fit_exp_poly.py   (needs numpy)
"""
import numpy as np

HALF_LN2 = np.log(2) / 2


def fit(degree=5, nodes=4001, iterations=200):
    r = np.cos(np.linspace(0, np.pi, nodes)) * HALF_LN2
    f = np.exp(r)
    basis = np.stack([r**k for k in range(1, degree + 1)], 1)
    w = np.ones_like(r)
    for _ in range(iterations):
        scale = w / f  # relative error, weighted
        c, *_ = np.linalg.lstsq(basis * scale[:, None], (f - 1) * scale, rcond=None)
        err = np.abs((1 + basis @ c - f) / f)
        w = w * err
        w /= w.sum()
    return c, err.max()


def f32_error(coeffs):
    """Largest relative error of the f32 Horner evaluation with FMAs
    (each FMA rounded once, emulated in float64)."""
    c = [np.float32(x) for x in coeffs]
    r = np.linspace(-HALF_LN2, HALF_LN2, 400001).astype(np.float32)

    def fma(a, b, d):
        return (a.astype(np.float64) * b.astype(np.float64) + np.float64(d)).astype(np.float32)

    p = np.full_like(r, c[-1])
    for k in range(len(c) - 2, -1, -1):
        p = fma(p, r, c[k])
    y = fma(p, r, 1.0)
    want = np.exp(r.astype(np.float64))
    return np.max(np.abs(y - want) / want)


if __name__ == "__main__":
    coeffs, exact = fit()
    print("c1..c5 (f32):", ", ".join(repr(float(np.float32(x))) for x in coeffs))
    print(f"max relative error: {exact:.3g} exact arithmetic, {f32_error(coeffs):.3g} in f32")
