"""The hydrological model of one terrain: catchment rain → runoff → routed hydrographs.

:class:`HydrologyModel` holds everything that depends on the terrain and parameters only
(reach graph, geometry, curve numbers, lags); it is built once and shared read-only.
:func:`simulate` runs one rainfall member through it. It is a pure function of its inputs:
ensemble members and basins are independent tasks (e.g. for Dask) over one shared model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from floodwarn.errors import InputError
from floodwarn.hydrology.routing import (
    catchment_lag_hours,
    catchment_land_slope_percent,
    channel_width_m,
)
from floodwarn.hydrology.runoff import (
    antecedent_moisture_class,
    curve_number_for_amc,
    incremental_runoff,
)
from floodwarn.kernels.routing import linear_reservoir, muskingum_cunge_network, trapezoid_volume
from floodwarn.parameters import RoutingParameters
from floodwarn.terrain.model import TerrainModel


@dataclass(frozen=True, eq=False)
class HydrologyModel:
    """Per-reach arrays (index = reach id − 1) that a simulation needs, built once."""

    reach_id: np.ndarray
    order: np.ndarray  # 0-based, upstream first
    downstream: np.ndarray  # 0-based, −1 at outlets
    length_m: np.ndarray
    slope: np.ndarray
    width_m: np.ndarray
    catchment_area_km2: np.ndarray
    upstream_area_km2: np.ndarray
    curve_number_ii: np.ndarray
    lag_hours: np.ndarray
    manning_n: float
    reference_flow_share: float
    metadata: dict[str, Any]

    @property
    def n_reaches(self) -> int:
        return int(self.reach_id.shape[0])


def build_hydrology_model(
    terrain: TerrainModel,
    routing: RoutingParameters,
    curve_number_ii: np.ndarray,
    *,
    metadata: dict[str, Any] | None = None,
) -> HydrologyModel:
    """Reach graph, channel geometry and catchment lags from a terrain model.

    ``curve_number_ii``: AMC II curve number per reach catchment (n,) — see
    :mod:`floodwarn.hydrology.runoff` for the table lookup or the default.
    """
    reaches = terrain.reaches
    n = len(reaches)
    cn = np.asarray(curve_number_ii, np.float64)
    if cn.shape != (n,):
        raise InputError(f"curve numbers: {cn.shape} for {n} reaches.")
    land_slope = catchment_land_slope_percent(
        terrain.conditioned, terrain.catchment_id, n, terrain.grid.cellsize_m
    )
    return HydrologyModel(
        reach_id=reaches.id.astype(np.int64),
        order=reaches.topo_order.astype(np.int64) - 1,
        downstream=reaches.downstream_id.astype(np.int64) - 1,
        length_m=np.maximum(reaches.length_m.astype(np.float64), 1.0),
        slope=np.maximum(reaches.slope.astype(np.float64), routing.min_channel_slope),
        width_m=channel_width_m(reaches.upstream_area_km2, routing),
        catchment_area_km2=reaches.catchment_area_km2.astype(np.float64),
        upstream_area_km2=reaches.upstream_area_km2.astype(np.float64),
        curve_number_ii=cn,
        lag_hours=catchment_lag_hours(reaches.catchment_area_km2, land_slope, cn, routing),
        manning_n=routing.manning_n,
        reference_flow_share=routing.reference_flow_share,
        metadata={"routing_version": routing.version, **(metadata or {})},
    )


@dataclass(frozen=True, eq=False)
class Simulation:
    """One member's result. Discharge series are (reach, time) at step ends, m³/s."""

    discharge_m3s: np.ndarray
    lateral_m3s: np.ndarray
    peak_m3s: np.ndarray
    peak_step: np.ndarray  # index of the step whose end holds the peak (−1: dry reach)
    rain_mm: np.ndarray  # (time, reach) catchment rain per step
    runoff_mm: np.ndarray  # (time, reach)
    curve_number: np.ndarray  # (reach,) at the AMC used
    amc: np.ndarray  # (reach,) 1, 2 or 3
    n_substeps: np.ndarray  # (reach,) Muskingum-Cunge sub-steps per step
    mass_balance: dict[str, float]


def simulate(
    model: HydrologyModel,
    catchment_rain_mm: np.ndarray,
    dt_s: np.ndarray,
    *,
    antecedent_rain_mm: np.ndarray | float | None = None,
    amc: int | None = None,
    season: str = "growing",
    ia_ratio: float = 0.2,
) -> Simulation:
    """Runoff and routing of one rainfall member.

    ``catchment_rain_mm`` (time, reach): rain per step per reach catchment; ``dt_s`` (time,)
    step lengths. Antecedent moisture: ``amc`` (1, 2, 3) for all catchments, or the class from
    ``antecedent_rain_mm`` (5-day rain per catchment or one value) and ``season``; else AMC II.

    The mass balance reports (m³): rain, losses, runoff; volume out of the outlets within the
    horizon; water still in catchment reservoirs and channels at the end; and
    ``relative_error`` = (runoff − out − storage) / runoff (0 for a dry run).
    """
    rain = np.asarray(catchment_rain_mm, np.float64)
    dt = np.asarray(dt_s, np.float64)
    if rain.ndim != 2 or rain.shape[1] != model.n_reaches:
        raise InputError(f"catchment rain {rain.shape} does not match {model.n_reaches} reaches.")
    if dt.shape != (rain.shape[0],) or np.any(dt <= 0):
        raise InputError("step lengths must be positive, one per time step.")
    if amc is not None:
        if amc not in (1, 2, 3):
            raise InputError(f"antecedent moisture class {amc} unknown; use 1, 2 or 3.")
        amc_class = np.full(model.n_reaches, amc, np.int8)
    elif antecedent_rain_mm is not None:
        amc_class = antecedent_moisture_class(
            np.broadcast_to(np.asarray(antecedent_rain_mm, np.float64), (model.n_reaches,)),
            season,
        )
    else:
        amc_class = np.full(model.n_reaches, 2, np.int8)
    cn = curve_number_for_amc(model.curve_number_ii, amc_class)
    runoff = incremental_runoff(rain, cn, ia_ratio=ia_ratio)
    area_m2 = model.catchment_area_km2 * 1e6
    runoff_rate = runoff.runoff_mm / 1000.0 * area_m2[None, :] / dt[:, None]
    lateral, reservoir_storage = linear_reservoir(
        np.ascontiguousarray(runoff_rate), model.lag_hours * 3600.0, dt
    )
    lateral_rt = np.ascontiguousarray(lateral.T)
    outflow, _inflow, n_sub, channel_storage, clamped = muskingum_cunge_network(
        lateral_rt, dt, model.order, model.downstream, model.length_m, model.slope,
        model.width_m, model.manning_n, model.reference_flow_share,
    )
    # Muskingum dips below 0 are kept for volume only; results keep 7 significant digits
    # (float32), which halves the memory of an ensemble.
    outflow_shown = np.maximum(outflow, 0.0).astype(np.float32)
    peak = outflow.max(axis=1)
    peak_step = np.where(peak > 0, outflow.argmax(axis=1), -1)
    outlets = model.downstream < 0
    rain_m3 = float((rain.sum(axis=0) / 1000.0 * area_m2).sum())
    runoff_m3 = float((runoff.runoff_mm.sum(axis=0) / 1000.0 * area_m2).sum())
    out_m3 = float(trapezoid_volume(np.ascontiguousarray(outflow[outlets]), dt).sum())
    res_m3 = float(reservoir_storage.sum())
    ch_m3 = float(channel_storage.sum())
    balance = {
        "rain_m3": rain_m3,
        "loss_m3": rain_m3 - runoff_m3,
        "runoff_m3": runoff_m3,
        "outlet_volume_m3": out_m3,
        "catchment_storage_m3": res_m3,
        "channel_storage_m3": ch_m3,
        "negative_dip_m3": float(clamped),
        "relative_error": (runoff_m3 - out_m3 - res_m3 - ch_m3) / runoff_m3 if runoff_m3 > 0
        else 0.0,
    }
    return Simulation(
        discharge_m3s=outflow_shown,
        lateral_m3s=lateral_rt.astype(np.float32),
        peak_m3s=peak,
        peak_step=peak_step,
        rain_mm=rain,
        runoff_mm=runoff.runoff_mm,
        curve_number=cn,
        amc=amc_class,
        n_substeps=n_sub,
        mass_balance=balance,
    )
