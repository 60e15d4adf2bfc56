"""Height Above the Nearest Drainage and reach catchments."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from floodwarn.kernels.d8 import code_offset_table

_UNRESOLVED = -2


@njit(parallel=True, cache=True)
def height_above_nearest_drainage(
    z: np.ndarray, flowdir: np.ndarray, reach_id: np.ndarray, drain: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """HAND, the drainage cell and the reach catchment of every cell.

    Each cell follows its D8 path down to the first stream cell (``reach_id > 0``); its HAND is
    its elevation minus that cell's elevation, and its catchment is that cell's reach. Paths are
    followed once: a walk stops at the first cell already resolved and hands the answer back up
    the cells it passed (path compression), so the cost is O(N). Blocks of rows run in parallel.

    Cells whose path reaches an outlet without meeting a stream have no drainage cell
    (``drain = -1``), HAND NaN and catchment 0; so have nodata cells.

    Parameters
    ----------
    z : float32 (rows, cols), conditioned elevation in m (HAND ≥ 0 because it never rises
        along a flow path).
    flowdir : uint8 (rows, cols), ESRI D8.
    reach_id : int32 (rows, cols), reach of each stream cell, 0 elsewhere.
    drain : int32 or int64 (rows·cols,), work and output array; its content is overwritten.

    Returns
    -------
    (hand, catchment): float32 (rows, cols) in m and int32 (rows, cols) reach ids; ``drain``
    holds the flat index of each cell's drainage cell.

    References
    ----------
    Rennó, C.D., Nobre, A.D., Cuartas, L.A. et al. (2008) HAND, a new terrain descriptor using
    SRTM-DEM. Remote Sensing of Environment 112, 3469-3481.
    Nobre, A.D., Cuartas, L.A., Hodnett, M. et al. (2011) Height Above the Nearest Drainage - a
    hydrologically relevant new terrain model. Journal of Hydrology 404, 13-29.
    """
    nr, nc = flowdir.shape
    n = nr * nc
    fd = flowdir.reshape(n)
    zf = z.reshape(n)
    rid = reach_id.reshape(n)
    offset = code_offset_table(nc)
    drain[:] = _UNRESOLVED
    hand = np.empty(n, np.float32)
    catchment = np.empty(n, np.int32)
    # Blocks of rows walk in parallel. Two threads may walk the same path at the same time:
    # they write the same values, and a reader sees either "unresolved" or the final value.
    n_blocks = max(1, min(nr, 256))
    for block in prange(n_blocks):
        first = (block * nr) // n_blocks * nc
        last = ((block + 1) * nr) // n_blocks * nc
        _resolve_cells(first, last, fd, zf, rid, offset, drain, hand, catchment)
    return hand.reshape(nr, nc), catchment.reshape(nr, nc)


@njit(cache=True)
def _resolve_cells(first, last, fd, zf, rid, offset, drain, hand, catchment):
    """Resolve drainage, HAND and catchment of cells ``first``…``last - 1`` (flat indices)."""
    stack = np.empty(4096, np.int64)
    nan32 = np.float32(np.nan)
    for i in range(first, last):
        if drain[i] != _UNRESOLVED:
            continue
        top = 0
        j = i
        while True:
            resolved = drain[j]
            if resolved != _UNRESOLVED:
                target = resolved
                break
            if rid[j] > 0:
                hand[j] = 0.0
                catchment[j] = rid[j]
                drain[j] = j
                target = j
                break
            d = fd[j]
            if d == 0 or d == 255:
                hand[j] = nan32
                catchment[j] = 0
                drain[j] = -1
                target = -1
                break
            if top == stack.shape[0]:
                bigger = np.empty(2 * top, np.int64)
                bigger[:top] = stack
                stack = bigger
            stack[top] = j
            top += 1
            j = j + offset[d]
        if target >= 0:
            zt = zf[target]
            rt = rid[target]
            for t in range(top - 1, -1, -1):
                c = stack[t]
                hand[c] = zf[c] - zt
                catchment[c] = rt
                drain[c] = target
        else:
            for t in range(top - 1, -1, -1):
                c = stack[t]
                hand[c] = nan32
                catchment[c] = 0
                drain[c] = -1
