"""Terrain values at points (settlements, shelters): HAND, reach catchment, upstream area."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from floodwarn.errors import InputError
from floodwarn.terrain.model import TerrainModel

#: How far a point on a nodata cell (a coastal town on the generalised shoreline) may be moved
#: to the nearest land cell, m.
DEFAULT_MAX_SNAP_M = 1500.0


def sample_points(
    model: TerrainModel, points: gpd.GeoDataFrame, *, max_snap_m: float = DEFAULT_MAX_SNAP_M
) -> pd.DataFrame:
    """HAND (m), catchment reach and its upstream area (km²) at each point.

    ``points`` must have a CRS; they are transformed to the model's. A point on a nodata cell
    is moved to the nearest valid cell within ``max_snap_m`` (``snapped_m`` says how far). A
    point off the grid, or farther from land, is an error that names it: a settlement the model
    cannot see must never be reported as safe.
    """
    if points.crs is None:
        raise InputError("points have no CRS; set one (e.g. EPSG:4326) before sampling.")
    if len(points) == 0:
        raise InputError("no points to sample: the layer is empty.")
    projected = points.geometry.to_crs(model.grid.crs)
    if (projected.is_empty | projected.isna()).any():
        i = int(np.flatnonzero((projected.is_empty | projected.isna()).to_numpy())[0])
        raise InputError(f"point {i} ({_label(points, i)}) has an empty geometry.")
    rows, cols = model.grid.cells_at(projected.x.to_numpy(), projected.y.to_numpy())
    outside = rows < 0
    on_nodata = np.zeros(len(points), bool)
    on_nodata[~outside] = model.flowdir[rows[~outside], cols[~outside]] == 255
    snapped_m = np.zeros(len(points))
    for i in np.flatnonzero(on_nodata).tolist():  # few points: the coastal ones
        found = _nearest_valid_cell(model, int(rows[i]), int(cols[i]), max_snap_m)
        if found is not None:
            rows[i], cols[i], snapped_m[i] = found
            on_nodata[i] = False
    bad = outside | on_nodata
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        lon, lat = points.geometry.to_crs("EPSG:4326").iloc[i].coords[0]
        reason = (
            "outside the terrain model's grid"
            if outside[i]
            else f"on nodata (sea) farther than {max_snap_m:g} m from land"
        )
        raise InputError(
            f"{int(bad.sum())} point(s) cannot be placed on the terrain; first: {_label(points, i)}"
            f" at lon {lon:.4f}, lat {lat:.4f} lies {reason}. Build the terrain model on a DEM "
            "that covers it, or correct its coordinates."
        )
    catchment = model.catchment_id[rows, cols]
    area = np.full(len(points), np.nan)
    has = catchment > 0
    area[has] = model.reaches.upstream_area_km2[catchment[has] - 1]
    out = pd.DataFrame(points.drop(columns="geometry"))
    out["row"] = rows
    out["col"] = cols
    out["snapped_m"] = snapped_m
    out["hand_m"] = model.hand[rows, cols].astype(np.float64)
    out["reach_id"] = catchment
    out["upstream_area_km2"] = area
    return out


def _nearest_valid_cell(
    model: TerrainModel, row: int, col: int, max_m: float
) -> tuple[int, int, float] | None:
    radius = int(np.ceil(max_m / model.grid.cellsize_m))
    r0, c0 = max(row - radius, 0), max(col - radius, 0)
    window = model.flowdir[r0 : row + radius + 1, c0 : col + radius + 1] != 255
    if not window.any():
        return None
    rr, cc = np.nonzero(window)
    dist = np.hypot(rr + r0 - row, cc + c0 - col) * model.grid.cellsize_m
    k = int(np.argmin(dist))
    if dist[k] > max_m:
        return None
    return int(rr[k] + r0), int(cc[k] + c0), float(dist[k])


def _label(points: gpd.GeoDataFrame, i: int) -> str:
    return repr(points["name"].iloc[i]) if "name" in points.columns else f"#{i}"
