"""The hydraulic geometry of every reach, shared by routing and flood mapping: bed slope from
the smoothed river profile, the bankfull channel the DEM cannot see, and a compound-section
rating curve (channel + HAND floodplain).

Why a channel is added below the DEM. A 30–90 m DEM records the water surface (or the valley
floor) where the river is, never its bed: a HAND rating curve built from the DEM alone has no
room for the river's normal flow, so every flow spills onto land at once and the river's own
cells read as flooded. As NOAA OWP's HAND inundation mapping does with its bathymetry
adjustment (Zheng et al. 2018; Aristizabal et al. 2023), each reach gets the channel the DEM
misses — bankfull width and depth from drainage area by hydraulic geometry (Bieger et al.
2015) — below the DEM's drainage level (HAND = 0). Flows up to bankfull stay in it; only above
bankfull does the water rise over the DEM's drainage and flood land, to an *overbank stage*
h = depth − bankfull depth that maps to land as depth = h − HAND.

The discharge at each level follows the divided-channel method (Chow 1959 §6-8): the main
channel (width W, its bankfull walls continued upward, roughness n_channel) and the floodplain
(the DEM's flooded cross-section with the channel's strip taken out, roughness n_floodplain)
convey separately and add up. Area and top width of the whole section give the routing its
kinematic celerity dQ/dA and its attenuation Q/(2 T S) (Ponce 1989), so flood waves slow and
spread once they leave the channel.

Above the stage where the DEM-derived curve stops (``max_stage_m``), the section is extended
with vertical walls at its top width, and reaches that need the extension are flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from floodwarn.errors import InputError
from floodwarn.kernels.inundation import interpolate_levels, rating_curve_sums
from floodwarn.kernels.profile import profile_slopes
from floodwarn.parameters import RoutingParameters
from floodwarn.terrain.model import TerrainModel

#: Overbank stage levels above the DEM's drainage, m: every 0.25 m up to 30 m.
DEFAULT_STAGE_STEP_M = 0.25
DEFAULT_MAX_STAGE_M = 30.0
#: Levels inside the bankfull channel: depth = bankfull depth × k / IN_BANK_STEPS.
IN_BANK_STEPS = 8
#: Overbank stages beyond the DEM-derived curve (m above its top), vertical walls there.
EXTENSION_M = (2.0, 5.0, 10.0, 20.0, 40.0, 70.0)


@dataclass(frozen=True, eq=False)
class RatingCurves:
    """Compound-section rating curve of every reach (row = reach id − 1).

    Per reach: ``slope`` (m/m, floored), ``length_m``, ``bankfull_width_m`` and
    ``bankfull_depth_m`` of the channel below the DEM. Per reach and level (n, K), float32:
    ``depth_m`` (water depth above the channel bed), ``discharge_m3s`` (never decreasing),
    ``area_m2`` (cross-section) and ``top_width_m``. Levels ``0…IN_BANK_STEPS`` lie in the
    channel (the last is bankfull); the next run every ``stage_step_m`` of overbank stage up
    to ``max_stage_m`` (from the DEM); the rest (``EXTENSION_M``) extend the section beyond.
    ``dem_top`` is the index of the last DEM-derived level.
    """

    slope: np.ndarray
    length_m: np.ndarray
    bankfull_width_m: np.ndarray
    bankfull_depth_m: np.ndarray
    depth_m: np.ndarray
    discharge_m3s: np.ndarray
    area_m2: np.ndarray
    top_width_m: np.ndarray
    dem_top: int

    @property
    def n_reaches(self) -> int:
        return int(self.slope.shape[0])

    @property
    def bankfull_discharge_m3s(self) -> np.ndarray:
        """Discharge that fills the channel to the DEM's drainage level (HAND = 0)."""
        return self.discharge_m3s[:, IN_BANK_STEPS].astype(np.float64)

    def depth_for(self, discharge_m3s: np.ndarray) -> np.ndarray:
        """Water depth above the bed (m) of each reach for discharges (n,) or (n, n_t), by
        linear interpolation of the curve (the top level beyond it; see :meth:`beyond_top`)."""
        q = np.asarray(discharge_m3s, np.float64)
        flat = np.ascontiguousarray(q.reshape(q.shape[0], -1))
        return interpolate_levels(self.discharge_m3s, self.depth_m, flat).reshape(q.shape)

    def stage_for(self, discharge_m3s: np.ndarray) -> np.ndarray:
        """Overbank stage (m above the DEM's drainage, HAND = 0): depth − bankfull depth.
        Negative while the flow stays in the channel, when no land floods."""
        depth = self.depth_for(discharge_m3s)
        shape = (-1,) + (1,) * (depth.ndim - 1)
        return depth - self.bankfull_depth_m.reshape(shape)

    def extended(self, discharge_m3s: np.ndarray) -> np.ndarray:
        """Reaches whose discharge needs the section beyond the DEM-derived curve."""
        q = np.asarray(discharge_m3s, np.float64)
        top = self.discharge_m3s[:, self.dem_top].reshape((-1,) + (1,) * (q.ndim - 1))
        return q > top

    def beyond_top(self, discharge_m3s: np.ndarray) -> np.ndarray:
        """Reaches whose discharge exceeds even the extended curve (stage capped there)."""
        q = np.asarray(discharge_m3s, np.float64)
        return q > self.discharge_m3s[:, -1].reshape((-1,) + (1,) * (q.ndim - 1))


def bankfull_geometry(upstream_area_km2: np.ndarray, routing: RoutingParameters
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Bankfull width and depth (m) from upstream drainage area (km²): W = a·A^b, D = c·A^d.

    References
    ----------
    Bieger, K., Rathjens, H., Allen, P.M. & Arnold, J.G. (2015) Development and evaluation of
    bankfull hydraulic geometry relationships for the physiographic regions of the United
    States. JAWRA 51(3), 842-858 (all-regions fits).
    Leopold, L.B. & Maddock, T. (1953) The hydraulic geometry of stream channels and some
    physiographic implications. USGS Professional Paper 252.
    """
    area = np.maximum(np.asarray(upstream_area_km2, np.float64), 1e-3)
    return (routing.width_coefficient_m * area**routing.width_exponent,
            routing.depth_coefficient_m * area**routing.depth_exponent)


def channel_slopes(terrain: TerrainModel, routing: RoutingParameters) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    """Bed slope of every reach from its smoothed longitudinal profile (see
    :func:`floodwarn.kernels.profile.profile_slopes`), floored at
    ``routing.min_channel_slope`` — the one slope every user of a reach's geometry shares.
    Returns (slope, window length in m)."""
    reaches = terrain.reaches
    cell = terrain.grid.cellsize_m
    raw, window = profile_slopes(
        terrain.conditioned, terrain.flowdir, terrain.accumulation,
        reaches.path_start, reaches.path_cells, float(cell),
        max(routing.slope_min_window_cells * cell, routing.slope_min_window_m),
        routing.slope_max_window_m, routing.slope_min_drop_m)
    return np.maximum(raw, routing.min_channel_slope), window


def reach_rating_curves(terrain: TerrainModel, routing: RoutingParameters, *,
                        bankfull_discharge_m3s: np.ndarray | None = None,
                        stage_step_m: float = DEFAULT_STAGE_STEP_M,
                        max_stage_m: float = DEFAULT_MAX_STAGE_M) -> RatingCurves:
    """The hydraulic geometry of every reach of ``terrain`` with ``routing``'s parameters:
    profile slope, bankfull channel and compound rating curve (module docstring).

    ``bankfull_discharge_m3s`` (n,): the flow each channel must hold in bank (see
    :func:`floodwarn.hydrology.bankfull.bankfull_discharge`); the channel is deepened (its
    width kept) until it does. Without it, the channel is the regression's alone.
    """
    slope, _ = channel_slopes(terrain, routing)
    width, depth = bankfull_geometry(terrain.reaches.upstream_area_km2, routing)
    if bankfull_discharge_m3s is not None:
        depth = np.maximum(depth, channel_depth_for(bankfull_discharge_m3s, width, slope,
                                                    routing.manning_n))
    return synthetic_rating_curves(
        terrain, slope=slope, bankfull_width_m=width, bankfull_depth_m=depth,
        channel_manning_n_base=routing.manning_n,
        floodplain_manning_n=routing.floodplain_manning_n,
        stage_step_m=stage_step_m, max_stage_m=max_stage_m)


def channel_manning_n(base_n: float, slope: np.ndarray, radius_m: np.ndarray) -> np.ndarray:
    """Roughness of a channel: ``base_n``, or Jarrett's for steep streams where that is
    rougher, n = 0.39 S^0.38 R^-0.16 (S m/m, R m) — boulders and steps slow steep mountain
    rivers far below what a plain-channel n gives (Jarrett's data: S 0.002-0.04, R 0.15-2.2
    m; beyond them the formula is extended, and it falls below ``base_n`` on gentle slopes).

    References
    ----------
    Jarrett, R.D. (1984) Hydraulics of high-gradient streams. Journal of Hydraulic Engineering
    110(11), 1519-1539.
    """
    radius = np.maximum(np.asarray(radius_m, np.float64), 0.05)
    return np.maximum(base_n, 0.39 * np.asarray(slope, np.float64) ** 0.38 * radius ** -0.16)


def critical_discharge(area_m2: np.ndarray, top_width_m: np.ndarray) -> np.ndarray:
    """Discharge of a section part flowing at critical speed, Q = A·√(g·A/T): natural rivers
    on erodible beds do not stay supercritical — bedforms and losses keep the Froude number
    near or below 1 (Grant 1997) — so no part of a section carries more.

    References
    ----------
    Grant, G.E. (1997) Critical flow constrains flow hydraulics in mobile-bed streams: a new
    hypothesis. Water Resources Research 33(2), 349-358.
    """
    area = np.asarray(area_m2, np.float64)
    top = np.asarray(top_width_m, np.float64)
    depth = np.divide(area, top, out=np.zeros(np.broadcast(area, top).shape), where=top > 0)
    return area * np.sqrt(9.81 * depth)


def channel_depth_for(discharge_m3s: np.ndarray, width_m: np.ndarray, slope: np.ndarray,
                      base_n: float) -> np.ndarray:
    """Depth (m) at which a rectangular channel of ``width_m`` and ``slope`` carries
    ``discharge_m3s`` by Manning with :func:`channel_manning_n`, at most critical flow
    (bisection on all reaches at once; the capacity grows with depth)."""
    q = np.maximum(np.asarray(discharge_m3s, np.float64), 0.0)
    w = np.asarray(width_m, np.float64)
    s = np.asarray(slope, np.float64)
    low = np.zeros_like(q)
    high = np.full_like(q, 1.0)

    def capacity(depth: np.ndarray) -> np.ndarray:
        radius = w * depth / (w + 2 * depth)
        manning = w * depth * radius ** (2 / 3) * np.sqrt(s) / channel_manning_n(base_n, s,
                                                                                 radius)
        return np.minimum(manning, critical_discharge(w * depth, w))

    for _ in range(60):  # grow the bracket until it holds the flow
        short = capacity(high) < q
        if not short.any():
            break
        high = np.where(short, 2 * high, high)
    for _ in range(50):  # halve it down to a micrometre
        mid = 0.5 * (low + high)
        enough = capacity(mid) >= q
        high = np.where(enough, mid, high)
        low = np.where(enough, low, mid)
    return high


def _manning(area: np.ndarray, perimeter: np.ndarray, slope: np.ndarray,
             n: float | np.ndarray) -> np.ndarray:
    radius = np.divide(area, perimeter, out=np.zeros_like(area), where=perimeter > 0)
    return area * radius ** (2.0 / 3.0) * np.sqrt(slope) / n


def synthetic_rating_curves(
    terrain: TerrainModel,
    *,
    slope: np.ndarray,
    bankfull_width_m: np.ndarray,
    bankfull_depth_m: np.ndarray,
    channel_manning_n_base: float,
    floodplain_manning_n: float,
    stage_step_m: float = DEFAULT_STAGE_STEP_M,
    max_stage_m: float = DEFAULT_MAX_STAGE_M,
) -> RatingCurves:
    """Compound-section rating curves of every reach of ``terrain`` (module docstring).

    Floodplain part, for each overbank stage h: the cells of a reach's catchment with
    HAND < h are under water; their plan area, bed area (plan area × √(1 + slope²)) and
    volume Σ(h − HAND)·cell area, divided by the reach length, give top width, wetted
    perimeter and cross-section (Zheng et al. 2018), from which the channel's strip (W wide,
    W·h of area) is taken out. Channel part: a rectangle W wide whose depth is the bankfull
    depth D plus h. Q = Q_channel + Q_floodplain by Manning with their own roughness (the
    channel's rougher on steep streams, :func:`channel_manning_n`), neither part faster than
    critical flow (:func:`critical_discharge`).

    References
    ----------
    Zheng, X., Tarboton, D.G., Maidment, D.R., Liu, Y.Y. & Passalacqua, P. (2018) River channel
    geometry and rating curve estimation using height above the nearest drainage. JAWRA 54(4),
    785-806.
    Aristizabal, F., Salas, F., Petrochenkov, G. et al. (2023) Extending height above nearest
    drainage to model multiple fluvial sources in flood inundation mapping applications for
    the U.S. National Water Model. Water Resources Research 59 (NOAA OWP's HAND-FIM, with its
    synthetic-rating-curve adjustments).
    Chow, V.T. (1959) Open-Channel Hydraulics, McGraw-Hill, §6-8 (compound sections, divided
    channel method).
    """
    if not (0 < stage_step_m < max_stage_m):
        raise InputError("rating curves: need 0 < stage step < maximum stage.")
    if channel_manning_n_base <= 0 or floodplain_manning_n <= 0:
        raise InputError("rating curves: Manning n must be > 0.")
    reaches = terrain.reaches
    n = len(reaches)
    s = np.asarray(slope, np.float64)
    w = np.asarray(bankfull_width_m, np.float64)
    d = np.asarray(bankfull_depth_m, np.float64)
    for name, arr in (("slope", s), ("bankfull width", w), ("bankfull depth", d)):
        if arr.shape != (n,) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
            raise InputError(f"rating curves: {name} must be {n} positive numbers, one per "
                             "reach.")
    n_dem = round(max_stage_m / stage_step_m) + 1
    count, hand_sum, bed_sum = rating_curve_sums(
        terrain.hand, terrain.catchment_id, terrain.conditioned, terrain.grid.cellsize_m,
        stage_step_m, n_dem, n)
    cell_area = terrain.grid.cell_area_km2 * 1e6
    length = np.maximum(reaches.length_m.astype(np.float64), 1.0)
    stage = np.arange(n_dem) * stage_step_m
    n_wet = np.cumsum(count, axis=1)
    # DEM section at each overbank stage (n, n_dem), with the channel's strip taken out.
    top_dem = n_wet * cell_area / length[:, None]
    bed_dem = np.cumsum(bed_sum, axis=1) * cell_area / length[:, None]
    area_dem = np.maximum(n_wet * stage[None, :] - np.cumsum(hand_sum, axis=1), 0.0) \
        * cell_area / length[:, None]
    top_fp = np.maximum(top_dem - w[:, None], 0.0)
    perimeter_fp = np.maximum(bed_dem - w[:, None], 0.0)
    area_fp = np.maximum(area_dem - w[:, None] * stage[None, :], 0.0)
    # Beyond the DEM's top: vertical walls at the top width.
    extra = np.asarray(EXTENSION_M)
    top_fp = np.concatenate([top_fp, np.repeat(top_fp[:, -1:], extra.size, axis=1)], axis=1)
    area_fp = np.concatenate([area_fp, area_fp[:, -1:] + top_fp[:, -1:] * extra[None, :]],
                             axis=1)
    perimeter_fp = np.concatenate([perimeter_fp, perimeter_fp[:, -1:] + 2.0 * extra[None, :]],
                                  axis=1)
    overbank = np.concatenate([stage, max_stage_m + extra])
    # In-bank levels (fractions of bankfull depth, the last = bankfull) then overbank ones.
    fractions = np.arange(1, IN_BANK_STEPS + 1) / IN_BANK_STEPS
    depth_in = np.concatenate([np.zeros((n, 1)), d[:, None] * fractions[None, :]], axis=1)
    depth_over = d[:, None] + overbank[None, 1:]
    depth = np.concatenate([depth_in, depth_over], axis=1)
    area_channel = w[:, None] * depth
    perimeter_channel = w[:, None] + 2.0 * np.minimum(depth, d[:, None])
    radius_channel = area_channel / perimeter_channel
    q_channel = _manning(area_channel, perimeter_channel, s[:, None],
                         channel_manning_n(channel_manning_n_base, s[:, None], radius_channel))
    zeros_in = np.zeros((n, IN_BANK_STEPS + 1))
    area_fp_all = np.concatenate([zeros_in, area_fp[:, 1:]], axis=1)
    top_fp_all = np.concatenate([zeros_in, top_fp[:, 1:]], axis=1)
    perimeter_fp_all = np.concatenate([zeros_in, perimeter_fp[:, 1:]], axis=1)
    q_floodplain = _manning(area_fp_all, perimeter_fp_all, s[:, None], floodplain_manning_n)
    q_channel = np.minimum(q_channel, critical_discharge(area_channel, w[:, None]))
    q_floodplain = np.minimum(q_floodplain, critical_discharge(area_fp_all, top_fp_all))
    discharge = np.maximum.accumulate(q_channel + q_floodplain, axis=1)
    return RatingCurves(
        slope=s,
        length_m=length,
        bankfull_width_m=w,
        bankfull_depth_m=d,
        depth_m=depth.astype(np.float32),
        discharge_m3s=discharge.astype(np.float32),
        area_m2=(area_channel + area_fp_all).astype(np.float32),
        top_width_m=(w[:, None] + top_fp_all).astype(np.float32),
        dem_top=IN_BANK_STEPS + n_dem - 1,
    )
