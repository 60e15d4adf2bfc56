"""D8 flow directions in ESRI encoding, and steepest descent on a conditioned DEM.

Encoding (ESRI / ArcGIS "Flow Direction"): 1 E, 2 SE, 4 S, 8 SW, 16 W, 32 NW, 64 N, 128 NE,
0 outlet (the cell drains out of the domain: edge or nodata), 255 nodata.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

FLOWDIR_OUTLET = np.uint8(0)
FLOWDIR_NODATA = np.uint8(255)

# Neighbours in ESRI code order: E, SE, S, SW, W, NW, N, NE.
D8_CODES = np.array([1, 2, 4, 8, 16, 32, 64, 128], dtype=np.uint8)
D8_ROW_STEP = np.array([0, 1, 1, 1, 0, -1, -1, -1], dtype=np.int64)
D8_COL_STEP = np.array([1, 1, 0, -1, -1, -1, 0, 1], dtype=np.int64)
D8_DIAGONAL = np.array([False, True, False, True, False, True, False, True])
# The code neighbour k must carry to drain into the centre cell: it points back (k + 4) % 8,
# e.g. the neighbour to the east drains here when it points west (16).
D8_INFLOW_CODE = np.array([16, 32, 64, 128, 1, 2, 4, 8], dtype=np.uint8)

_INV_SQRT2 = 1.0 / math.sqrt(2.0)


@njit(cache=True)
def code_offset_table(ncols: int) -> np.ndarray:
    """Lookup table ``code -> flat-index offset`` (256 entries; 0 for non-direction codes)."""
    table = np.zeros(256, np.int64)
    for k in range(8):
        table[D8_CODES[k]] = D8_ROW_STEP[k] * ncols + D8_COL_STEP[k]
    return table


@njit(cache=True)
def code_step_length_table(cellsize: float) -> np.ndarray:
    """Lookup table ``code -> length of the flow step`` (cellsize or cellsize·√2; 0 otherwise)."""
    table = np.zeros(256, np.float64)
    for k in range(8):
        table[D8_CODES[k]] = cellsize * (math.sqrt(2.0) if D8_DIAGONAL[k] else 1.0)
    return table


@njit(parallel=True, cache=True)
def d8_steepest_descent(z: np.ndarray) -> np.ndarray:
    """D8 flow direction of every cell: the neighbour of steepest descent.

    The drop to each of the 8 neighbours is divided by the distance to it (1 for the four
    cardinal neighbours, √2 for the diagonals, in cell units: cells must be square). The
    steepest strictly positive drop wins; ties go to the first neighbour in ESRI code order
    (E, SE, S, SW, W, NW, N, NE). A cell with no lower neighbour is an outlet (0); NaN cells are
    nodata (255). On a DEM filled by :func:`floodwarn.kernels.fill.fill_in_place`, a cell with
    no lower neighbour is either a true outlet (domain edge, next to nodata) or lies on a flat
    left by filling, which :func:`floodwarn.kernels.flats.drain_flats` then directs; the final
    directions have no cycles.

    Parameters
    ----------
    z : float32 or float64 array (rows, cols), elevation in m; NaN marks nodata.

    Returns
    -------
    uint8 array (rows, cols) in ESRI encoding.

    References
    ----------
    O'Callaghan, J.F. & Mark, D.M. (1984) The extraction of drainage networks from digital
    elevation data. Computer Vision, Graphics, and Image Processing 28, 323-344.
    """
    nr, nc = z.shape
    out = np.empty((nr, nc), np.uint8)
    for r in prange(nr):
        interior_row = 0 < r < nr - 1
        for c in range(nc):
            zc = z[r, c]
            if math.isnan(zc):
                out[r, c] = 255
                continue
            best = 0.0
            code = 0
            if interior_row and 0 < c < nc - 1:
                d = zc - z[r, c + 1]
                if d > best:
                    best = d
                    code = 1
                d = (zc - z[r + 1, c + 1]) * _INV_SQRT2
                if d > best:
                    best = d
                    code = 2
                d = zc - z[r + 1, c]
                if d > best:
                    best = d
                    code = 4
                d = (zc - z[r + 1, c - 1]) * _INV_SQRT2
                if d > best:
                    best = d
                    code = 8
                d = zc - z[r, c - 1]
                if d > best:
                    best = d
                    code = 16
                d = (zc - z[r - 1, c - 1]) * _INV_SQRT2
                if d > best:
                    best = d
                    code = 32
                d = zc - z[r - 1, c]
                if d > best:
                    best = d
                    code = 64
                d = (zc - z[r - 1, c + 1]) * _INV_SQRT2
                if d > best:
                    best = d
                    code = 128
            else:
                for k in range(8):
                    rr = r + D8_ROW_STEP[k]
                    cc = c + D8_COL_STEP[k]
                    if rr < 0 or rr >= nr or cc < 0 or cc >= nc:
                        continue
                    d = zc - z[rr, cc]
                    if D8_DIAGONAL[k]:
                        d *= _INV_SQRT2
                    if d > best:
                        best = d
                        code = D8_CODES[k]
            out[r, c] = code
    return out


@njit(cache=True)
def flowdir_problems(flowdir: np.ndarray) -> tuple[int, int, int]:
    """Find the first invalid code and the first direction leaving the grid or entering nodata.

    Returns ``(kind, row, col)`` with kind 0 = no problem, 1 = invalid code, 2 = points off the
    grid, 3 = points into a nodata cell. Cycles are found by the accumulation kernel, which
    cannot finish a cell that lies on one.
    """
    nr, nc = flowdir.shape
    valid_code = np.zeros(256, np.bool_)
    valid_code[0] = True
    valid_code[255] = True
    for k in range(8):
        valid_code[D8_CODES[k]] = True
    row_step = np.zeros(256, np.int64)
    col_step = np.zeros(256, np.int64)
    for k in range(8):
        row_step[D8_CODES[k]] = D8_ROW_STEP[k]
        col_step[D8_CODES[k]] = D8_COL_STEP[k]
    for r in range(nr):
        for c in range(nc):
            d = flowdir[r, c]
            if not valid_code[d]:
                return 1, r, c
            if d == 0 or d == 255:
                continue
            rr = r + row_step[d]
            cc = c + col_step[d]
            if rr < 0 or rr >= nr or cc < 0 or cc >= nc:
                return 2, r, c
            if flowdir[rr, cc] == 255:
                return 3, r, c
    return 0, -1, -1
