"""Flood depth and time of first flooding of every cell, from routed discharge."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from floodwarn.errors import InputError
from floodwarn.inundation.rating_curves import RatingCurves
from floodwarn.kernels.inundation import depth_and_first_flooding
from floodwarn.terrain.model import TerrainModel


@dataclass(frozen=True, eq=False)
class Inundation:
    """``depth_m`` (grid, float32): peak depth, 0 where dry, NaN outside every catchment;
    ``first_flooding_h`` (grid, float32): hours from the forecast start until the cell first
    goes under water, NaN where it stays dry; ``stage_m`` (reach, time) and ``peak_stage_m``
    (reach); ``above_curve`` (reach): discharge beyond the top of the rating curve, so the
    stage and depth there are a lower bound."""

    depth_m: np.ndarray
    first_flooding_h: np.ndarray
    stage_m: np.ndarray
    peak_stage_m: np.ndarray
    above_curve: np.ndarray


def flood_inundation(terrain: TerrainModel, curves: RatingCurves, discharge_m3s: np.ndarray,
                     hours_from_start: np.ndarray) -> Inundation:
    """Stage of every reach at every step from its rating curve, then depth = stage − HAND
    within the reach's catchment, and the first step end at which each cell floods.

    ``discharge_m3s`` (reach, time) at step ends; ``hours_from_start`` (time,) the step ends
    in hours after the forecast start.

    References
    ----------
    Zheng, X. et al. (2018) JAWRA 54(4), 785-806 (stage from synthetic rating curves);
    Nobre, A.D. et al. (2016) Hydrological Processes 30, 320-333 (depth from HAND).
    """
    q = np.ascontiguousarray(discharge_m3s, np.float64)
    if q.ndim != 2 or q.shape[0] != len(terrain.reaches):
        raise InputError(f"discharge {q.shape} does not match {len(terrain.reaches)} reaches.")
    hours = np.asarray(hours_from_start, np.float32)
    if hours.shape != (q.shape[1],):
        raise InputError("one time per discharge step is needed.")
    stage = curves.stage_for(q)
    depth, first = depth_and_first_flooding(terrain.hand, terrain.catchment_id, stage, hours)
    return Inundation(
        depth_m=depth,
        first_flooding_h=first,
        stage_m=stage,
        peak_stage_m=stage.max(axis=1),
        above_curve=curves.above_top(q.max(axis=1)),
    )
