"""The raster grid a terrain model lives on: shape, affine transform, CRS."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from affine import Affine
from pyproj import CRS

from floodwarn.errors import CRSError, InputError

#: Minimum grid size along each axis: a D8 network needs interior cells.
MIN_CELLS_PER_AXIS = 3


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid in a projected CRS with square cells.

    Attributes
    ----------
    shape : (rows, cols).
    transform : affine transform from (col, row) to (x, y) of the cell's upper-left corner.
    crs : the CRS as WKT.
    """

    shape: tuple[int, int]
    transform: Affine
    crs: str

    @property
    def cellsize_m(self) -> float:
        """Cell size in m (cells are square)."""
        return float(abs(self.transform.a))

    @property
    def cell_area_km2(self) -> float:
        """Area of one cell in km²."""
        return self.cellsize_m**2 / 1e6

    @property
    def n_cells(self) -> int:
        return int(self.shape[0] * self.shape[1])

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in CRS units."""
        rows, cols = self.shape
        x0, y0 = self.transform @ (0, 0)
        x1, y1 = self.transform @ (cols, rows)
        return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)

    def cell_centres(self, flat_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x, y of the centres of cells given by flat (row-major) index."""
        rows, cols = np.divmod(np.asarray(flat_index, dtype=np.int64), self.shape[1])
        t = self.transform
        x = t.c + (cols + 0.5) * t.a + (rows + 0.5) * t.b
        y = t.f + (cols + 0.5) * t.d + (rows + 0.5) * t.e
        return x, y

    def cells_at(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row, col of the cells holding points x, y (CRS units); -1 for points off the grid."""
        inverse = ~self.transform
        col_f, row_f = inverse @ (np.asarray(x, np.float64), np.asarray(y, np.float64))
        rows = np.floor(row_f).astype(np.int64)
        cols = np.floor(col_f).astype(np.int64)
        inside = (rows >= 0) & (rows < self.shape[0]) & (cols >= 0) & (cols < self.shape[1])
        return np.where(inside, rows, -1), np.where(inside, cols, -1)

    def epsg(self) -> int | None:
        return CRS.from_user_input(self.crs).to_epsg()


def validate_grid(grid: Grid, *, where: str) -> None:
    """Check that ``grid`` suits the terrain kernels: projected, metric, north-up, square cells.

    ``where`` names the input (file, argument) in the error message.
    """
    rows, cols = grid.shape
    if rows < MIN_CELLS_PER_AXIS or cols < MIN_CELLS_PER_AXIS:
        raise InputError(
            f"{where}: the grid is {rows}×{cols} cells; a terrain model needs at least "
            f"{MIN_CELLS_PER_AXIS}×{MIN_CELLS_PER_AXIS}. Use a larger DEM extent."
        )
    try:
        crs = CRS.from_user_input(grid.crs)
    except Exception as exc:
        raise CRSError(f"{where}: the CRS {grid.crs!r} is not understood ({exc}).") from exc
    if crs.is_geographic or not crs.is_projected:
        kind = "geographic" if crs.is_geographic else "not projected"
        raise CRSError(
            f"{where}: the CRS is {crs.name} ({kind});"
            " the terrain engine needs a projected CRS in metres. Reproject the DEM first, e.g. "
            "with floodwarn.io.dem.read_dem(..., target_crs='EPSG:32616') or "
            "`gdalwarp -t_srs EPSG:32616 -tr 90 90`."
        )
    unit = crs.axis_info[0].unit_name if crs.axis_info else "metre"
    if unit not in ("metre", "meter", "m"):
        raise CRSError(
            f"{where}: the CRS {crs.name} has axis unit {unit!r}; the terrain engine needs metres."
        )
    t = grid.transform
    if t.b != 0 or t.d != 0:
        raise InputError(
            f"{where}: the grid is rotated (transform terms b={t.b}, d={t.d}); reproject it to a "
            "north-up grid, e.g. with `gdalwarp`."
        )
    dx, dy = abs(t.a), abs(t.e)
    if not math.isclose(dx, dy, rel_tol=1e-6):
        raise InputError(
            f"{where}: cells are not square ({dx:g} m × {dy:g} m); D8 needs square cells. "
            f"Resample, e.g. `gdalwarp -tr {max(dx, dy):g} {max(dx, dy):g} -r bilinear IN OUT`."
        )
