"""Mean land slope of labelled regions (reach catchments) in one pass over the grid."""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def mean_slope_by_label(z: np.ndarray, label: np.ndarray, n_labels: int,
                        cellsize: float) -> np.ndarray:
    """Mean slope magnitude (m/m) of the cells of each label 1…n_labels (index label − 1).

    The slope of a cell is |∇z| from central differences, one-sided at the grid edge and next
    to nodata (NaN); a cell with no valid neighbour along an axis has no gradient along it.
    Cells with label ≤ 0 or NaN elevation are skipped; a label without cells gets 0.

    References
    ----------
    Horn, B.K.P. (1981) Hill shading and the reflectance map. Proc. IEEE 69(1), 14-47 (slope
    from finite differences; here the simple central-difference form, as numpy.gradient).
    """
    nr, nc = z.shape
    sums = np.zeros(n_labels + 1, np.float64)
    counts = np.zeros(n_labels + 1, np.int64)
    for r in range(nr):
        for c in range(nc):
            lab = label[r, c]
            zc = z[r, c]
            if lab <= 0 or math.isnan(zc):
                continue
            sums[lab] += math.sqrt(squared_slope(z, r, c, cellsize))
            counts[lab] += 1
    out = np.zeros(n_labels, np.float64)
    for k in range(1, n_labels + 1):
        if counts[k] > 0:
            out[k - 1] = sums[k] / counts[k]
    return out


@njit(cache=True, inline="always")
def squared_slope(z: np.ndarray, r: int, c: int, cellsize: float) -> float:
    """|∇z|² at cell (r, c): central differences, one-sided at the edge and next to NaN."""
    nr, nc = z.shape
    zc = z[r, c]
    gx = axis_gradient(z[r, c - 1] if c > 0 else np.nan, zc,
                       z[r, c + 1] if c < nc - 1 else np.nan, cellsize)
    gy = axis_gradient(z[r - 1, c] if r > 0 else np.nan, zc,
                       z[r + 1, c] if r < nr - 1 else np.nan, cellsize)
    return gx * gx + gy * gy


@njit(cache=True, inline="always")
def axis_gradient(before: float, here: float, after: float, cellsize: float) -> float:
    """Slope along one axis: central difference, one-sided where a neighbour is NaN/absent."""
    has_before = not math.isnan(before)
    has_after = not math.isnan(after)
    if has_before and has_after:
        return (after - before) / (2.0 * cellsize)
    if has_after:
        return (after - here) / cellsize
    if has_before:
        return (here - before) / cellsize
    return 0.0
