"""Drainage directions across the flats left by depression filling."""

from __future__ import annotations

import numpy as np
from numba import njit

from floodwarn.kernels.d8 import D8_CODES, D8_COL_STEP, D8_INFLOW_CODE, D8_ROW_STEP

_UNRESOLVED = np.uint8(254)


@njit(cache=True)
def drain_flats(z: np.ndarray, flowdir: np.ndarray) -> int:
    """Give every flat cell a direction towards the nearest way out of its flat, in place.

    After :func:`floodwarn.kernels.d8.d8_steepest_descent` on a filled DEM, a cell with no
    lower neighbour (code 0) is either an outlet (on the domain edge or next to nodata) or lies on
    a flat made by filling. Flat cells drain along the shortest path, in cell steps, to the
    flat's way out: an equal-elevation neighbour that already drains (or is an outlet). This is a
    breadth-first search from those ways out, the drainage that Priority-Flood+ε (Barnes et al.
    2014a) would give, done on the flat cells only; the conditioned elevations stay exactly
    flat. Every flat cell of a filled DEM has such a path, so no flat is left undrained.

    Parameters
    ----------
    z : float32 (rows, cols), filled elevation in m, NaN on nodata.
    flowdir : uint8 (rows, cols), ESRI D8 from steepest descent; changed in place.

    Returns
    -------
    The number of flat cells that received a direction.

    References
    ----------
    Barnes, R., Lehman, C., Mulla, D. (2014a) Priority-Flood: An optimal depression-filling and
    watershed-labeling algorithm for digital elevation models. Computers & Geosciences 62.
    Jenson, S.K. & Domingue, J.O. (1988) Extracting topographic structure from digital
    elevation data for geographic information system analysis. PE&RS 54(11), 1593-1600.
    """
    nr, nc = flowdir.shape
    n = nr * nc
    fd = flowdir.reshape(n)
    zf = z.reshape(n)

    n_flat = 0
    for i in range(n):
        if fd[i] != 0:
            continue
        r = i // nc
        c = i - r * nc
        if r == 0 or c == 0 or r == nr - 1 or c == nc - 1:
            continue
        outlet = False
        for k in range(8):
            if fd[(r + D8_ROW_STEP[k]) * nc + c + D8_COL_STEP[k]] == 255:
                outlet = True
                break
        if not outlet:
            fd[i] = _UNRESOLVED
            n_flat += 1
    if n_flat == 0:
        return 0

    flat_cells = np.empty(n_flat, np.int64)
    m = 0
    for i in range(n):
        if fd[i] == _UNRESOLVED:
            flat_cells[m] = i
            m += 1

    # Interior flat cells have all 8 neighbours inside the grid.
    queue = np.empty(n_flat, np.int64)
    tail = 0
    for t in range(n_flat):
        i = flat_cells[t]
        r = i // nc
        c = i - r * nc
        zi = zf[i]
        for k in range(8):
            j = (r + D8_ROW_STEP[k]) * nc + c + D8_COL_STEP[k]
            dj = fd[j]
            if dj != _UNRESOLVED and dj != 255 and zf[j] == zi:
                fd[i] = D8_CODES[k]
                queue[tail] = i
                tail += 1
                break
    head = 0
    while head < tail:
        i = queue[head]
        head += 1
        r = i // nc
        c = i - r * nc
        for k in range(8):
            j = (r + D8_ROW_STEP[k]) * nc + c + D8_COL_STEP[k]
            if fd[j] == _UNRESOLVED:
                fd[j] = D8_INFLOW_CODE[k]
                queue[tail] = j
                tail += 1
    # Anything still unresolved means the DEM was not filled; report it as not drained.
    return tail
