"""Hydrological conditioning of a DEM and D8 flow directions."""

from __future__ import annotations

import numpy as np

from floodwarn.errors import InputError
from floodwarn.kernels.d8 import d8_steepest_descent, flowdir_problems
from floodwarn.kernels.fill import fill_in_place
from floodwarn.kernels.flats import drain_flats
from floodwarn.terrain.grid import MIN_CELLS_PER_AXIS

#: Plausible elevations on Earth in m; values outside hint at wrong units or a nodata sentinel.
ELEVATION_RANGE_M = (-500.0, 9000.0)

_FLOWDIR_PROBLEMS = {
    1: "has an invalid code {code} (valid: 0, 1, 2, 4, …, 128, 255)",
    2: "points off the grid (code {code})",
    3: "points into a nodata cell (code {code})",
}


def validate_dem_array(dem: np.ndarray, *, where: str = "DEM") -> np.ndarray:
    """Return ``dem`` as a C-contiguous float32 array with NaN as nodata, or raise InputError.

    Checks: two dimensions, at least 3×3 cells, some valid cells, no ±inf, values within
    :data:`ELEVATION_RANGE_M`.
    """
    arr = np.asarray(dem)
    if arr.ndim != 2:
        raise InputError(f"{where}: expected a 2-D elevation array, got {arr.ndim} dimensions.")
    if arr.shape[0] < MIN_CELLS_PER_AXIS or arr.shape[1] < MIN_CELLS_PER_AXIS:
        raise InputError(
            f"{where}: the DEM is {arr.shape[0]}×{arr.shape[1]} cells; at least "
            f"{MIN_CELLS_PER_AXIS}×{MIN_CELLS_PER_AXIS} are needed. Use a larger extent."
        )
    if not np.issubdtype(arr.dtype, np.floating) and not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"{where}: elevation must be numeric, got dtype {arr.dtype}.")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    valid = ~np.isnan(arr)
    n_valid = int(np.count_nonzero(valid))
    if n_valid == 0:
        raise InputError(
            f"{where}: every cell is nodata; check the nodata value and that the DEM covers the "
            "area of interest."
        )
    if np.isinf(arr).any():
        r, c = np.argwhere(np.isinf(arr))[0]
        raise InputError(
            f"{where}: infinite elevation at row {r}, col {c}; mark such cells as nodata."
        )
    lo, hi = ELEVATION_RANGE_M
    low = float(np.nanmin(arr))
    high = float(np.nanmax(arr))
    if low < lo or high > hi:
        bad = np.argwhere(valid & ((arr < lo) | (arr > hi)))[0]
        value = arr[bad[0], bad[1]]
        raise InputError(
            f"{where}: elevation {value:g} at row {bad[0]}, col {bad[1]} is outside the plausible "
            f"range {lo:g}…{hi:g} m. If it is a nodata sentinel, declare it as nodata; if the DEM "
            "is not in metres, convert it."
        )
    return arr


def fill_depressions(dem: np.ndarray, *, overwrite: bool = False) -> tuple[np.ndarray, int]:
    """Fill every depression of ``dem`` (m, NaN = nodata) so that all cells drain to an outlet.

    Outlets are the valid cells on the domain edge and next to nodata (the sea). See
    :func:`floodwarn.kernels.fill.fill_in_place` for the algorithm. Returns the filled DEM and
    the number of cells raised. With ``overwrite`` a float32 C-contiguous ``dem`` is filled in
    place (saving one grid of memory); otherwise it is left untouched.

    References
    ----------
    Barnes, Lehman & Mulla (2014) Priority-Flood, Computers & Geosciences 62;
    Zhou, Sun & Fu (2016) Computers & Geosciences 90.
    """
    z = validate_dem_array(dem)
    if z is dem and not overwrite:
        z = z.copy()
    n_raised = fill_in_place(z)
    return z, int(n_raised)


def flow_directions(conditioned: np.ndarray) -> tuple[np.ndarray, int]:
    """D8 directions (ESRI encoding) of a filled DEM, and the number of flat cells drained.

    Steepest descent (O'Callaghan & Mark 1984) wherever a cell has a lower neighbour; on the
    flats left by filling, the shortest path to the flat's way out
    (:func:`floodwarn.kernels.flats.drain_flats`).

    References
    ----------
    O'Callaghan, J.F. & Mark, D.M. (1984) Computer Vision, Graphics, and Image Processing 28.
    """
    z = np.ascontiguousarray(conditioned, dtype=np.float32)
    flowdir = d8_steepest_descent(z)
    n_flat = drain_flats(z, flowdir)
    if (flowdir == 254).any():
        r, c = np.argwhere(flowdir == 254)[0]
        raise InputError(
            f"flow directions: the flat at row {r}, col {c} has no way out; the DEM was not "
            "depression-filled. Run fill_depressions first."
        )
    return flowdir, int(n_flat)


def validate_flowdir(flowdir: np.ndarray, *, where: str = "flow directions") -> np.ndarray:
    """Return ``flowdir`` as C-contiguous uint8 after checking codes and targets (no cycles check).

    Cycles are detected by :func:`floodwarn.terrain.accumulation.flow_accumulation`.
    """
    fd = np.asarray(flowdir)
    if fd.ndim != 2:
        raise InputError(f"{where}: expected a 2-D array, got {fd.ndim} dimensions.")
    if fd.dtype != np.uint8 and (
        not np.issubdtype(fd.dtype, np.integer) or fd.min() < 0 or fd.max() > 255
    ):
        raise InputError(f"{where}: expected ESRI D8 codes as uint8, got dtype {fd.dtype}.")
    fd = np.ascontiguousarray(fd, dtype=np.uint8)
    kind, r, c = flowdir_problems(fd)
    if kind:
        detail = _FLOWDIR_PROBLEMS[kind].format(code=int(fd[r, c]))
        raise InputError(f"{where}: the cell at row {r}, col {c} {detail}.")
    return fd
