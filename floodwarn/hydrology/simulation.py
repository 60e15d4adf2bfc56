"""The hydrological model of one terrain: catchment rain → runoff → routed hydrographs.

:class:`HydrologyModel` holds everything that depends on the terrain and parameters only
(reach graph, reach hydraulic geometry, curve numbers, lags, water bodies); it is built once
and shared read-only. :func:`simulate` runs one rainfall member through it. It is a pure
function of its inputs: ensemble members and basins are independent tasks (e.g. for Dask)
over one shared model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from floodwarn.errors import InputError
from floodwarn.hydrology.routing import catchment_lag_hours, catchment_land_slope_percent
from floodwarn.hydrology.runoff import (
    antecedent_moisture_class,
    check_amc,
    curve_number_for_amc,
    incremental_runoff,
)
from floodwarn.hydrology.water_bodies import WaterBodyNetwork
from floodwarn.inundation.rating_curves import RatingCurves
from floodwarn.kernels.routing import route_network, routing_schedule
from floodwarn.parameters import RoutingParameters
from floodwarn.terrain.model import TerrainModel


@dataclass(frozen=True, eq=False)
class HydrologyModel:
    """Per-reach arrays (index = reach id − 1) that a simulation needs, built once.

    ``curves`` is the reach hydraulic geometry shared with flood mapping (slope, bankfull
    channel, compound rating curve); ``water_bodies`` the reservoirs and lakes routed as
    level pools; ``visit_order`` and ``n_buffers`` the routing schedule.
    """

    reach_id: np.ndarray
    downstream: np.ndarray  # 0-based, −1 at outlets
    visit_order: np.ndarray
    n_buffers: int
    length_m: np.ndarray
    catchment_area_km2: np.ndarray
    upstream_area_km2: np.ndarray
    curve_number_ii: np.ndarray
    lag_hours: np.ndarray
    curves: RatingCurves
    water_bodies: WaterBodyNetwork
    routing_step_s: float
    reference_flow_share: float
    metadata: dict[str, Any]

    @property
    def n_reaches(self) -> int:
        return int(self.reach_id.shape[0])

    @property
    def slope(self) -> np.ndarray:
        return self.curves.slope


def build_hydrology_model(
    terrain: TerrainModel,
    routing: RoutingParameters,
    curve_number_ii: np.ndarray,
    curves: RatingCurves,
    water_bodies: WaterBodyNetwork,
    *,
    metadata: dict[str, Any] | None = None,
) -> HydrologyModel:
    """Reach graph, routing schedule and catchment lags of a terrain model, with the reach
    geometry ``curves`` (:func:`floodwarn.inundation.rating_curves.reach_rating_curves`) and
    the ``water_bodies`` found on it
    (:func:`floodwarn.hydrology.water_bodies.locate_water_bodies`).

    ``curve_number_ii``: AMC II curve number per reach catchment (n,) — see
    :mod:`floodwarn.hydrology.runoff` for the table lookup or the default.
    """
    reaches = terrain.reaches
    n = len(reaches)
    cn = np.asarray(curve_number_ii, np.float64)
    if cn.shape != (n,):
        raise InputError(f"curve numbers: {cn.shape} for {n} reaches.")
    if curves.n_reaches != n or water_bodies.pass_through.shape != (n,):
        raise InputError("reach geometry or water bodies belong to another terrain model.")
    land_slope = catchment_land_slope_percent(
        terrain.conditioned, terrain.catchment_id, n, terrain.grid.cellsize_m
    )
    downstream = reaches.downstream_id.astype(np.int64) - 1
    order, n_buffers = routing_schedule(downstream)
    return HydrologyModel(
        reach_id=reaches.id.astype(np.int64),
        downstream=downstream,
        visit_order=order,
        n_buffers=int(n_buffers),
        length_m=curves.length_m,
        catchment_area_km2=reaches.catchment_area_km2.astype(np.float64),
        upstream_area_km2=reaches.upstream_area_km2.astype(np.float64),
        curve_number_ii=cn,
        lag_hours=catchment_lag_hours(reaches.catchment_area_km2, land_slope, cn, routing),
        curves=curves,
        water_bodies=water_bodies,
        routing_step_s=routing.routing_step_s,
        reference_flow_share=routing.reference_flow_share,
        metadata={"routing_version": routing.version, **(metadata or {})},
    )


@dataclass(frozen=True, eq=False)
class Simulation:
    """One member's result. Discharge series are (reach, time) at step ends, m³/s."""

    discharge_m3s: np.ndarray
    lateral_m3s: np.ndarray  # catchment response + base flow entering each reach
    peak_m3s: np.ndarray  # at the routing resolution (finer than the steps)
    peak_time_s: np.ndarray  # seconds from the start
    peak_step: np.ndarray  # the step during which the peak passes (−1: never above base)
    rain_mm: np.ndarray  # (time, reach) catchment rain per step
    runoff_mm: np.ndarray  # (time, reach)
    curve_number: np.ndarray  # (reach,) at the AMC used
    amc: np.ndarray  # (reach,) 1, 2 or 3
    base_flow_m3s: np.ndarray  # (reach,) steady flow out of each reach before the storm
    celerity_m_s: np.ndarray  # (reach,) flood-wave celerity at the reference discharge
    diffusivity_m2_s: np.ndarray  # (reach,) hydraulic diffusivity there
    regime: np.ndarray  # (reach,) floodwarn.kernels.routing.REGIME_*
    water_body_level_m: np.ndarray  # (water body, time) at step ends
    water_body_inflow_m3s: np.ndarray
    water_body_outflow_m3s: np.ndarray
    water_body_peak_level_m: np.ndarray  # (water body,)
    water_body_initial_level_m: np.ndarray
    mass_balance: dict[str, float]


def routing_interval(dt_s: np.ndarray, target_s: float) -> tuple[float, np.ndarray]:
    """The routing interval (s) — the largest whole fraction of the steps' common divisor
    not longer than ``target_s`` — and how many of it each step holds."""
    dt = np.asarray(dt_s, np.float64)
    whole = np.round(dt).astype(np.int64)
    if np.any(np.abs(dt - whole) > 1e-6) or np.any(whole <= 0):
        raise InputError("forecast steps must be whole seconds (and positive).")
    common = int(np.gcd.reduce(whole))
    interval = common / math.ceil(common / target_s)
    return interval, np.round(dt / interval).astype(np.int64)


def simulate(
    model: HydrologyModel,
    catchment_rain_mm: np.ndarray,
    dt_s: np.ndarray,
    *,
    antecedent_rain_mm: np.ndarray | float | None = None,
    amc: int | None = None,
    season: str = "growing",
    ia_ratio: float = 0.2,
    base_flow_l_s_km2: float = 0.0,
    initial_levels_m: np.ndarray | None = None,
) -> Simulation:
    """Runoff and routing of one rainfall member.

    ``catchment_rain_mm`` (time, reach): rain per step per reach catchment; ``dt_s`` (time,)
    step lengths. Antecedent moisture: ``amc`` (1, 2, 3) for all catchments, or the class from
    ``antecedent_rain_mm`` (5-day rain per catchment or one value) and ``season``; else AMC II.
    ``base_flow_l_s_km2``: base flow per km² of catchment (``models/base_flow.yaml``);
    ``initial_levels_m``: the water bodies' levels at the start (default: their table's
    first row… callers pass :meth:`WaterBodyNetwork.initial_levels`).

    The mass balance reports (m³): rain, losses, runoff; base flow; what the catchment
    reservoirs passed to the channels and still hold; volume out of the outlets within the
    horizon; water in channels and water bodies at the start and the end; the catchments'
    discretisation (the exact reservoir volume against the routing's samples of it); and
    ``relative_error`` of the whole balance, (runoff + base flow − out − Δstorage) / (runoff
    + base flow), and ``routing_relative_error`` of the channels and water bodies alone.
    """
    rain = np.asarray(catchment_rain_mm, np.float64)
    dt = np.asarray(dt_s, np.float64)
    if rain.ndim != 2 or rain.shape[1] != model.n_reaches:
        raise InputError(f"catchment rain {rain.shape} does not match {model.n_reaches} reaches.")
    if dt.shape != (rain.shape[0],) or np.any(dt <= 0):
        raise InputError("step lengths must be positive, one per time step.")
    if not (np.isfinite(base_flow_l_s_km2) and base_flow_l_s_km2 >= 0):
        raise InputError(f"base flow {base_flow_l_s_km2} L/s/km² must be a number ≥ 0.")
    if amc is not None:
        check_amc(amc)
        amc_class = np.full(model.n_reaches, amc, np.int8)
    elif antecedent_rain_mm is not None:
        amc_class = antecedent_moisture_class(
            np.broadcast_to(np.asarray(antecedent_rain_mm, np.float64), (model.n_reaches,)),
            season,
        )
    else:
        amc_class = np.full(model.n_reaches, 2, np.int8)
    bodies = model.water_bodies
    levels0 = (np.asarray(initial_levels_m, np.float64) if initial_levels_m is not None
               else bodies.levels_m[:, 0].astype(np.float64))
    if levels0.shape != (bodies.n_bodies,):
        raise InputError(f"{levels0.shape[0]} initial levels for {bodies.n_bodies} water "
                         "bodies.")
    cn = curve_number_for_amc(model.curve_number_ii, amc_class)
    runoff = incremental_runoff(rain, cn, ia_ratio=ia_ratio)
    area_m2 = model.catchment_area_km2 * 1e6
    runoff_rate = np.ascontiguousarray((runoff.runoff_mm / 1000.0 * area_m2[None, :]
                                        / dt[:, None]).T)
    base = base_flow_l_s_km2 / 1000.0 * model.catchment_area_km2
    interval, per_step = routing_interval(dt, model.routing_step_s)
    pool_of_reach = np.full(model.n_reaches, -1, np.int64)
    pool_of_reach[bodies.outlet_reach] = np.arange(bodies.n_bodies)
    curves = model.curves
    (outflow, steady, lateral, peak, peak_time, celerity, diffusivity, _parts, regime,
     channel_start, channel_end, catchment_storage, runoff_m3, lateral_m3, _boundary_m3,
     out_m3, dip_m3, pool_level, pool_inflow, pool_outflow, pool_peak, pool_start,
     pool_end) = route_network(
        runoff_rate, model.lag_hours * 3600.0, base, float(interval), per_step,
        model.visit_order, model.n_buffers, model.downstream, curves.length_m, curves.slope,
        curves.discharge_m3s, curves.area_m2, curves.top_width_m, bodies.pass_through,
        pool_of_reach, bodies.levels_m, bodies.storage_m3, bodies.outflow_m3s, levels0,
        np.zeros(0, np.int64), np.zeros((0, dt.size)), model.reference_flow_share)
    step_end_s = np.cumsum(dt)
    rising = peak > steady * (1.0 + 1e-9) + 1e-9
    peak_step = np.where(rising, np.searchsorted(step_end_s, peak_time - 1e-6), -1)
    horizon = float(dt.sum())
    base_m3 = float(base.sum()) * horizon
    quick_m3 = lateral_m3 - base_m3
    stored_start = float(channel_start.sum() + pool_start.sum())
    stored_end = float(channel_end.sum() + pool_end.sum() + catchment_storage.sum())
    supplied = runoff_m3 + base_m3
    routed_in = lateral_m3 + stored_start
    routed_out = out_m3 + float(channel_end.sum() + pool_end.sum())
    rain_m3 = float((rain.sum(axis=0) / 1000.0 * area_m2).sum())
    balance = {
        "rain_m3": rain_m3,
        "loss_m3": rain_m3 - runoff_m3,
        "runoff_m3": runoff_m3,
        "base_flow_m3": base_m3,
        "catchment_outflow_m3": quick_m3,
        "catchment_storage_m3": float(catchment_storage.sum()),
        "catchment_discretisation_m3": runoff_m3 - quick_m3 - float(catchment_storage.sum()),
        "outlet_volume_m3": out_m3,
        "channel_storage_start_m3": float(channel_start.sum()),
        "channel_storage_m3": float(channel_end.sum()),
        "water_body_storage_start_m3": float(pool_start.sum()),
        "water_body_storage_m3": float(pool_end.sum()),
        "negative_dip_m3": float(dip_m3),
        "relative_error": ((supplied + stored_start - out_m3 - stored_end) / supplied
                           if supplied > 0 else 0.0),
        "routing_relative_error": ((routed_in - routed_out) / routed_in
                                   if routed_in > 0 else 0.0),
    }
    return Simulation(
        discharge_m3s=np.maximum(outflow, 0.0).astype(np.float32),
        lateral_m3s=lateral.astype(np.float32),
        peak_m3s=peak,
        peak_time_s=peak_time,
        peak_step=peak_step.astype(np.int64),
        rain_mm=rain,
        runoff_mm=runoff.runoff_mm,
        curve_number=cn,
        amc=amc_class,
        base_flow_m3s=steady,
        celerity_m_s=celerity,
        diffusivity_m2_s=diffusivity,
        regime=regime,
        water_body_level_m=pool_level,
        water_body_inflow_m3s=pool_inflow,
        water_body_outflow_m3s=pool_outflow,
        water_body_peak_level_m=pool_peak,
        water_body_initial_level_m=levels0,
        mass_balance=balance,
    )
