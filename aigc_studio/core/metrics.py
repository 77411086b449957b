"""Distances between sets of image features: Fréchet distance (FID) and kernel distance (KID).

No Inception weights can be had offline, so AIGC Studio computes both in the feature space of a small
classifier trained on the emoji/icon labels (`export/eval/fid.py`) and calls them *domain* FID and *domain*
KID. The maths is the usual one:

- FID (Heusel et al. 2017): ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^1/2), with the trace of the matrix
  square root taken as the sum of square roots of the eigenvalues of S1^1/2 S2 S1^1/2 (symmetric, so
  `eigvalsh` suffices and no scipy is needed).
- KID (Binkowski et al. 2018): the unbiased MMD^2 with the cubic polynomial kernel
  k(x, y) = (x.y / d + 1)^3, averaged over random subsets; reported with its standard deviation.

Both are biased by the number of samples (FID strongly), so compare figures computed with the same counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FeatureStats:
    mean: np.ndarray        # (D,)
    cov: np.ndarray         # (D, D)
    count: int


def feature_stats(features: np.ndarray) -> FeatureStats:
    f = _check(features, "features")
    if len(f) < 2:
        raise ValueError("statistics need at least 2 feature vectors")
    return FeatureStats(f.mean(axis=0), np.cov(f, rowvar=False), len(f))


def _check(features: np.ndarray, what: str) -> np.ndarray:
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] == 0 or f.shape[1] == 0:
        raise ValueError(f"{what} must be a non-empty (N, D) array, not shape {f.shape}")
    if not np.isfinite(f).all():
        raise ValueError(f"{what} contain NaN or infinite values")
    return f


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((m + m.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def frechet_distance(a: FeatureStats, b: FeatureStats) -> float:
    """FID between two Gaussians fitted to features (>= 0, 0 for equal statistics)."""
    if a.mean.shape != b.mean.shape:
        raise ValueError(f"feature sizes differ: {a.mean.shape[0]} and {b.mean.shape[0]}")
    s1 = _sqrt_psd(a.cov)
    inner = s1 @ b.cov @ s1
    tr_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0.0, None)).sum())
    diff = a.mean - b.mean
    return max(0.0, float(diff @ diff + np.trace(a.cov) + np.trace(b.cov) - 2.0 * tr_sqrt))


def kernel_distance(x: np.ndarray, y: np.ndarray, *, subsets: int = 50, subset_size: int = 1000,
                    seed: int = 0) -> tuple[float, float]:
    """KID: (mean, std) of the unbiased polynomial-kernel MMD^2 over `subsets` random subsets of
    min(subset_size, len(x), len(y)) vectors from each set. Deterministic for a given seed."""
    x = _check(x, "features")
    y = _check(y, "reference features")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature sizes differ: {x.shape[1]} and {y.shape[1]}")
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ValueError("KID needs at least 2 vectors in each set")
    d = x.shape[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        xs = x[rng.choice(len(x), m, replace=False)]
        ys = y[rng.choice(len(y), m, replace=False)]
        kxx = (xs @ xs.T / d + 1) ** 3
        kyy = (ys @ ys.T / d + 1) ** 3
        kxy = (xs @ ys.T / d + 1) ** 3
        values.append((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                      - 2 * kxy.mean())
    v = np.asarray(values)
    return float(v.mean()), float(v.std())
