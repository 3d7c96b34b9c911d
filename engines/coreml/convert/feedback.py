"""Error-feedback rounding of a weight onto its lookup tables (GPTQ with a LUT grid).

Plain palettization sends every value to its nearest table entry, so each column's errors
add up in the layer's output. With the inputs a layer saw on a calibration text (their
Gram matrix ``H = X^T X / n``), the rounding can instead go column by column and push
each column's error onto the columns not yet rounded, in the direction that cancels it
in the output (Frantar et al., "GPTQ", 2022; the same update with a non-uniform grid is
what GPTVQ and SqueezeLLM build on). The tables stay those of the weighted k-means; only
which entry each value takes changes. Columns go in order of decreasing importance
("act order"), in blocks whose updates reach the rest of the matrix as one product.
"""

from __future__ import annotations

import numpy as np

#: dampening added to the Gram matrix's diagonal, as a share of its mean (a short
#: calibration text leaves it rank-deficient)
DAMP = 0.05
#: columns rounded between two updates of the rest of the matrix
BLOCK = 32
#: rows rounded together
CHUNK_ROWS = 4096


class _Nearest:
    """The nearest entry of each row's table (sorted) for one column of values: the number of
    the table's midpoints below each value (a comparison per entry beats a binary search on
    tables this short; the midpoints are held entry-major so that each comparison is a row)."""

    def __init__(self, tables: np.ndarray) -> None:
        rows, k = tables.shape
        self.mids = np.ascontiguousarray(((tables[:, :-1] + tables[:, 1:]) / 2).T)
        self.flat = np.ascontiguousarray(tables, dtype=np.float32).ravel()
        self.base = np.arange(rows) * k

    def __call__(self, column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        index = np.add.reduce(self.mids < column.astype(np.float64), axis=0, dtype=np.intp)
        return index, self.flat[self.base + index]


class Factor:
    """What the rounding needs of one Gram matrix ``H`` (in, in): the column order (decreasing
    importance) and the upper Cholesky factor of the dampened ``H^-1`` in that order. Weights
    that read the same inputs (q/k/v; gate/up) share one."""

    def __init__(self, gram: np.ndarray, damp: float = DAMP) -> None:
        import torch

        h = np.asarray(gram, dtype=np.float64).copy()
        cols = h.shape[0]
        diag = np.diag(h).copy()
        dead = diag <= 0
        h[dead, dead] = 1.0
        h[np.diag_indices(cols)] += damp * float(np.mean(diag[~dead])) if (~dead).any() else 1.0
        self.order = np.argsort(-np.diag(h), kind="stable")
        # H^-1 = U^T U without inverting H: with J the reversal, J H J = M M^T (Cholesky) gives
        # H^-1 = (J M^-T J)(J M^-1 J), and U = J M^-1 J is upper triangular
        back = self.order[::-1]
        m = torch.linalg.cholesky(torch.from_numpy(np.ascontiguousarray(h[back][:, back])))
        m_inverse = torch.linalg.solve_triangular(m, torch.eye(cols, dtype=m.dtype), upper=False)
        self.upper = np.ascontiguousarray(m_inverse.numpy()[::-1, ::-1], dtype=np.float32)


def round_with_feedback(rows: np.ndarray, tables: np.ndarray, group: int, factor: Factor) -> np.ndarray:
    """Indices (out, in) uint8 of ``rows`` (out, in) into ``tables`` (out // group, k, sorted;
    rows ``g * group ... (g + 1) * group - 1`` use table ``g``), minimising the output error
    on the inputs ``factor`` was made from. Each row is rounded on its own (the columns'
    errors move along a row), so rows go :data:`CHUNK_ROWS` at a time to stay in the cache."""
    out, cols = rows.shape
    per_row = np.repeat(np.asarray(tables, dtype=np.float64), group, axis=0)
    w = np.asarray(rows, dtype=np.float32)[:, factor.order]
    index = np.empty((out, cols), dtype=np.uint8)
    for a in range(0, out, CHUNK_ROWS):
        index[a : a + CHUNK_ROWS, factor.order] = _round_rows(w[a : a + CHUNK_ROWS], _Nearest(per_row[a : a + CHUNK_ROWS]), factor.upper)
    return index


def _round_rows(w: np.ndarray, nearest: _Nearest, hinv: np.ndarray) -> np.ndarray:
    """The indices of ``w`` (rows, in; its columns in the factor's order)."""
    out, cols = w.shape
    by_column = np.ascontiguousarray(w.T)  # each column one contiguous row
    index = np.empty((cols, out), dtype=np.uint8)
    for i1 in range(0, cols, BLOCK):
        i2 = min(i1 + BLOCK, cols)
        block, hb = by_column[i1:i2].copy(), hinv[i1:i2, i1:i2]
        err = np.empty_like(block)
        for j in range(i2 - i1):
            index[i1 + j], q = nearest(block[j])
            e = (block[j] - q) / hb[j, j]
            block[j + 1 :] -= hb[j, j + 1 :, None] * e
            err[j] = e
        by_column[i2:] -= hinv[i1:i2, i2:].T @ err
    return index.T
