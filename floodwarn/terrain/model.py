"""The terrain model: everything derived once per DEM that forecasts and risk reuse.

It is read-only once built, so many forecast members and basins can share one copy. Its files
are read and written at the edge, by ``floodwarn.io.terrain_files`` (``load_terrain_model``,
``save_terrain_model``): this module does no I/O.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from floodwarn import __version__
from floodwarn.errors import InputError
from floodwarn.kernels import accumulation as k_accumulation
from floodwarn.kernels import d8 as k_d8
from floodwarn.kernels import fill as k_fill
from floodwarn.kernels import flats as k_flats
from floodwarn.kernels import hand as k_hand
from floodwarn.kernels import streams as k_streams
from floodwarn.logs import get_logger, timed_step
from floodwarn.terrain.accumulation import flow_accumulation
from floodwarn.terrain.conditioning import fill_depressions, flow_directions
from floodwarn.terrain.grid import Grid, validate_grid
from floodwarn.terrain.hand import compute_hand
from floodwarn.terrain.network import (
    DEFAULT_MAX_REACH_LENGTH_M,
    DEFAULT_STREAM_AREA_KM2,
    ReachTable,
    extract_stream_network,
    stream_threshold_cells,
    with_catchment_areas,
)

log = get_logger(__name__)

#: The steps of a build, in order (the progress display counts them).
BUILD_STEPS = ("fill", "flow_directions", "accumulation", "stream_network", "hand")

_KERNELS = (
    k_fill.fill_tiles,
    k_fill.spill_elevations,
    k_fill.raise_to_spill,
    k_d8.d8_steepest_descent,
    k_flats.drain_flats,
    k_d8.flowdir_problems,
    k_accumulation.accumulate_into,
    k_streams.extract_reaches,
    k_streams.reach_topology,
    k_hand.height_above_nearest_drainage,
)


@dataclass(frozen=True, eq=False)
class TerrainModel:
    """Conditioned DEM, D8, accumulation, streams, reaches, catchments and HAND of one grid.

    Rasters are numpy arrays on ``grid`` (row-major, north-up):

    - ``conditioned`` float32, m, filled DEM, NaN = nodata;
    - ``flowdir`` uint8, ESRI D8 (1 E, 2 SE, 4 S, 8 SW, 16 W, 32 NW, 64 N, 128 NE, 0 outlet,
      255 nodata);
    - ``accumulation`` uint32, upstream cells including the cell itself, 0 = nodata;
    - ``hand`` float32, m above the stream cell the cell drains to, NaN where none;
    - ``reach_id`` int32, reach of each stream cell, 0 elsewhere;
    - ``catchment_id`` int32, reach each cell first drains into, 0 where none.

    ``metadata`` records the inputs, parameters, software version, timings and whether the DEM
    is synthetic.
    """

    grid: Grid
    conditioned: np.ndarray
    flowdir: np.ndarray
    accumulation: np.ndarray
    hand: np.ndarray
    reach_id: np.ndarray
    catchment_id: np.ndarray
    reaches: ReachTable
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def is_synthetic(self) -> bool:
        """True when the model was built from a synthetic (stand-in) DEM."""
        return bool(self.metadata.get("dem", {}).get("synthetic", False))

    def digest(self, *rasters: str) -> str:
        """Hash of the grid and the named rasters (e.g. "catchment_id", "hand"): the key of
        any cached product that depends on them, which a rebuilt terrain never reuses."""
        h = hashlib.blake2b(digest_size=16)
        # The CRS by its EPSG code where it has one: a model built in memory ("EPSG:32616")
        # and the same model loaded from its files (WKT) are the same model.
        epsg = self.grid.epsg()
        h.update((f"EPSG:{epsg}" if epsg else self.grid.crs).encode())
        h.update(np.asarray(self.grid.transform, np.float64).tobytes())
        h.update(np.asarray(self.grid.shape, np.int64).tobytes())
        for name in rasters:
            h.update(name.encode())
            h.update(np.ascontiguousarray(getattr(self, name)).tobytes())
        return h.hexdigest()

    def upstream_area_km2(self) -> np.ndarray:
        """Upstream area of every cell in km² (float32, NaN on nodata)."""
        out = self.accumulation.astype(np.float32) * np.float32(self.grid.cell_area_km2)
        out[self.flowdir == 255] = np.nan
        return out

    def drain_cells(self) -> np.ndarray:
        """Flat index of the stream cell each cell drains to (-1 where none), recomputed."""
        return compute_hand(self.conditioned, self.flowdir, self.reach_id).drain_cell


def jit_cache_stats() -> dict[str, int]:
    """Numba cache hits and misses (compilations) of the terrain kernels in this process."""
    hits = misses = 0
    for kernel in _KERNELS:
        hits += sum(kernel.stats.cache_hits.values())
        misses += sum(kernel.stats.cache_misses.values())
    return {"cache_hits": hits, "cache_misses": misses}


def build_terrain_model(
    dem: np.ndarray,
    grid: Grid,
    *,
    stream_area_km2: float = DEFAULT_STREAM_AREA_KM2,
    max_reach_length_m: float = DEFAULT_MAX_REACH_LENGTH_M,
    dem_metadata: dict[str, Any] | None = None,
    on_step: Callable[[str], None] | None = None,
    overwrite_dem: bool = False,
) -> TerrainModel:
    """Build the terrain model of ``dem`` (m, float, NaN = nodata) on a projected ``grid``.

    Steps: depression filling (Priority-Flood), D8 with drained flats, flow accumulation,
    stream network and reaches, HAND and reach catchments. ``on_step`` is called with each
    step's name as it starts (for progress displays). With ``overwrite_dem`` the DEM array
    becomes the conditioned DEM (one grid less of memory; the caller must not reuse it).
    """
    validate_grid(grid, where=str((dem_metadata or {}).get("path", "DEM grid")))
    if tuple(np.shape(dem)) != tuple(grid.shape):
        raise InputError(f"DEM array has shape {np.shape(dem)} but its grid says {grid.shape}.")
    timings: dict[str, float] = {}
    notify = on_step or (lambda _step: None)
    start = time.perf_counter()
    n_cells = grid.n_cells

    notify("fill")
    with timed_step(log, "fill", timings, cells=n_cells) as info:
        conditioned, n_raised = fill_depressions(dem, overwrite=overwrite_dem)
        info["raised_cells"] = n_raised
    notify("flow_directions")
    with timed_step(log, "flow_directions", timings) as info:
        flowdir, n_flat = flow_directions(conditioned)
        info["flat_cells"] = n_flat
    notify("accumulation")
    with timed_step(log, "accumulation", timings):
        accumulation = flow_accumulation(flowdir)
    notify("stream_network")
    with timed_step(log, "stream_network", timings) as info:
        reach_id, reaches = extract_stream_network(
            conditioned,
            flowdir,
            accumulation,
            grid,
            stream_area_km2=stream_area_km2,
            max_reach_length_m=max_reach_length_m,
        )
        info["reaches"] = len(reaches)
    notify("hand")
    with timed_step(log, "hand", timings):
        result = compute_hand(conditioned, flowdir, reach_id)
        hand, catchment_id = result.hand_m, result.catchment_id
        del result  # the drainage-cell index is not kept: one grid less at the peak
        reaches = with_catchment_areas(reaches, catchment_id, grid)
    timings["compute_total"] = round(time.perf_counter() - start, 4)

    valid = flowdir != 255
    metadata: dict[str, Any] = {
        "software": {"name": "floodwarn", "version": __version__},
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "dem": dict(dem_metadata or {"synthetic": False}),
        "crs_wkt": grid.crs,
        "epsg": grid.epsg(),
        "shape": list(grid.shape),
        "cellsize_m": grid.cellsize_m,
        "transform": list(grid.transform)[:6],
        "parameters": {
            "stream_area_km2": stream_area_km2,
            "stream_threshold_cells": stream_threshold_cells(stream_area_km2, grid),
            "max_reach_length_m": max_reach_length_m,
            "flow_direction_encoding": "ESRI D8: 1 E, 2 SE, 4 S, 8 SW, 16 W, 32 NW, 64 N, "
            "128 NE, 0 outlet, 255 nodata",
        },
        "statistics": {
            "valid_cells": int(np.count_nonzero(valid)),
            "raised_cells": n_raised,
            "flat_cells": n_flat,
            "outlet_cells": int(np.count_nonzero(flowdir == 0)),
            "stream_cells": int(np.count_nonzero(reach_id)),
            "reaches": len(reaches),
            "max_strahler": int(reaches.strahler.max()) if len(reaches) else 0,
            "cells_without_drainage": int(np.count_nonzero(valid & (catchment_id == 0))),
        },
        "timings_s": timings,
        "jit": jit_cache_stats(),
    }
    return TerrainModel(
        grid=grid,
        conditioned=conditioned,
        flowdir=flowdir,
        accumulation=accumulation,
        hand=hand,
        reach_id=reach_id,
        catchment_id=catchment_id,
        reaches=reaches,
        metadata=metadata,
    )
