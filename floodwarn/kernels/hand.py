"""Height Above the Nearest Drainage and reach catchments."""

from __future__ import annotations

import numpy as np
from numba import njit

from floodwarn.kernels.d8 import code_offset_table


@njit(cache=True)
def height_above_nearest_drainage(
    z: np.ndarray, flowdir: np.ndarray, reach_id: np.ndarray, drain: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """HAND, the drainage cell and the reach catchment of every cell.

    Each cell follows its D8 path down to the first stream cell (``reach_id > 0``); its HAND is
    its elevation minus that cell's elevation, and its catchment is that cell's reach. Paths are
    followed once: a walk stops at the first cell already resolved and hands the answer back up
    the cells it passed (path compression), so the cost is O(N).

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
    unresolved = -2
    drain[:] = unresolved
    hand = np.empty(n, np.float32)
    catchment = np.empty(n, np.int32)
    stack = np.empty(4096, np.int64)
    nan32 = np.float32(np.nan)
    for i in range(n):
        if drain[i] != unresolved:
            continue
        top = 0
        j = i
        while True:
            if drain[j] != unresolved:
                target = drain[j]
                break
            if rid[j] > 0:
                drain[j] = j
                hand[j] = 0.0
                catchment[j] = rid[j]
                target = j
                break
            d = fd[j]
            if d == 0 or d == 255:
                drain[j] = -1
                hand[j] = nan32
                catchment[j] = 0
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
            for t in range(top):
                c = stack[t]
                drain[c] = target
                hand[c] = zf[c] - zt
                catchment[c] = rt
        else:
            for t in range(top):
                c = stack[t]
                drain[c] = -1
                hand[c] = nan32
                catchment[c] = 0
    return hand.reshape(nr, nc), catchment.reshape(nr, nc)
