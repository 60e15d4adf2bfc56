"""Area-weighted mean rain per reach catchment, through a sparse matrix built once and cached.

A forecast grid (tens to thousands of cells) and a terrain grid (millions of cells) meet once:
every terrain cell that drains to a reach falls in one forecast cell, so the mean rain of a
catchment is a weighted sum of forecast cells, with weights = share of the catchment's area in
each forecast cell. That matrix (catchments × forecast cells, a few non-zeros per row) turns
each time step's rain into catchment rain with one sparse product; no terrain-sized array is
touched per step.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from pyproj import CRS, Transformer

from floodwarn.errors import InputError
from floodwarn.logs import get_logger
from floodwarn.rainfall.forecast import RainfallForecast
from floodwarn.terrain.model import TerrainModel

log = get_logger(__name__)

WEIGHTS_FORMAT_VERSION = 1
#: Terrain cells are transformed to the forecast CRS in chunks of this many (bounds memory).
_CHUNK_CELLS = 2_000_000


@dataclass(frozen=True, eq=False)
class CatchmentWeights:
    """``matrix`` (n_reaches × n_forecast_cells, CSR): share of reach ``i``'s catchment area in
    forecast cell ``j`` (rows sum to 1; a reach with no catchment cells has an empty row)."""

    matrix: sp.csr_matrix
    forecast_shape: tuple[int, int]

    def to_arrays(self) -> dict[str, np.ndarray]:
        m = self.matrix
        return {"data": m.data, "indices": m.indices, "indptr": m.indptr,
                "shape": np.array(m.shape), "forecast_shape": np.array(self.forecast_shape)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> CatchmentWeights:
        shape = tuple(int(v) for v in arrays["shape"])
        matrix = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape)
        ny, nx = (int(v) for v in arrays["forecast_shape"])
        return cls(matrix=matrix, forecast_shape=(ny, nx))

    def catchment_mean(self, rain_mm: np.ndarray) -> np.ndarray:
        """(time, y, x) forecast rain → (time, n_reaches) catchment mean, same unit."""
        steps = rain_mm.reshape(rain_mm.shape[0], -1).astype(np.float64)
        return np.asarray((self.matrix @ steps.T).T)


def catchment_weights_key(model: TerrainModel, forecast: RainfallForecast) -> str:
    """Hash of what the weights depend on: the forecast grid (coordinates, CRS) and the
    terrain (grid, reach catchments); a changed terrain or grid never reuses stale weights."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"v{WEIGHTS_FORMAT_VERSION}|{CRS.from_user_input(forecast.crs).to_wkt()}".encode())
    h.update(np.ascontiguousarray(forecast.x, np.float64).tobytes())
    h.update(np.ascontiguousarray(forecast.y, np.float64).tobytes())
    h.update(model.digest("catchment_id").encode())
    return h.hexdigest()


def _edges(centres: np.ndarray) -> tuple[float, float]:
    """First edge and signed spacing of a regular axis of cell centres."""
    step = float(centres[1] - centres[0]) if centres.size > 1 else 1.0
    return float(centres[0]) - step / 2.0, step


def build_catchment_weights(model: TerrainModel, forecast: RainfallForecast) -> CatchmentWeights:
    """Sparse catchment × forecast-cell area weights (see module docstring).

    Raises InputError naming the uncovered extent when the forecast grid does not cover every
    catchment cell (cells within half a forecast cell of the grid's edge take the edge cell).

    References
    ----------
    Thiessen, A.H. (1911) Precipitation averages for large areas. Monthly Weather Review 39,
    1082-1084 (area-weighted areal rainfall; here with forecast cells as the polygons).
    """
    n_reaches = len(model.reaches)
    ny, nx = len(forecast.y), len(forecast.x)
    x0, dx = _edges(forecast.x)
    y0, dy = _edges(forecast.y)
    cells = np.flatnonzero(model.catchment_id.reshape(-1) > 0)
    reach_index = model.catchment_id.reshape(-1)[cells].astype(np.int64) - 1
    transformer = Transformer.from_crs(model.grid.crs, forecast.crs, always_xy=True)
    geographic = CRS.from_user_input(forecast.crs).is_geographic
    cols = np.empty(cells.size, np.int64)
    rows = np.empty(cells.size, np.int64)
    outside = np.zeros(cells.size, bool)
    for lo in range(0, cells.size, _CHUNK_CELLS):
        part = cells[lo : lo + _CHUNK_CELLS]
        cx, cy = model.grid.cell_centres(part)
        fx, fy = transformer.transform(cx, cy)
        if geographic:
            fx = np.where(fx > x0 + nx * dx, fx - 360.0, fx)
        fc = np.floor((fx - x0) / dx).astype(np.int64)
        fr = np.floor((fy - y0) / dy).astype(np.int64)
        fc_f = (fx - x0) / dx
        fr_f = (fy - y0) / dy
        out = (fc_f < -0.5) | (fc_f > nx + 0.5) | (fr_f < -0.5) | (fr_f > ny + 0.5)
        outside[lo : lo + part.size] = out
        cols[lo : lo + part.size] = np.clip(fc, 0, nx - 1)
        rows[lo : lo + part.size] = np.clip(fr, 0, ny - 1)
    if outside.any():
        cx, cy = model.grid.cell_centres(cells[outside])
        lon, lat = Transformer.from_crs(model.grid.crs, "EPSG:4326", always_xy=True).transform(
            cx, cy)
        n_reach_out = np.unique(reach_index[outside]).size
        raise InputError(
            f"{forecast.metadata.get('source', 'forecast')}: the rain grid does not cover the "
            f"terrain domain: {outside.mean():.1%} of the catchment cells "
            f"({n_reach_out} reaches) lie outside it, within lon {lon.min():.3f}…{lon.max():.3f},"
            f" lat {lat.min():.3f}…{lat.max():.3f}. Use a forecast whose grid covers the domain "
            f"(grid x {forecast.x.min():g}…{forecast.x.max():g}, y {forecast.y.min():g}…"
            f"{forecast.y.max():g} in {CRS.from_user_input(forecast.crs).name})."
        )
    counts = sp.coo_matrix(
        (np.ones(cells.size), (reach_index, rows * nx + cols)), shape=(n_reaches, ny * nx)
    ).tocsr()
    counts.sum_duplicates()
    totals = np.asarray(counts.sum(axis=1)).reshape(-1)
    scale = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
    matrix = sp.diags(scale) @ counts
    log.info("catchment rain weights built",
             extra={"reaches": n_reaches, "forecast_cells": ny * nx, "non_zeros": matrix.nnz})
    return CatchmentWeights(matrix=matrix.tocsr(), forecast_shape=(ny, nx))


def antecedent_rain_mm(
    observed: RainfallForecast, weights: CatchmentWeights, before: np.datetime64,
    *, days: float = 5.0,
) -> np.ndarray:
    """Rain per reach catchment (mm) over the ``days`` before ``before``, from observed or
    analysed rain (members averaged) — the input of the antecedent moisture class.

    Steps count when they end inside the window; the file must cover the whole window, up to
    one of its steps before ``before`` (InputError naming the span covered otherwise), because
    a shorter record would read as a dry spell and give too low a curve number.

    References
    ----------
    USDA-SCS (1972) National Engineering Handbook, Section 4 Hydrology, ch. 4 (five-day
    antecedent rainfall).
    """
    window_start = before - np.timedelta64(int(days * 86400), "s")
    inside = (observed.step_end > window_start) & (observed.step_end <= before)
    source = observed.metadata.get("source", "antecedent rain")
    covered_from = observed.step_start[inside].min() if inside.any() else None
    # The record may stop up to one of its steps before the forecast starts (the last
    # analysis hour), not more: missing days would read as dry ones.
    last_step = observed.step_end - observed.step_start
    reaches_start = inside.any() and (observed.step_end[inside].max() + last_step[inside].max()
                                      > before)
    if covered_from is None or covered_from > window_start or not reaches_start:
        span = (f"{covered_from} to {observed.step_end[inside].max()}" if inside.any()
                else f"{observed.step_start[0]} to {observed.step_end[-1]}")
        raise InputError(
            f"{source}: antecedent rain must cover the {days:g} days before the forecast "
            f"({window_start} to {before} UTC); the file covers {span}. Supply a longer record, "
            "or give --antecedent-rain-mm or --amc instead."
        )
    total = observed.rain_mm[:, inside].astype(np.float64).mean(axis=0).sum(axis=0)
    return weights.catchment_mean(total[None])[0]
