"""Longitudinal river profiles: the bed slope of every reach, measured over a smoothing window.

A reach's own drop on a filled DEM is a poor slope: filling leaves flats (drop 0) and short
reaches cross one stair-step of the DEM's vertical resolution. The slope is instead fitted to
the river's longitudinal profile over a window centred on the reach, extended along the main
stem upstream and the flow path downstream until it is long enough and drops enough to be
measured.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from floodwarn.kernels.d8 import (
    D8_COL_STEP,
    D8_INFLOW_CODE,
    D8_ROW_STEP,
    code_offset_table,
    code_step_length_table,
)


@njit(cache=True, inline="always")
def _main_stem_upstream(cell: int, flowdir: np.ndarray, accumulation: np.ndarray,
                        ncols: int, nrows: int) -> int:
    """The neighbour draining into ``cell`` with the largest upstream area (−1: a source)."""
    r = cell // ncols
    c = cell - r * ncols
    best = -1
    best_acc = 0
    for k in range(8):
        rr = r + D8_ROW_STEP[k]
        cc = c + D8_COL_STEP[k]
        if rr < 0 or rr >= nrows or cc < 0 or cc >= ncols:
            continue
        j = rr * ncols + cc
        if flowdir.flat[j] == D8_INFLOW_CODE[k] and accumulation.flat[j] > best_acc:
            best_acc = accumulation.flat[j]
            best = j
    return best


@njit(cache=True, inline="always")
def _add_point(fit: np.ndarray, s: float, z: float) -> None:
    """Add a profile point (distance ``s``, elevation ``z``) to the running sums of a
    least-squares line: n, Σs, Σz, Σs², Σsz."""
    fit[0] += 1.0
    fit[1] += s
    fit[2] += z
    fit[3] += s * s
    fit[4] += s * z


@njit(cache=True, parallel=True)
def profile_slopes(z: np.ndarray, flowdir: np.ndarray, accumulation: np.ndarray,
                   path_start: np.ndarray, path_cells: np.ndarray, cellsize: float,
                   min_window_m: float, max_window_m: float, min_drop_m: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Bed slope (m/m) of every reach from a least-squares line through its river profile.

    The window starts as the reach itself and grows by one cell at a time, alternately
    upstream (along the main stem: the inflowing neighbour of largest upstream area) and
    downstream (along the D8 path), until it is at least ``min_window_m`` long and drops at
    least ``min_drop_m`` (the DEM's vertical resolution, so the fit spans more than one
    stair-step of the filled profile), or reaches ``max_window_m``, or cannot grow (source
    and outlet both reached). The slope is minus the least-squares gradient of elevation
    against distance downstream over the window's cells; it is ≥ 0 on a filled DEM, and 0
    only where the whole window is flat. Reaches are independent (parallel).

    Parameters
    ----------
    z : (rows, cols) conditioned (depression-filled) elevation, m.
    flowdir : (rows, cols) ESRI D8 codes; accumulation : (rows, cols) upstream cells.
    path_start, path_cells : CSR cells of each reach, head first (``ReachTable``).
    cellsize : m. min_window_m, max_window_m, min_drop_m : window bounds (m).

    Returns
    -------
    (slope (n,), window length (n,) in m).

    References
    ----------
    Hack, J.T. (1957) Studies of longitudinal stream profiles in Virginia and Maryland. USGS
    Professional Paper 294-B (slope of a reach from the profile over a length of channel).
    Zheng, X., Tarboton, D.G., Maidment, D.R., Liu, Y.Y. & Passalacqua, P. (2018) JAWRA 54(4),
    785-806 (reach slope for HAND rating curves, and its sensitivity to DEM artefacts).
    Schwanghart, W. & Scherler, D. (2017) Bumps in river profiles: uncertainty assessment and
    smoothing using quantile regression techniques. Earth Surface Dynamics 5, 821-839 (why raw
    DEM profiles need smoothing before slopes are taken).
    """
    nrows, ncols = flowdir.shape
    offsets = code_offset_table(ncols)
    steps = code_step_length_table(cellsize)
    n = path_start.shape[0] - 1
    slope = np.zeros(n, np.float64)
    window = np.zeros(n, np.float64)
    for r in prange(n):
        first = path_start[r]
        last = path_start[r + 1] - 1
        # The least-squares fit of z against distance s (downstream > 0).
        fit = np.zeros(5)
        s = 0.0
        for k in range(first, last + 1):
            if k > first:
                s += steps[flowdir.flat[path_cells[k - 1]]]
            _add_point(fit, s, z.flat[path_cells[k]])
        up_cell = path_cells[first]
        up_s = 0.0
        up_z = z.flat[up_cell]
        down_cell = path_cells[last]
        down_s = s
        down_z = z.flat[down_cell]
        can_up = True
        can_down = True
        turn_up = True
        while can_up or can_down:
            length = down_s - up_s
            if length >= max_window_m:
                break
            if length >= min_window_m and up_z - down_z >= min_drop_m:
                break
            if turn_up and can_up:
                nxt = _main_stem_upstream(up_cell, flowdir, accumulation, ncols, nrows)
                if nxt < 0:
                    can_up = False
                else:
                    up_s -= steps[flowdir.flat[nxt]]
                    up_cell = nxt
                    up_z = z.flat[nxt]
                    _add_point(fit, up_s, up_z)
            elif can_down:
                code = flowdir.flat[down_cell]
                if code == 0 or code == 255:
                    can_down = False
                else:
                    nxt = down_cell + offsets[code]
                    if flowdir.flat[nxt] == 255:
                        can_down = False
                    else:
                        down_s += steps[code]
                        down_cell = nxt
                        down_z = z.flat[nxt]
                        _add_point(fit, down_s, down_z)
            turn_up = not turn_up
        window[r] = down_s - up_s
        var = fit[3] - fit[1] * fit[1] / fit[0]
        if fit[0] >= 2.0 and var > 0.0:
            gradient = (fit[4] - fit[1] * fit[2] / fit[0]) / var
            slope[r] = max(-gradient, 0.0)
    return slope, window
