"""What every forecast on a terrain reuses, computed once and cached: reach hydraulic geometry
and water cells, the hydrology model, design-storm thresholds, catchment rain weights.

The reach geometry is prepared by sizing (:func:`prepared_hydrology`): the channels of the
hydraulic-geometry regression route the design storms; each channel is then sized to hold its
bankfull discharge (the model's own 1.5-year flood, or the steady flow where that is larger:
:mod:`floodwarn.hydrology.bankfull`), and the design storms are routed again through the new
geometry, until the bankfull discharges settle. Every product is cached under a key of
everything it depends on, so a changed terrain, parameter file or floodwarn version never
reuses a stale one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from floodwarn import __version__
from floodwarn.hydrology.bankfull import bankfull_discharge
from floodwarn.hydrology.catchment_rain import (
    CatchmentWeights,
    build_catchment_weights,
    catchment_weights_key,
)
from floodwarn.hydrology.runoff import catchment_curve_numbers, curve_number_grid
from floodwarn.hydrology.simulation import HydrologyModel, build_hydrology_model, simulate
from floodwarn.hydrology.thresholds import (
    ReturnPeriodThresholds,
    return_period_thresholds,
    thresholds_key,
)
from floodwarn.hydrology.water_bodies import WaterBodyNetwork
from floodwarn.inundation.depth import water_cells
from floodwarn.inundation.rating_curves import (
    DEFAULT_MAX_STAGE_M,
    DEFAULT_STAGE_STEP_M,
    RatingCurves,
    reach_rating_curves,
)
from floodwarn.io.cache import ArrayCache
from floodwarn.io.raster import read_categorical_on_grid
from floodwarn.logs import get_logger, timed_step
from floodwarn.parameters import (
    MONTHS,
    BaseFlow,
    CurveNumberTable,
    IdfParameters,
    RoutingParameters,
    load_parameters,
)
from floodwarn.rainfall.forecast import RainfallForecast
from floodwarn.terrain.model import TerrainModel

log = get_logger(__name__)

#: Bumped when the way a cached product is computed changes: old entries are never reused.
PREPARATION_VERSION = "2"
#: Channels are re-sized until 95 % of their bankfull discharges change by less than this
#: share…
SIZING_TOLERANCE = 0.1
#: … or this many times (each pass halves the change, about).
MAX_SIZING_PASSES = 6


@dataclass(frozen=True, eq=False)
class PreparedHydrology:
    """A terrain's hydrology model over its final reach geometry, the water cells (channels;
    lakes are added per run), where its curve numbers came from, and the bankfull discharge
    each channel was sized to."""

    hydro: HydrologyModel
    curves: RatingCurves
    water: np.ndarray
    curve_numbers: dict[str, Any]
    bankfull_m3s: np.ndarray


def prepared_hydrology(terrain: TerrainModel, routing: RoutingParameters,
                       bodies: WaterBodyNetwork, cache: ArrayCache, *,
                       landcover_path: str | Path | None = None,
                       soil_path: str | Path | None = None, ia_ratio: float = 0.2,
                       timings: dict[str, float] | None = None) -> PreparedHydrology:
    """The hydrology model of ``terrain`` with channels sized to their bankfull discharge
    (module docstring): regression geometry → hourly design-storm thresholds and the steady
    flow of the design month → bankfull discharge → geometry, repeated until the bankfull
    discharges settle (fixed-point iteration; about five passes of the 2- and 5-year design
    storms)."""
    timings = timings if timings is not None else {}
    cn_ii, cn_source = curve_numbers(terrain, landcover_path, soil_path)
    idf = load_parameters(IdfParameters)
    with timed_step(log, "regression_geometry", timings):
        # The channels' widths, hence the water cells, come from the regression alone.
        curves, water_or_none = reach_geometry(terrain, routing, cache)
        assert water_or_none is not None  # the regression geometry always carries them
        water = water_or_none
        hydro = build_hydrology_model(terrain, routing, cn_ii, curves, bodies)
    # The 2- and 5-year design storms are all the sizing needs.
    sizing_idf = idf.model_copy(update={"return_periods_years": [2, 5]})
    month, specific = design_month()
    sizing_key = _versioned("sizing|" + thresholds_key(
        hydro, sizing_idf, ia_ratio, 1, specific, bodies.initial_levels(month)))
    stored = cache.load("bankfull", sizing_key)
    if stored is not None:
        bankfull = stored["q"]
    else:
        bankfull = np.zeros(len(terrain.reaches))
        for sizing in range(1, MAX_SIZING_PASSES + 1):
            # Larger channels attenuate less and raise the floods that size them: repeat
            # until the bankfull discharges settle.
            with timed_step(log, "bankfull_sizing", timings, sizing_pass=sizing) as info:
                sized = bankfull_discharge(thresholds(hydro, sizing_idf, ia_ratio, 1, cache),
                                           steady_flow(hydro))
                changes = np.abs(sized - bankfull) / np.maximum(sized, 1e-3)
                change = float(np.percentile(changes, 95))
                info["change_p95"] = round(change, 4)
                info["change_max"] = round(float(changes.max()), 4)
                bankfull = sized
                curves = reach_geometry(terrain, routing, cache, bankfull_m3s=bankfull)[0]
                hydro = build_hydrology_model(terrain, routing, cn_ii, curves, bodies)
            if change < SIZING_TOLERANCE:
                break
        cache.save("bankfull", sizing_key, {"q": bankfull})
    curves = reach_geometry(terrain, routing, cache, bankfull_m3s=bankfull)[0]
    hydro = build_hydrology_model(terrain, routing, cn_ii, curves, bodies)
    return PreparedHydrology(hydro=hydro, curves=curves, water=water, curve_numbers=cn_source,
                             bankfull_m3s=bankfull)


def design_month() -> tuple[int, float]:
    """The month annual floods come in (``models/base_flow.yaml``) and its base flow."""
    base_flow = load_parameters(BaseFlow)
    month = MONTHS.index(base_flow.design_storm_month) + 1
    return month, base_flow.for_month(month)


def steady_flow(hydro: HydrologyModel) -> np.ndarray:
    """Flow out of every reach before any storm in the design month: its base flow, the
    water bodies at their normal levels releasing what their outlets pass."""
    month, specific = design_month()
    dry = np.zeros((1, hydro.n_reaches))
    return simulate(hydro, dry, np.array([3600.0]), amc=2, base_flow_l_s_km2=specific,
                    initial_levels_m=hydro.water_bodies.initial_levels(month)).base_flow_m3s


def thresholds(hydro: HydrologyModel, idf: IdfParameters, ia_ratio: float, step_hours: int,
               cache: ArrayCache) -> ReturnPeriodThresholds:
    """Design-storm thresholds, reused from the cache for the same model and parameters.
    Design storms start from the base flow and water-body levels of the month annual floods
    come in (``models/base_flow.yaml``: ``design_storm_month``)."""
    month, specific = design_month()
    levels = hydro.water_bodies.initial_levels(month)
    key = thresholds_key(hydro, idf, ia_ratio, step_hours, specific, levels)
    stored = cache.load("thresholds", _versioned(key))
    if stored is not None:
        return ReturnPeriodThresholds(
            return_periods_years=stored["years"],
            discharge_m3s=stored["q"],
            idf_version=idf.version,
            idf_is_approximation=idf.approximation,
        )
    result = return_period_thresholds(hydro, idf, ia_ratio=ia_ratio, step_hours=step_hours,
                                      base_flow_l_s_km2=specific, initial_levels_m=levels)
    cache.save("thresholds", _versioned(key), {"years": result.return_periods_years,
                                               "q": result.discharge_m3s})
    return result


def catchment_weights(terrain: TerrainModel, forecast: RainfallForecast,
                      cache: ArrayCache) -> CatchmentWeights:
    """Catchment rain weights, reused from the cache for the same terrain and forecast grid."""
    key = catchment_weights_key(terrain, forecast)
    stored = cache.load("catchment_weights", key)
    if stored is not None:
        return CatchmentWeights.from_arrays(stored)
    weights = build_catchment_weights(terrain, forecast)
    cache.save("catchment_weights", key, weights.to_arrays())
    return weights


def curve_numbers(terrain: TerrainModel, landcover_path: str | Path | None,
                  soil_path: str | Path | None) -> tuple[np.ndarray, dict[str, Any]]:
    """AMC II curve number of every reach catchment — from land-cover and soil rasters when
    both are given, else the default of ``models/curve_numbers.yaml`` — and a record of where
    they came from."""
    cn_table = load_parameters(CurveNumberTable)
    n_reaches = len(terrain.reaches)
    if landcover_path is not None and soil_path is not None:
        cn_grid = curve_number_grid(
            read_categorical_on_grid(Path(landcover_path), terrain.grid, what="land cover"),
            read_categorical_on_grid(Path(soil_path), terrain.grid, what="soil group"),
            cn_table,
        )
        cn_ii, defaulted = catchment_curve_numbers(
            cn_grid, terrain.catchment_id, n_reaches, cn_table.default_curve_number)
        return cn_ii, {"landcover": str(landcover_path), "soil": str(soil_path),
                       "cells_defaulted_share": round(defaulted, 4)}
    return np.full(n_reaches, cn_table.default_curve_number), {
        "default": f"{cn_table.default_cover} on soil group {cn_table.default_soil_group}",
        "curve_number": cn_table.default_curve_number,
    }


def reach_geometry(terrain: TerrainModel, routing: RoutingParameters, cache: ArrayCache, *,
                   bankfull_m3s: np.ndarray | None = None
                   ) -> tuple[RatingCurves, np.ndarray | None]:
    """Reach hydraulic geometry (channels holding ``bankfull_m3s`` when given), reused from
    the cache for the same terrain, parameters and bankfull discharges; with the regression's
    channels (no ``bankfull_m3s``) also the water cells (:func:`water_cells` without the
    lakes, which are found per run), else None."""
    h = hashlib.blake2b(digest_size=16)
    h.update(terrain.digest("hand", "catchment_id", "conditioned", "flowdir",
                            "accumulation").encode())
    h.update(f"{routing.model_dump_json()}|{DEFAULT_STAGE_STEP_M}|{DEFAULT_MAX_STAGE_M}"
             .encode())
    if bankfull_m3s is not None:
        h.update(np.ascontiguousarray(bankfull_m3s, np.float64).tobytes())
    key = _versioned(h.hexdigest())
    stored: dict[str, Any] | None = cache.load("reach_geometry", key)
    if stored is not None:
        water = stored.pop("water_cells").astype(bool) if "water_cells" in stored else None
        stored["dem_top"] = int(stored["dem_top"])
        return RatingCurves(**stored), water
    curves = reach_rating_curves(terrain, routing, bankfull_discharge_m3s=bankfull_m3s)
    arrays: dict[str, np.ndarray] = {**vars(curves), "dem_top": np.array(curves.dem_top)}
    water = None
    if bankfull_m3s is None:  # the sized channels keep these widths, hence these cells
        water = water_cells(terrain, curves,
                            WaterBodyNetwork.empty(len(terrain.reaches), terrain.grid.shape))
        arrays["water_cells"] = water
    cache.save("reach_geometry", key, arrays)
    return curves, water


def _versioned(key: str) -> str:
    """A cache key that changes with floodwarn's and the preparation's version."""
    return hashlib.blake2b(f"{key}|{__version__}|{PREPARATION_VERSION}".encode(),
                           digest_size=16).hexdigest()
