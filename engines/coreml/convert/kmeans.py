"""Weighted 1-D k-means for LUT palettization, every channel group of a weight at once.

Scalar palettization clusters each group's values on a line, so k-means needs no distance
matrices. Each group's values are sorted (or, for groups of more than
:data:`EXACT_VALUES`, put into a fine histogram of :data:`BINS` bins); a Lloyd step is then
arithmetic on prefix sums of the weights and weight x values for all groups together
(numpy, no per-group Python loop), boundaries found by one batched binary search. Centres start at the quantiles of density^(1/3), the
point density of the optimal fine quantizer, and the final assignment of every value to
its nearest centre is exact.

Each value may carry a weight: the importance of its input channel measured on a
calibration text (the mean square activation it multiplies), so the error is spent where
the activations are small — the idea of sensitivity-weighted k-means and AWQ.
"""

from __future__ import annotations

import numpy as np


#: rows of up to this many values are clustered exactly (every value a point of the Lloyd
#: steps: per-row tables); longer ones over a histogram of :data:`BINS` bins, assigned whole
EXACT_VALUES = 8192
BINS = 2048
#: a share of uniform density mixed into the initial one, so sparse tails get centres too
FLOOR = 0.3
#: rows clustered together (512 rows of 576 values: a few MB, which stay in the CPU's cache)
CHUNK_ROWS = 512


class SortedRows:
    """Each row of a row-sorted (R, N) array, shifted into an interval of its own on one flat
    line, so that a single ``np.searchsorted`` answers queries for every row at once."""

    def __init__(self, rows: np.ndarray) -> None:
        n_rows, self.n = rows.shape
        self.lo, hi = float(rows.min()), float(rows.max())
        self.margin = 0.25 * (hi - self.lo) + 1.0
        self.hi = hi + self.margin
        self.offsets = (np.arange(n_rows, dtype=np.float64) * (hi - self.lo + 4.0 * self.margin))[:, None]
        self.flat = (rows - self.lo + self.offsets).ravel()
        self.starts = (np.arange(n_rows) * self.n)[:, None]

    def search(self, queries: np.ndarray, side: str = "left") -> np.ndarray:
        """``np.searchsorted(rows[r], queries[r], side)`` for every row ``r``; ``queries`` (R, M) or (R,)."""
        q = queries if queries.ndim == 2 else queries[:, None]
        q = np.clip(q, self.lo - self.margin, self.hi)  # just outside the row's own span at most
        pos = np.searchsorted(self.flat, (q - self.lo + self.offsets).ravel(), side=side).reshape(q.shape) - self.starts
        pos = np.clip(pos, 0, self.n)
        return pos if queries.ndim == 2 else pos[:, 0]


def kmeans_rows(values: np.ndarray, nbits: int, weights: np.ndarray | None = None, *, max_iter: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Cluster each row of ``values`` (R, N) into ``2**nbits`` centres.

    ``weights`` (broadcastable to ``values``) weigh each value's squared error. Returns the
    centres (R, 2**nbits), sorted, float64, and each value's centre index (R, N) uint8. Rows
    go :data:`CHUNK_ROWS` at a time (each row's result is its own; the chunks only keep the
    arrays small enough to stay in the CPU's cache)."""
    x = np.asarray(values, dtype=np.float64)
    w = np.ones_like(x) if weights is None else np.broadcast_to(np.asarray(weights, dtype=np.float64), x.shape)
    parts = [_kmeans_chunk(x[a : a + CHUNK_ROWS], w[a : a + CHUNK_ROWS], 1 << nbits, max_iter) for a in range(0, len(x), CHUNK_ROWS)]
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([c for c, _ in parts]), np.concatenate([i for _, i in parts])


def _kmeans_chunk(x: np.ndarray, w: np.ndarray, k: int, max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    n_rows, n = x.shape
    if n <= k:  # a table entry for every value: exact (small groups of short rows, e.g. 8 bits)
        ordered = np.sort(x, axis=1)
        centers = np.concatenate([ordered, np.repeat(ordered[:, -1:], k - n, axis=1)], axis=1)
        return centers, np.argsort(np.argsort(x, axis=1, kind="stable"), axis=1).astype(np.uint8)
    w = w + 1e-9 * w.mean(axis=1, keepdims=True) + 1e-300  # no weightless value
    points, mass, length = _points(x, w)
    zero = np.zeros((n_rows, 1))
    cw = np.concatenate([zero, np.cumsum(mass, axis=1)], axis=1)
    cwx = np.concatenate([zero, np.cumsum(mass * points, axis=1)], axis=1)

    root = np.cbrt(mass / length) * length  # density^(1/3), integrated over each point's share of the line
    density = np.cumsum(root + FLOOR * root.mean(axis=1, keepdims=True), axis=1)
    targets = density[:, -1:] * (np.arange(k) + 0.5) / k
    nb = points.shape[1]
    first = np.minimum(SortedRows(density).search(targets), nb - 1)
    centers = np.take_along_axis(points, first, axis=1)
    on_points = SortedRows(points)
    _spread(points, on_points, centers)
    scale = float(np.max(points[:, -1] - points[:, 0])) or 1.0
    final = centers  # rows leave the Lloyd steps once their clusters stop changing; their centres are final
    left = np.arange(n_rows)  # the rows still moving, and their arrays below
    cw, cwx = cw.ravel(), cwx.ravel()
    starts = (np.arange(n_rows) * (nb + 1))[:, None]
    last = None
    for _ in range(max_iter):
        edges = on_points.search((centers[:, :-1] + centers[:, 1:]) / 2)
        if last is not None:
            settled = (edges == last).all(axis=1)
            if settled.all():
                break  # the same clusters as last time: the centres cannot move
            if settled.sum() * 2 >= len(settled):  # half have settled: go on with the others only
                final[left[settled]] = centers[settled]
                keep = ~settled
                left, points, centers, edges, starts = left[keep], points[keep], centers[keep], edges[keep], starts[: keep.sum()]
                cw = cw.reshape(-1, nb + 1)[keep].ravel()
                cwx = cwx.reshape(-1, nb + 1)[keep].ravel()
                on_points = SortedRows(points)
        last = edges
        bounds = np.concatenate([np.zeros((len(edges), 1), dtype=edges.dtype), edges, np.full((len(edges), 1), nb)], axis=1) + starts
        at_w, at_wx = cw[bounds], cwx[bounds]
        count, total = at_w[:, 1:] - at_w[:, :-1], at_wx[:, 1:] - at_wx[:, :-1]
        filled = count > 1e-250
        new = np.sort(np.where(filled, total / np.where(filled, count, 1.0), centers), axis=1)
        moved = np.abs(new - centers).max()
        centers = new
        if moved <= 1e-9 * scale:
            break
    final[left] = centers
    centers = final
    mids = (centers[:, :-1] + centers[:, 1:]) / 2
    index = SortedRows(mids).search(x)  # exact: the number of midpoints below each value
    return centers, index.astype(np.uint8)


def _spread(points: np.ndarray, on_points: SortedRows, centers: np.ndarray) -> None:
    """Make each row's starting centres distinct values of its points, in place: a centre on a
    value already taken moves to the next value up, and those pushed past the top move back
    down below their neighbour (rows with fewer distinct values than centres keep repeats).
    Works on each value's rank among the row's distinct values."""
    n_rows, nb = points.shape
    k = centers.shape[1]
    rank = np.concatenate([np.zeros((n_rows, 1), dtype=np.int64), np.cumsum(points[:, 1:] > points[:, :-1], axis=1)], axis=1)
    top = rank[:, -1:]
    wanted = np.take_along_axis(rank, np.minimum(on_points.search(centers), nb - 1), axis=1)
    steps = np.arange(k)
    wanted = np.maximum.accumulate(wanted - steps, axis=1) + steps  # strictly increasing
    wanted = np.clip(np.minimum(wanted, top - (k - 1 - steps)), 0, top)  # room for the ones above
    centers[:] = np.take_along_axis(points, np.minimum(SortedRows(rank).search(wanted), nb - 1), axis=1)


def _points(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the Lloyd steps move over, each row sorted: (positions, weight at each, the share of
    the line each stands for). Rows of up to :data:`EXACT_VALUES` values: the values
    themselves (exact steps); longer rows: a fine histogram of :data:`BINS` bins."""
    n_rows, n = x.shape
    if n <= EXACT_VALUES:
        order = np.argsort(x, axis=1, kind="stable")
        points, mass = np.take_along_axis(x, order, axis=1), np.take_along_axis(w, order, axis=1)
        gaps = np.diff(points, axis=1)
        length = np.concatenate([gaps[:, :1], (gaps[:, 1:] + gaps[:, :-1]) / 2, gaps[:, -1:]], axis=1)
        tiny = 1e-12 * np.maximum(points[:, -1:] - points[:, :1], 1e-300)
        return points, mass, np.maximum(length, tiny)
    lo, hi = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
    width = np.where(hi > lo, (hi - lo) / BINS, 1.0)
    bins = np.minimum(((x - lo) / width).astype(np.int64), BINS - 1)
    flat = (bins + (np.arange(n_rows) * BINS)[:, None]).ravel()
    mass = np.bincount(flat, weights=w.ravel(), minlength=n_rows * BINS).reshape(n_rows, BINS)
    moment = np.bincount(flat, weights=(w * x).ravel(), minlength=n_rows * BINS).reshape(n_rows, BINS)
    centres = lo + (np.arange(BINS) + 0.5) * width
    points = np.where(mass > 0, moment / np.where(mass > 0, mass, 1.0), centres)  # each bin at its values' mean
    return points, mass, np.broadcast_to(width, points.shape)


def kmeans_lut(values: np.ndarray, nbits: int, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One table for all of ``values``: (2**nbits,) in ``values``' dtype and uint8 indices (values.size,)."""
    w = None if weights is None else np.broadcast_to(weights, values.shape).reshape(1, -1)
    centers, index = kmeans_rows(values.reshape(1, -1), nbits, w)
    return centers[0].astype(values.dtype), index[0]
