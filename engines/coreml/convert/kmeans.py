"""Fast, seeded 1-D k-means for LUT palettization.

coremltools' own "kmeans" mode runs scikit-learn's KMeans once per channel group (about
0.1 s each: some 40 minutes for a 135M model on two cores). Scalar palettization is a 1-D
problem, so the same algorithm — k-means++ seeding (greedy, with 2 + log k candidates per
pick, as scikit-learn does) followed by Lloyd iterations — runs on the sorted unique values
of the group with prefix sums: each Lloyd step is O(k log n). Quality matches scikit-learn's
(see tests); results are deterministic (fixed seed) and memoised, so the ``infer`` and
``prefill`` functions of a chunk get identical tables (which lets the multifunction package
store them once) for the price of one.
"""

from __future__ import annotations

import hashlib

import numpy as np


def _lloyd(u: np.ndarray, n_cum: np.ndarray, s_cum: np.ndarray, centers: np.ndarray, max_iter: int) -> np.ndarray:
    for _ in range(max_iter):
        edges = np.concatenate([[0], np.searchsorted(u, (centers[:-1] + centers[1:]) / 2, side="right"), [len(u)]])
        count = n_cum[edges[1:]] - n_cum[edges[:-1]]
        total = s_cum[edges[1:]] - s_cum[edges[:-1]]
        new = np.sort(np.where(count > 0, total / np.maximum(count, 1), centers))
        if np.array_equal(new, centers):
            break
        centers = new
    return centers


def _seed(u: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ over weighted points ``u``."""
    trials = 2 + int(np.log(k))
    first = u[rng.choice(len(u), p=w / w.sum())]
    centers = [first]
    d2 = (u - first) ** 2
    for _ in range(k - 1):
        potential = w * d2
        total = potential.sum()
        if total <= 0:
            break
        candidates = np.minimum(np.searchsorted(np.cumsum(potential), rng.random(trials) * total), len(u) - 1)
        trial_d2 = np.minimum(d2[None, :], (u[None, :] - u[candidates][:, None]) ** 2)
        best = int(np.argmin(trial_d2 @ w))
        centers.append(u[candidates[best]])
        d2 = trial_d2[best]
    return np.sort(np.asarray(centers, dtype=np.float64))


def kmeans_lut(values: np.ndarray, nbits: int, *, seed: int = 0, max_iter: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Lookup table (2**nbits,) in ``values``' dtype and uint8 indices (values.size,)."""
    k = 1 << nbits
    uniq, inverse, counts = np.unique(values.reshape(-1), return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    u = uniq.astype(np.float64)
    if len(u) <= k:
        lut = np.concatenate([u, np.full(k - len(u), u[-1])])
        return lut.astype(values.dtype), inverse.astype(np.uint8)
    w = counts.astype(np.float64)
    centers = _seed(u, w, k, np.random.default_rng(seed))
    if len(centers) < k:  # fewer distinct clusters than entries: pad with the last value
        centers = np.sort(np.concatenate([centers, np.full(k - len(centers), centers[-1])]))
    n_cum = np.concatenate([[0.0], np.cumsum(w)])
    s_cum = np.concatenate([[0.0], np.cumsum(w * u)])
    lut = _lloyd(u, n_cum, s_cum, centers, max_iter).astype(values.dtype)
    lut64 = lut.astype(np.float64)
    nearest = np.searchsorted((lut64[:-1] + lut64[1:]) / 2, u)
    return lut, nearest[inverse].astype(np.uint8)


class KMeansLUT:
    """``lut_function`` for coremltools' custom palettization mode, memoised by content."""

    def __init__(self, nbits: int) -> None:
        self.nbits = nbits
        self._cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self.computed = 0
        self.reused = 0

    def __call__(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        data = np.ascontiguousarray(values)
        key = (data.dtype.str, data.shape, hashlib.sha1(data.tobytes()).hexdigest())
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = kmeans_lut(data, self.nbits)
            self.computed += 1
        else:
            self.reused += 1
        return hit[0].copy(), hit[1].copy()
