"""Flood depth on land and the time of first flooding of every cell, from routed discharge.

Water in a river's channel or a lake is not a flood: the cells that hold the channel (the
stream cells, widened where the bankfull channel is wider than a cell) and the lakes' surfaces
are *water cells*. They get no depth and are never counted as flooded land or as people's
exposure. Land floods only when a river leaves its channel (overbank stage > 0, Zheng et al.
2018; NOAA OWP's HAND inundation mapping) or a lake rises above its level at the start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from floodwarn.errors import InputError
from floodwarn.hydrology.water_bodies import WaterBodyNetwork
from floodwarn.inundation.rating_curves import RatingCurves
from floodwarn.kernels.inundation import depth_and_first_flooding
from floodwarn.terrain.model import TerrainModel


@dataclass(frozen=True, eq=False)
class Inundation:
    """``depth_m`` (grid, float32): peak flood depth on land, 0 where dry, NaN on water cells
    and outside every catchment; ``first_flooding_h`` (grid, float32): hours from the forecast
    start until a land cell first goes under water, NaN where it stays dry; ``water``
    (grid, bool): channels and lakes; ``stage_m`` (reach, time) overbank stage above the DEM's
    drainage (negative while in the channel) and ``peak_stage_m`` (reach); ``extended``
    (reach): the peak needed the rating curve's extension beyond the DEM (stage less certain);
    ``beyond_curve`` (reach): the peak exceeds even the extension (stage capped, depth a lower
    bound)."""

    depth_m: np.ndarray
    first_flooding_h: np.ndarray
    water: np.ndarray
    stage_m: np.ndarray
    peak_stage_m: np.ndarray
    extended: np.ndarray
    beyond_curve: np.ndarray


def water_cells(terrain: TerrainModel, curves: RatingCurves,
                water_bodies: WaterBodyNetwork) -> np.ndarray:
    """The cells that hold water before any flood: stream cells, their neighbours within a
    reach's bankfull half-width where the channel is wider than a cell, and lake surfaces."""
    streams = terrain.reach_id > 0
    water = streams | water_bodies.surface
    half_width = curves.bankfull_width_m / 2.0 - terrain.grid.cellsize_m / 2.0
    if np.any(half_width > 0):
        distance, (rows, cols) = ndimage.distance_transform_edt(
            ~streams, sampling=terrain.grid.cellsize_m, return_indices=True)
        nearest_reach = terrain.reach_id[rows, cols]
        reach_half = np.concatenate([[0.0], np.maximum(half_width, 0.0)])[nearest_reach]
        water |= (distance <= reach_half) & (terrain.flowdir != 255)
    return water


@dataclass(frozen=True, eq=False)
class FloodGrid:
    """The terrain rasters flood mapping reads — HAND, catchments (int32) and the water cells
    (:func:`water_cells`) — and the number of reaches: all an ensemble member's flood map
    needs, without the rest of the terrain model."""

    hand: np.ndarray
    catchment_id: np.ndarray
    water: np.ndarray
    n_reaches: int

    @classmethod
    def of(cls, terrain: TerrainModel, water: np.ndarray) -> FloodGrid:
        if water.shape != terrain.grid.shape:
            raise InputError(f"water mask {water.shape} does not match the grid "
                             f"{terrain.grid.shape}.")
        return cls(hand=terrain.hand, catchment_id=terrain.catchment_id,
                   water=np.ascontiguousarray(water), n_reaches=len(terrain.reaches))


def flood_inundation(terrain: TerrainModel, curves: RatingCurves, discharge_m3s: np.ndarray,
                     hours_from_start: np.ndarray, *, water: np.ndarray,
                     water_bodies: WaterBodyNetwork | None = None,
                     water_body_level_m: np.ndarray | None = None) -> Inundation:
    """:func:`map_flood` on a terrain model (``water`` from :func:`water_cells`)."""
    return map_flood(FloodGrid.of(terrain, water), curves, discharge_m3s, hours_from_start,
                     water_bodies=water_bodies, water_body_level_m=water_body_level_m)


def map_flood(grid: FloodGrid, curves: RatingCurves, discharge_m3s: np.ndarray,
              hours_from_start: np.ndarray, *, water_bodies: WaterBodyNetwork | None = None,
              water_body_level_m: np.ndarray | None = None) -> Inundation:
    """Overbank stage of every reach at every step from its rating curve, then depth = stage −
    HAND on the land of the reach's catchment, and the first step end at which each land cell
    floods. Reaches inside a lake take the lake's rise above the level its shore on the DEM
    stands for (``water_body_level_m`` (P, time) against ``water_bodies.surface_level_m``) as
    their stage, so its shores flood only when it rises above it (and at most up to the top of
    its storage table).

    ``discharge_m3s`` (reach, time) at step ends; ``hours_from_start`` (time,) the step ends
    in hours after the forecast start.

    References
    ----------
    Zheng, X. et al. (2018) JAWRA 54(4), 785-806 (stage from synthetic rating curves);
    Nobre, A.D. et al. (2016) Hydrological Processes 30, 320-333 (depth from HAND).
    """
    q = np.ascontiguousarray(discharge_m3s, np.float64)
    if q.ndim != 2 or q.shape[0] != grid.n_reaches:
        raise InputError(f"discharge {q.shape} does not match {grid.n_reaches} reaches.")
    hours = np.asarray(hours_from_start, np.float32)
    if hours.shape != (q.shape[1],):
        raise InputError("one time per discharge step is needed.")
    stage = curves.stage_for(q)
    if water_bodies is not None and water_body_level_m is not None and water_bodies.n_bodies:
        # Above its storage table a lake's level is extrapolated: its shore is mapped only
        # up to the table's top (the run's plausibility report warns of the rest).
        levels = np.minimum(np.asarray(water_body_level_m, np.float64),
                            water_bodies.table_top_m[:, None])
        rise = levels - water_bodies.surface_level_m[:, None]
        inside = water_bodies.pass_through
        stage[inside] = rise[water_bodies.body_of_reach[inside]]
    depth, first = depth_and_first_flooding(grid.hand, grid.catchment_id, grid.water, stage,
                                            hours)
    peak_q = q.max(axis=1)
    # Inside a lake the discharge is the lake's inflow, not a channel's: no rating curve.
    channel = (~water_bodies.pass_through if water_bodies is not None
               else np.ones(len(peak_q), bool))
    return Inundation(
        depth_m=depth,
        first_flooding_h=first,
        water=grid.water,
        stage_m=stage,
        peak_stage_m=stage.max(axis=1),
        extended=curves.extended(peak_q) & channel,
        beyond_curve=curves.beyond_top(peak_q) & channel,
    )
