"""Synthetic rating curves per reach from HAND (Zheng et al. 2018, NOAA OWP's method)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from floodwarn.errors import InputError
from floodwarn.kernels.inundation import rating_curve_sums, stage_from_discharge
from floodwarn.terrain.model import TerrainModel

#: Stage levels, m: every 0.25 m up to 30 m.
DEFAULT_STAGE_STEP_M = 0.25
DEFAULT_MAX_STAGE_M = 30.0


@dataclass(frozen=True, eq=False)
class RatingCurves:
    """Hydraulic properties of every reach at stage levels ``stage_m`` (K,).

    Stored arrays (n_reaches, K), float32, row = reach id − 1: ``flooded_area_m2`` (plan area
    under water), ``bed_area_m2`` (wetted bed), ``volume_m3`` and ``discharge_m3s`` (Manning,
    never decreasing with stage); ``length_m`` (n_reaches,). Derived: ``cross_section_m2`` =
    volume / length, ``wetted_perimeter_m`` = bed area / length, ``hydraulic_radius_m``,
    ``top_width_m`` = flooded area / length.
    """

    stage_m: np.ndarray
    length_m: np.ndarray
    flooded_area_m2: np.ndarray
    bed_area_m2: np.ndarray
    volume_m3: np.ndarray
    discharge_m3s: np.ndarray

    @property
    def cross_section_m2(self) -> np.ndarray:
        return self.volume_m3 / self.length_m[:, None]

    @property
    def wetted_perimeter_m(self) -> np.ndarray:
        return self.bed_area_m2 / self.length_m[:, None]

    @property
    def hydraulic_radius_m(self) -> np.ndarray:
        p = self.bed_area_m2
        return np.divide(self.volume_m3, p, out=np.zeros(p.shape, np.float64), where=p > 0)

    @property
    def top_width_m(self) -> np.ndarray:
        return self.flooded_area_m2 / self.length_m[:, None]

    def stage_for(self, discharge_m3s: np.ndarray) -> np.ndarray:
        """Stage (m) of each reach for discharges (n_reaches,) or (n_reaches, n_t).

        Linear interpolation of the rating curve (see
        :func:`floodwarn.kernels.inundation.stage_from_discharge`); a discharge above the top
        of a reach's curve takes the top stage (the caller flags it, see :meth:`above_top`).
        """
        q = np.asarray(discharge_m3s, np.float64)
        flat = np.ascontiguousarray(q.reshape(q.shape[0], -1))
        return stage_from_discharge(self.discharge_m3s, self.stage_m, flat).reshape(q.shape)

    def above_top(self, discharge_m3s: np.ndarray) -> np.ndarray:
        """Reaches whose discharge exceeds the top of their curve (stage capped there)."""
        q = np.asarray(discharge_m3s, np.float64)
        return q > self.discharge_m3s[:, -1].reshape((-1,) + (1,) * (q.ndim - 1))


def synthetic_rating_curves(
    terrain: TerrainModel,
    *,
    manning_n: float,
    stage_step_m: float = DEFAULT_STAGE_STEP_M,
    max_stage_m: float = DEFAULT_MAX_STAGE_M,
) -> RatingCurves:
    """HAND synthetic rating curves of every reach of ``terrain``.

    For each stage h, the cells of a reach's catchment with HAND < h are under water: their
    plan area, bed area (plan area × √(1 + slope²)) and volume Σ(h − HAND)·cell area give the
    reach's mean cross-section A = V / L, wetted perimeter P = bed area / L, hydraulic radius
    R = A / P and, with Manning, Q = A R^(2/3) S^(1/2) / n (L reach length, S reach slope).

    References
    ----------
    Zheng, X., Tarboton, D.G., Maidment, D.R., Liu, Y.Y. & Passalacqua, P. (2018) River channel
    geometry and rating curve estimation using height above the nearest drainage. JAWRA 54(4),
    785-806.
    Liu, Y.Y., Maidment, D.R., Tarboton, D.G. et al. (2018) CyberGIS-enabled national flood
    mapping (the same method behind NOAA OWP's HAND-FIM).
    """
    if not (0 < stage_step_m < max_stage_m):
        raise InputError("rating curves: need 0 < stage step < maximum stage.")
    if manning_n <= 0:
        raise InputError("rating curves: Manning n must be > 0.")
    reaches = terrain.reaches
    n_levels = round(max_stage_m / stage_step_m) + 1
    stage = np.arange(n_levels) * stage_step_m
    cell_area = terrain.grid.cell_area_km2 * 1e6
    count, hand_sum, bed_sum = rating_curve_sums(
        terrain.hand, terrain.catchment_id, terrain.conditioned, terrain.grid.cellsize_m,
        stage_step_m, n_levels, len(reaches))
    n_wet = np.cumsum(count, axis=1)
    flooded = n_wet * cell_area
    bed = np.cumsum(bed_sum, axis=1) * cell_area
    volume = np.maximum(n_wet * stage[None, :] - np.cumsum(hand_sum, axis=1), 0.0) * cell_area
    length = np.maximum(reaches.length_m.astype(np.float64), 1.0)[:, None]
    area = volume / length
    perimeter = bed / length
    radius = np.divide(area, perimeter, out=np.zeros_like(area), where=perimeter > 0)
    slope = np.maximum(reaches.slope.astype(np.float64), 1e-5)[:, None]
    discharge = area * radius ** (2.0 / 3.0) * np.sqrt(slope) / manning_n
    return RatingCurves(
        stage_m=stage,
        length_m=length[:, 0],
        flooded_area_m2=flooded.astype(np.float32),
        bed_area_m2=bed.astype(np.float32),
        volume_m3=volume.astype(np.float32),
        discharge_m3s=np.maximum.accumulate(discharge, axis=1).astype(np.float32),
    )
