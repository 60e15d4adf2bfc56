"""The jobs floodwarn runs, one readable function each. Start reading here.

Terrain (once per DEM):  DEM file → read & reproject → fill → D8 → accumulation → streams and
reaches → HAND and catchments → COGs, reaches.gpkg, terrain.json.

Forecast (every forecast):  rain file → canonical mm per step → mean rain per reach catchment
(cached sparse weights) → SCS-CN runoff with antecedent moisture → linear-reservoir catchment
response → Muskingum-Cunge routing → peaks, times, return-period classes (thresholds from
design storms through the same model) → hydrographs.nc, reaches.gpkg, run.json.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np

from floodwarn import __version__
from floodwarn.ensemble import (
    BAND_NAMES,
    EnsembleResult,
    Execution,
    MemberModel,
    MemberProgress,
    hydrograph_bands,
    run_members,
    start_dask_client,
)
from floodwarn.errors import InputError
from floodwarn.hydrology.catchment_rain import (
    antecedent_rain_mm as antecedent_rain_mm_per_catchment,
)
from floodwarn.hydrology.runoff import check_curve_number_sources, check_ia_ratio, season_of
from floodwarn.hydrology.simulation import HydrologyModel
from floodwarn.hydrology.thresholds import (
    ReturnPeriodThresholds,
)
from floodwarn.hydrology.water_bodies import (
    WaterBodyNetwork,
    locate_water_bodies,
)
from floodwarn.inundation.depth import FloodGrid, Inundation, flood_inundation
from floodwarn.io.cache import ArrayCache
from floodwarn.io.dem import DEFAULT_CRS, read_dem
from floodwarn.io.forecast_outputs import (
    EXPOSURE_FILES,
    HYDROGRAPHS_FILE,
    PLAN_FOLDER,
    RUN_FILE,
    SCENARIOS_FILE,
    UPGRADE_PLAN_FILE,
    UPGRADES_FILE,
    HydrographsFile,
    write_flood_rasters,
    write_reach_results,
    write_risk_outputs,
    write_run_json,
)
from floodwarn.io.forecast_outputs import REACHES_FILE as FORECAST_REACHES_FILE
from floodwarn.io.gis_data import load_collective_centres, load_settlements
from floodwarn.io.rainfall import read_rainfall
from floodwarn.io.terrain_files import load_terrain_model, save_terrain_model
from floodwarn.logs import get_logger, timed_step
from floodwarn.parameters import (
    BaseFlow,
    IdfParameters,
    LevelRules,
    PlausibilityBounds,
    RoutingParameters,
    WaterBodies,
    load_parameters,
)
from floodwarn.plausibility import francou_rodier_k, plausibility_report
from floodwarn.prepared import catchment_weights, prepared_hydrology
from floodwarn.prepared import thresholds as cached_thresholds
from floodwarn.rainfall.forecast import RainfallForecast
from floodwarn.request import ForecastRequest
from floodwarn.risk.assessment import RiskAssessment, assess_risk
from floodwarn.risk.settlements import settlement_footprints, within_domain
from floodwarn.terrain.model import BUILD_STEPS, TerrainModel, build_terrain_model
from floodwarn.terrain.network import DEFAULT_MAX_REACH_LENGTH_M, DEFAULT_STREAM_AREA_KM2

log = get_logger(__name__)

#: Every step the terrain job reports to a progress display, in order.
TERRAIN_JOB_STEPS = ("read_dem", *BUILD_STEPS, "write")


@dataclass(frozen=True)
class TerrainJobResult:
    model: TerrainModel
    out_dir: Path
    seconds: float


def build_terrain(
    dem_path: str | Path,
    out_dir: str | Path,
    *,
    stream_area_km2: float = DEFAULT_STREAM_AREA_KM2,
    max_reach_length_m: float = DEFAULT_MAX_REACH_LENGTH_M,
    target_crs: str = DEFAULT_CRS,
    cellsize_m: float | None = None,
    nodata: float | None = None,
    fill_voids: bool = False,
    on_step: Callable[[str], None] | None = None,
) -> TerrainJobResult:
    """Build the terrain model of a DEM file and write it to ``out_dir``."""
    start = time.perf_counter()
    notify = on_step or (lambda _step: None)
    timings: dict[str, float] = {}
    notify("read_dem")
    with timed_step(log, "read_dem", timings, path=str(dem_path)):
        dem = read_dem(
            dem_path,
            target_crs=target_crs,
            cellsize_m=cellsize_m,
            nodata=nodata,
            fill_voids=fill_voids,
        )
    model = build_terrain_model(
        dem.elevation,
        dem.grid,
        stream_area_km2=stream_area_km2,
        max_reach_length_m=max_reach_length_m,
        dem_metadata=dem.metadata,
        on_step=notify,
        overwrite_dem=True,  # the DEM array was read for this build only
    )
    del dem
    model.metadata["timings_s"] = {**timings, **model.metadata["timings_s"]}
    notify("write")
    save_terrain_model(model, out_dir)
    return TerrainJobResult(model=model, out_dir=Path(out_dir), seconds=time.perf_counter() - start)


def demo_terrain(
    out_dir: str | Path, *, on_step: Callable[[str], None] | None = None
) -> TerrainJobResult:
    """The demo's terrain: the SYNTHETIC stand-in DEM of the El Salvador domain, built once.

    The stand-in DEM is generated reproducibly into ``out_dir/standin_dem_90m.tif`` (reused
    while the generator version is unchanged) and its terrain model goes to
    ``out_dir/terrain``.
    """
    from floodwarn.standin_dem import standin_is_current, write_standin_dem

    out_dir = Path(out_dir)
    dem_path = out_dir / "standin_dem_90m.tif"
    if not standin_is_current(dem_path):
        with timed_step(log, "standin_dem", path=str(dem_path)):
            write_standin_dem(dem_path)
    return build_terrain(dem_path, out_dir / "terrain", on_step=on_step)


# ------------------------------------------------------------------------------ forecast run

#: Every step the forecast job reports to a progress display, in order.
FORECAST_JOB_STEPS = (
    "read_rain",
    "load_terrain",
    "hydrology_model",
    "thresholds",
    "catchment_weights",
    "simulate",
    "inundation",
    "risk",
    "write",
)


@dataclass(frozen=True)
class ForecastJobResult:
    out_dir: Path
    record: dict[str, Any]
    ensemble: EnsembleResult  # every member's reach series, levels and the flood count
    thresholds: ReturnPeriodThresholds
    reach_results: dict[str, np.ndarray]  # the columns of reaches.gpkg, index = reach id − 1
    inundation: Inundation  # of each reach's representative (median-peak) member
    risk: RiskAssessment | None  # None when no settlement lies in the terrain domain


def run_forecast(
    request: ForecastRequest,
    out_dir: str | Path,
    *,
    cache_dir: str | Path | None = None,
    terrain: TerrainModel | None = None,
    on_step: Callable[[str], None] | None = None,
    execution: Execution | None = None,
    on_members: Callable[[MemberProgress], None] | None = None,
) -> ForecastJobResult:
    """Rain forecast → runoff → routed hydrographs per reach, with return-period classes.

    ``request`` (checked when it was built) names the terrain model, the rain file and the
    options; ``terrain`` may pass the model already loaded from ``request.terrain_dir``.

    Writes to ``out_dir``: ``hydrographs.nc`` (discharge, member × reach × time),
    ``reaches.gpkg`` (peak, time of peak, return-period class and thresholds per reach;
    ensemble medians and exceedance probabilities) and ``run.json`` (the request, inputs,
    versions, timings, ``rain_total_mm_mean``, runoff totals and ``mass_balance``).

    Antecedent moisture: ``amc`` for every catchment, or the class from the 5-day rain given
    as one depth (``antecedent_rain_mm``) or as a rain file of the days before the forecast
    (``antecedent_rain_path``, any format the forecast may have). Without any, AMC II.

    Base flow comes from ``models/base_flow.yaml`` for the forecast's month. Reservoirs and
    lakes (``models/reservoirs.yaml``) start at ``reservoir_levels`` (m a.s.l. by water-body
    id; DGPC asks CEL for them before a storm), the others at their seasonal normal level.

    Members (all, or ``request.members``) are independent tasks over the shared, read-only
    terrain and hydrology models (:func:`floodwarn.ensemble.run_members`): serially here by
    default, or on Dask as ``execution`` says; ``on_members`` hears how many are done, with an
    estimate of the time left. Each member maps its own flood and levels its settlements; the
    run writes per reach the probability of each return period and the 10/50/90 % hydrograph
    bands, per cell the share of members that flood it (``flood_probability.tif``), per
    settlement the probability of each level and the level by DGPC's rule
    (``models/levels.yaml``: ensemble_min_probability).
    """
    terrain_dir, rain_path = request.terrain_dir, request.rain_path
    amc, ia_ratio = request.amc, request.ia_ratio
    antecedent_rain_mm = request.antecedent_rain_mm
    antecedent_rain_path = request.antecedent_rain_path
    reservoir_levels = request.reservoir_levels_m
    start = time.perf_counter()
    notify = on_step or (lambda _step: None)
    timings: dict[str, float] = {}
    out = Path(out_dir)
    cache = ArrayCache(cache_dir)

    # The rain first: a bad file fails before anything large is loaded, and an ensemble's
    # workers start while the terrain loads and the run is prepared.
    notify("read_rain")
    with timed_step(log, "read_rain", timings, path=str(rain_path)):
        forecast = read_request_rain(request)
    execution = execution or Execution()
    if forecast.n_members > 1:
        start_dask_client(execution)
    notify("load_terrain")
    with timed_step(log, "load_terrain", timings, path=str(terrain_dir)):
        model = terrain if terrain is not None else load_terrain_model(terrain_dir)

    notify("hydrology_model")
    with timed_step(log, "hydrology_model", timings):
        routing, bodies, prepared = _prepared(model, cache, request.landcover_path,
                                              request.soil_path, ia_ratio)
        hydro, curves, water = prepared.hydro, prepared.curves, prepared.water
        cn_source = prepared.curve_numbers
        month = int(str(forecast.step_start[0])[5:7])
        initial_levels = bodies.initial_levels(month, reservoir_levels)
        base_flow = load_parameters(BaseFlow)
        specific_base_flow = base_flow.for_month(month)
    notify("thresholds")
    with timed_step(log, "thresholds", timings):
        idf = load_parameters(IdfParameters)
        # At the forecast's coarsest step, whole hours (see return_period_thresholds).
        step_hours = max(1, round(float(forecast.step_hours.max())))
        thresholds = cached_thresholds(hydro, idf, ia_ratio, step_hours, cache)
    notify("catchment_weights")
    with timed_step(log, "catchment_weights", timings):
        weights = catchment_weights(model, forecast, cache)

        antecedent: np.ndarray | float | None = antecedent_rain_mm
        if antecedent_rain_path is not None:
            observed = read_rainfall(antecedent_rain_path)
            antecedent = antecedent_rain_mm_per_catchment(
                observed, catchment_weights(model, observed, cache), forecast.step_start[0])

    notify("simulate")
    season = season_of(month)
    hours = ((forecast.step_end - forecast.step_start[0]).astype("timedelta64[s]")
             .astype(np.float64) / 3600.0)
    water = water | bodies.surface  # lakes are water, as channels are
    level_rules = load_parameters(LevelRules)
    with timed_step(log, "settlements", timings):
        towns, shelters, outside = _risk_layers(model, request.settlements_path,
                                                request.centres_path, water,
                                                centres_layer=request.centres_layer_path)
        footprints = settlement_footprints(model, towns, level_rules, water) if len(towns) \
            else None
    members_model = MemberModel(
        hydro=hydro, weights=weights, dt_s=forecast.step_hours * 3600.0, hours_from_start=hours,
        season=season, amc=amc, antecedent_rain_mm=antecedent, ia_ratio=ia_ratio,
        base_flow_l_s_km2=specific_base_flow, initial_levels_m=initial_levels,
        flood_grid=FloodGrid.of(model, water), wet_depth_m=level_rules.wet_depth_m,
        thresholds=thresholds, rules=level_rules, footprints=footprints)
    out.mkdir(parents=True, exist_ok=True)
    # Each member's series is compressed into hydrographs.nc as it arrives, while the others
    # run; the water bodies and the bands follow once all are in.
    hydrographs = HydrographsFile(
        out / HYDROGRAPHS_FILE, reach_id=hydro.reach_id, step_start=forecast.step_start,
        step_end=forecast.step_end, members=forecast.members,
        attrs={"synthetic": bool(model.is_synthetic or forecast.metadata.get("synthetic")),
               "rain_source": str(rain_path)},
        water_bodies=bodies.ids, band_names=BAND_NAMES if forecast.n_members > 1 else ())
    with timed_step(log, "simulate", timings, members=forecast.n_members,
                    **execution.describe()):
        try:
            ensemble = run_members(
                members_model, forecast.rain_mm, execution, on_progress=on_members,
                on_member=lambda r: hydrographs.write_member(r.index, r.discharge_chunks))
        except BaseException:
            hydrographs.abort()
            raise
    # The bands (a numba kernel without the interpreter lock) and the file's end on a thread
    # of their own, beside the flood map, the risk and the rasters.
    hydrographs_writer = ThreadPoolExecutor(1, thread_name_prefix="floodwarn-hydrographs")
    member_discharge = ensemble.member_discharge()
    hydrographs_written = hydrographs_writer.submit(_finish_hydrographs, hydrographs, ensemble,
                                                    member_discharge)
    hydrographs_writer.shutdown(wait=False)

    # A run that fails from here leaves no hydrographs.nc behind.
    with _discarded_on_error(hydrographs_written, hydrographs):
        notify("inundation")
        with timed_step(log, "inundation", timings):
            # Each reach's representative member: a real hydrograph to map and time the flood.
            representative = _representative_member(ensemble.peak_m3s)
            discharge = member_discharge[representative, np.arange(hydro.n_reaches)]
            # A lake's level: from the member representing its outlet reach.
            lake_levels = ensemble.water_body_level_m[representative[bodies.outlet_reach],
                                                      np.arange(bodies.n_bodies)]
            flood = flood_inundation(model, curves, discharge, hours, water=water,
                                     water_bodies=bodies, water_body_level_m=lake_levels)
            reach_results = _reach_columns(forecast, thresholds, ensemble, hydro)
            # Inside a lake there is no channel stage: the lake's level is in hydrographs.nc.
            reach_results["peak_stage_m"] = np.where(bodies.pass_through, np.nan,
                                                     flood.peak_stage_m)
            reach_results["rating_curve_extended"] = flood.extended
            reach_results["stage_beyond_rating_curve"] = flood.beyond_curve

        notify("risk")
        with timed_step(log, "risk", timings):
            risk = None
            if len(towns):
                risk = assess_risk(model, flood, reach_results["return_period_class"], towns,
                                   shelters, level_rules,
                                   member_levels=ensemble.settlement_level
                                   if ensemble.n_members > 1 else None)

    notify("write")
    with timed_step(log, "write", timings, path=str(out)):
        hydrographs_written.result()
        # Every member's series is in hydrographs.nc now: not held through the rasters' writes
        # (0.5 GB for 51 members on the demo domain).
        ensemble = replace(ensemble, discharge_m3s=None)
        del member_discharge
        record = _forecast_record(
            model,
            forecast,
            hydro,
            thresholds,
            ensemble,
            cn_source,
            season=season,
            request=request.to_json(),
            members_run=[int(m) for m in forecast.members],
        )
        record["base_flow"] = {"specific_l_s_km2": specific_base_flow, "month": month,
                               "version": base_flow.version,
                               "is_regional_approximation": base_flow.approximation}
        record["water_bodies"] = _water_body_record(bodies, ensemble, representative,
                                                    initial_levels)
        record["execution"] = ensemble.execution
        record["water_bodies_version"] = load_parameters(WaterBodies).version
        raster_tags = {"synthetic": str(record["synthetic"]).lower(),
                       "forecast_start_utc": str(forecast.step_start[0]),
                       "rain_source": str(rain_path)}
        write_flood_rasters(out, flood.depth_m, flood.first_flooding_h, model.grid,
                            raster_tags, members=ensemble.n_members,
                            probability=np.where(water | (model.flowdir == 255),
                                                 np.float32(np.nan), ensemble.flood_probability)
                            if ensemble.n_members > 1 else None)
        record["inundation"] = {
            **_inundation_summary(flood, model.grid.cell_area_km2),
            "channel_manning_n": routing.manning_n,
            "floodplain_manning_n": routing.floodplain_manning_n,
        }
        write_reach_results(
            out / FORECAST_REACHES_FILE,
            model,
            reach_results,
            {"synthetic": record["synthetic"], "floodwarn": __version__},
        )
        record["risk"] = {"settlements_outside_domain": outside["settlements"],
                          "centres_outside_domain": outside["centres"],
                          "settlements_on_water": outside["settlements_on_water"],
                          "centres_on_water": outside["centres_on_water"],
                          "levels_version": level_rules.version}
        if risk is not None:
            write_risk_outputs(out, risk, metadata={"synthetic": record["synthetic"],
                                                    "floodwarn": __version__})
            record["risk"].update({k: v for k, v in risk.summary.items()
                                   if not k.startswith("by_")})
        record["plausibility"] = plausibility_report(
            reach_results, hydro.upstream_area_km2, hydro.downstream,
            risk.settlements if risk is not None else None,
            load_parameters(PlausibilityBounds), record=record,
            land_depth=(flood.depth_m, model.catchment_id, model.grid.cell_area_km2))
    timings["total"] = time.perf_counter() - start
    record["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
    write_run_json(out / RUN_FILE, record)
    log.info("forecast run written", extra={"out": str(out), "seconds": round(timings["total"], 2)})
    return ForecastJobResult(
        out_dir=out, record=record, ensemble=ensemble, thresholds=thresholds,
        reach_results=reach_results, inundation=flood, risk=risk,
    )


def prepare_forecasting(
    terrain_dir: str | Path,
    *,
    cache_dir: str | Path,
    step_hours: tuple[int, ...] = (1,),
    ia_ratio: float = 0.2,
    landcover_path: str | Path | None = None,
    soil_path: str | Path | None = None,
    terrain: TerrainModel | None = None,
) -> dict[str, float]:
    """Compute once, for a terrain model, what every forecast on it reuses: the reach
    hydraulic geometry (profile slopes, channels sized to their bankfull discharge, compound
    rating curves, the water cells; :func:`floodwarn.prepared.prepared_hydrology`) and the
    design-storm return-period thresholds (for each forecast time step in ``step_hours``),
    into ``cache_dir``. Run after ``terrain build``; forecasts then only add
    their own work. Returns the seconds each product took."""
    check_curve_number_sources(landcover_path, soil_path)
    check_ia_ratio(ia_ratio)
    if not step_hours or min(step_hours) < 1:
        raise InputError("forecast time steps must be whole hours ≥ 1.")
    timings: dict[str, float] = {}
    model = terrain if terrain is not None else load_terrain_model(terrain_dir)
    cache = ArrayCache(cache_dir)
    routing = load_parameters(RoutingParameters)
    bodies = locate_water_bodies(model, load_parameters(WaterBodies))
    prepared = prepared_hydrology(model, routing, bodies, cache, landcover_path=landcover_path,
                                  soil_path=soil_path, ia_ratio=ia_ratio, timings=timings)
    idf = load_parameters(IdfParameters)
    for hours in step_hours:
        with timed_step(log, f"thresholds_{hours}h", timings):
            cached_thresholds(prepared.hydro, idf, ia_ratio, hours, cache)
    return timings


@contextmanager
def _discarded_on_error(written: Future[Path], hydrographs: HydrographsFile) -> Iterator[None]:
    """On an error, wait for the hydrographs' writer and remove what it wrote."""
    try:
        yield
    except BaseException:
        wait([written])
        hydrographs.abort()
        hydrographs.path.unlink(missing_ok=True)
        raise


def _finish_hydrographs(hydrographs: HydrographsFile, ensemble: EnsembleResult,
                        member_discharge: np.ndarray) -> Path:
    """The water bodies' series and, for an ensemble, the 10/50/90 % bands across members."""
    bands = None
    if ensemble.n_members > 1:
        try:
            bands = dict(zip(BAND_NAMES, hydrograph_bands(member_discharge), strict=True))
        except BaseException:
            hydrographs.abort()
            raise
    return hydrographs.finish(
        bands=bands,
        water_body_series={"level_m": ensemble.water_body_level_m,
                           "inflow_m3s": ensemble.water_body_inflow_m3s,
                           "outflow_m3s": ensemble.water_body_outflow_m3s})


def _prepared(model: TerrainModel, cache: ArrayCache, landcover_path: Path | None,
              soil_path: Path | None, ia_ratio: float
              ) -> tuple[RoutingParameters, WaterBodyNetwork, Any]:
    """The routing parameters, the water bodies placed on the terrain and the prepared
    hydrology (:func:`floodwarn.prepared.prepared_hydrology`, from the cache when made)."""
    routing = load_parameters(RoutingParameters)
    bodies = locate_water_bodies(model, load_parameters(WaterBodies))
    prepared = prepared_hydrology(model, routing, bodies, cache, landcover_path=landcover_path,
                                  soil_path=soil_path, ia_ratio=ia_ratio)
    return routing, bodies, prepared


def _risk_layers(terrain: TerrainModel, settlements_path: str | Path | None,
                 centres_path: str | Path | None, water: np.ndarray, *,
                 centres_layer: str | Path | None = None
                 ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, dict[str, int]]:
    """Settlements and collective centres to assess: the given files, in full (one outside
    the terrain or under a lake is an error that names it), or the shipped layers — or
    ``centres_layer``, a country-wide layer in place of the shipped centres — within the
    terrain's domain (those outside it, and those a lake of the terrain covers — a synthetic
    stand-in burns lakes over real places — are counted, named in the log and left out)."""
    towns = load_settlements(settlements_path)
    shelters = load_collective_centres(centres_path or centres_layer)
    outside = {"settlements": 0, "centres": 0, "settlements_on_water": 0, "centres_on_water": 0}
    for key, given, layer in (("settlements", settlements_path, "towns"),
                              ("centres", centres_path, "shelters")):
        if given is not None:
            continue
        frame = towns if layer == "towns" else shelters
        inside = within_domain(terrain, frame)
        keep = inside & within_domain(terrain, frame, water)
        outside[key] = int((~inside).sum())
        outside[f"{key}_on_water"] = int((inside & ~keep).sum())
        if outside[key] or outside[f"{key}_on_water"]:
            log.warning("shipped layer partly outside the terrain domain or under a lake",
                        extra={"layer": key, "outside": outside[key],
                               "on_water": frame.loc[inside & ~keep, "name"].tolist(),
                               "kept": int(keep.sum())})
        if layer == "towns":
            towns = frame[keep]
        else:
            shelters = frame[keep]
    return towns, shelters, outside


def _inundation_summary(flood: Inundation, cell_area_km2: float) -> dict[str, Any]:
    depth = np.nan_to_num(flood.depth_m)
    return {
        "flooded_land_km2": float((depth > 0).sum() * cell_area_km2),
        "land_deeper_than_1m_km2": float((depth > 1.0).sum() * cell_area_km2),
        "max_depth_m": float(depth.max()),
        "water_cells_km2": float(flood.water.sum() * cell_area_km2),
        "reaches_on_extended_rating_curve": int(flood.extended.sum()),
        "reaches_beyond_rating_curve": int(flood.beyond_curve.sum()),
        "member_mapped": "per reach, the member whose peak is closest to the ensemble median",
    }


def _water_body_record(bodies: WaterBodyNetwork, ensemble: EnsembleResult,
                       representative: np.ndarray, initial_levels: np.ndarray
                       ) -> list[dict[str, Any]]:
    """Per water body: where it was found, its initial and peak level, peak inflow and
    outflow (the member representing its outlet reach)."""
    out = []
    for k in range(bodies.n_bodies):
        m = int(representative[bodies.outlet_reach[k]])
        out.append({
            **bodies.placement[k],
            "name": bodies.names[k],
            "kind": bodies.kinds[k],
            "initial_level_m": round(float(initial_levels[k]), 3),
            "peak_level_m": round(float(ensemble.water_body_peak_level_m[m, k]), 3),
            "peak_inflow_m3s": round(float(ensemble.water_body_inflow_m3s[m, k].max()), 1),
            "peak_outflow_m3s": round(float(ensemble.water_body_outflow_m3s[m, k].max()), 1),
            "table_top_level_m": float(bodies.table_top_m[k]),
            "highest_normal_level_m": float(bodies.normal_level_m[k].max()),
            "dem_level_m": round(float(bodies.dem_level_m[k]), 2),
            "above_table": bool(ensemble.water_body_peak_level_m[m, k] > bodies.table_top_m[k]),
        })
    return out


def _representative_member(peaks: np.ndarray) -> np.ndarray:
    """Per reach, the member whose peak is closest to the ensemble median: a real hydrograph
    to time the peak and map the flood with (the median of two members is none). Ties go to
    the higher peak: of two equally representative floods, the map shows the worse."""
    distance = np.abs(peaks - np.median(peaks, axis=0)[None, :])
    return np.lexsort((-peaks, distance), axis=0)[0]


def _reach_columns(
    forecast: RainfallForecast, thresholds: ReturnPeriodThresholds, ensemble: EnsembleResult,
    hydro: HydrologyModel,
) -> dict[str, np.ndarray]:
    """Per-reach results: ensemble-median peak and its time, class, probabilities, and the
    reach geometry and flood-wave figures behind them."""
    peaks = ensemble.peak_m3s  # (member, reach)
    area_m2 = hydro.catchment_area_km2 * 1e6
    median_peak = np.median(peaks, axis=0)
    rep = _representative_member(peaks)
    reach = np.arange(peaks.shape[1])
    rep_step = ensemble.peak_step[rep, reach]
    rep_time_s = ensemble.peak_time_s[rep, reach]
    start = forecast.step_start[0].astype("datetime64[s]")
    # To the minute: the routing resolves 10 minutes, not seconds.
    peak_at = (start + np.round(rep_time_s).astype("timedelta64[s]")).astype("datetime64[m]")
    time_of_peak = np.where(rep_step >= 0, peak_at.astype(str), "")
    lead_h = np.where(rep_step >= 0, rep_time_s / 3600.0, np.nan)
    curves = hydro.curves
    columns: dict[str, np.ndarray] = {
        "peak_m3s": median_peak,
        "peak_m3s_max": peaks.max(axis=0),
        "base_flow_m3s": ensemble.base_flow_m3s,
        "catchment_runoff_m3": np.median(ensemble.runoff_total_mm, axis=0) / 1000.0 * area_m2,
        "time_of_peak": time_of_peak,
        "hours_to_peak": lead_h,
        "return_period_class": thresholds.classify(median_peak),
        "channel_slope": curves.slope,
        "bankfull_width_m": curves.bankfull_width_m,
        "bankfull_depth_m": curves.bankfull_depth_m,
        "bankfull_q_m3s": curves.bankfull_discharge_m3s,
        "q_dem_curve_top_m3s": curves.discharge_m3s[:, curves.dem_top].astype(np.float64),
        "celerity_m_s": ensemble.celerity_m_s[rep, reach],
        "routing_regime": ensemble.regime[rep, reach],
        "francou_rodier_k": francou_rodier_k(median_peak, hydro.upstream_area_km2),
    }
    classes = np.stack([thresholds.classify(p) for p in peaks])
    # A lake's reaches pass its unrouted inflow: no river flood to class or judge there.
    lake = hydro.water_bodies.pass_through
    classes[:, lake] = 0
    columns["return_period_class"] = np.where(lake, 0, columns["return_period_class"])
    columns["francou_rodier_k"] = np.where(lake, np.nan, columns["francou_rodier_k"])
    for years, q in zip(thresholds.return_periods_years, thresholds.discharge_m3s, strict=True):
        columns[f"q{years}_m3s"] = q
        columns[f"prob_rp{years}"] = (classes >= years).mean(axis=0)
    return columns


def _forecast_record(
    model: TerrainModel,
    forecast: RainfallForecast,
    hydro: HydrologyModel,
    thresholds: ReturnPeriodThresholds,
    ensemble: EnsembleResult,
    cn_source: dict[str, Any],
    **inputs: Any,
) -> dict[str, Any]:
    area = hydro.catchment_area_km2
    rain_totals = (ensemble.rain_total_mm * area).sum(axis=1) / area.sum()
    runoff_totals = (ensemble.runoff_total_mm * area).sum(axis=1) / area.sum()
    balances = ensemble.mass_balance
    worst = max(balances, key=lambda b: abs(b["relative_error"]))
    median_class = thresholds.classify(np.median(ensemble.peak_m3s, axis=0))
    counts = {int(y): int((median_class >= y).sum()) for y in thresholds.return_periods_years}
    synthetic = bool(model.is_synthetic or forecast.metadata.get("synthetic"))
    return {
        "floodwarn": __version__,
        "versions": _package_versions(),
        "synthetic": synthetic,
        "inputs": {k: (str(v) if isinstance(v, Path) else v) for k, v in inputs.items()},
        "terrain": {
            "synthetic": model.is_synthetic,
            "reaches": len(model.reaches),
            "crs": f"EPSG:{model.grid.epsg()}" if model.grid.epsg() else model.grid.crs,
            "cellsize_m": model.grid.cellsize_m,
        },
        "rain": {
            **forecast.metadata,
            "members": forecast.n_members,
            "steps": forecast.n_steps,
            "start": str(forecast.step_start[0]),
            "end": str(forecast.step_end[-1]),
        },
        "parameters": {
            "curve_numbers": cn_source,
            "routing": hydro.metadata,
            "idf_version": thresholds.idf_version,
            "idf_is_regional_approximation": thresholds.idf_is_approximation,
        },
        "rain_total_mm_mean": float(rain_totals.mean()),
        "rain_total_mm_by_member": rain_totals.round(3).tolist(),
        "runoff_total_mm_mean": float(runoff_totals.mean()),
        "runoff_coefficient": float(runoff_totals.mean() / rain_totals.mean())
        if rain_totals.mean() > 0
        else 0.0,
        "mass_balance": {
            **worst,
            "members": len(balances),
            "relative_error_by_member": [b["relative_error"] for b in balances],
        },
        "reaches_at_or_above_return_period": counts,
        "antecedent_moisture_class_counts": {
            f"AMC {c}": int((ensemble.amc == c).sum()) for c in (1, 2, 3)},
        "modelled_area_km2": float(area.sum()),
    }


def read_request_rain(request: ForecastRequest, *, max_cells: int | None = None
                      ) -> RainfallForecast:
    """The request's rain, read with its options (variable, units, accumulation) and limited
    to its members; ``max_cells`` caps the array size a file may declare."""
    forecast = read_rainfall(request.rain_source, variable=request.variable, units=request.units,
                             accumulation=request.accumulation, max_cells=max_cells)
    return select_members(forecast, request.members)


def select_members(forecast: RainfallForecast, members: tuple[int, ...] | None
                   ) -> RainfallForecast:
    """The forecast restricted to the ensemble ``members`` asked for (all when None), in the
    order asked; a member the file does not hold is named in the error."""
    if members is None:
        return forecast
    present = [int(m) for m in forecast.members]
    missing = [m for m in members if m not in present]
    if missing:
        raise InputError(f"members {missing} are not in the forecast "
                         f"{forecast.metadata.get('source', '')}; it holds members {present}.")
    index = np.array([present.index(m) for m in members])
    return replace(forecast, rain_mm=forecast.rain_mm[index], members=forecast.members[index])


def demo_forecast(
    out_dir: str | Path, terrain: TerrainModel, *, on_step: Callable[[str], None] | None = None
) -> ForecastJobResult:
    """The demo's forecast: the SYNTHETIC Amanda-scale storm (72 h) on the demo terrain.

    Writes ``out_dir/amanda_2020_storm.nc`` and the run to ``out_dir/forecast``; weights and
    thresholds are cached in ``out_dir/cache`` so a second demo reuses them.
    """
    from floodwarn.io.rainfall import write_rainfall_netcdf
    from floodwarn.rainfall.storm import AMANDA_2020, storm_forecast

    out_dir = Path(out_dir)
    rain = write_rainfall_netcdf(storm_forecast(AMANDA_2020), out_dir / "amanda_2020_storm.nc")
    request = ForecastRequest.build(terrain_dir=out_dir / "terrain", rain_path=rain)
    return run_forecast(request, out_dir / "forecast", terrain=terrain,
                        cache_dir=out_dir / "cache", on_step=on_step)


def _package_versions() -> dict[str, str]:
    """Versions of the libraries whose numerics or readers shape a run's results."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("numpy", "numba", "scipy", "xarray", "netCDF4", "eccodes", "rasterio", "pyproj"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def replan_evacuation(run_dir: str | Path, *, capacities_csv: str | Path | None = None,
                      centre_updates: Any = None,
                      out_dir: str | Path | None = None) -> RiskAssessment:
    """Rerun a forecast run's evacuation matching with changed centre capacities.

    ``capacities_csv`` has columns ``centre_id`` and ``capacity`` (persons);
    ``centre_updates`` is the same as a table, optionally with ``shelter`` (False: may not
    receive people now — closed or full). Centres neither names keep theirs. Levels,
    evacuees and centre safety are the run's. Writes ``evacuation.csv``, ``centres.gpkg``,
    ``settlements.gpkg`` and ``summary.json`` to ``out_dir`` (default: the run's ``replan/``
    folder), never over the run's own files.
    """
    import pandas as pd

    from floodwarn.io.forecast_outputs import CENTRES_FILE, SETTLEMENTS_FILE
    from floodwarn.risk.assessment import plan_evacuation

    run = Path(run_dir)
    for name in (SETTLEMENTS_FILE, CENTRES_FILE, RUN_FILE):
        if not (run / name).exists():
            raise InputError(f"{run}: no {name}; give the folder of a forecast run with risk "
                             "outputs (floodwarn forecast run).")
    towns = gpd.read_file(run / SETTLEMENTS_FILE)
    shelters = gpd.read_file(run / CENTRES_FILE)
    where = "centre updates"
    table = centre_updates
    if capacities_csv is not None:
        table, where = pd.read_csv(capacities_csv, dtype={"centre_id": str}), str(capacities_csv)
    if table is not None:
        missing = {"centre_id", "capacity"} - set(table.columns)
        if missing:
            raise InputError(f"{where}: columns {sorted(missing)} are missing; the "
                             "file needs centre_id,capacity.")
        if (pd.to_numeric(table["capacity"], errors="coerce") < 0).any() or \
                table["capacity"].isna().any():
            raise InputError(f"{where}: capacities must be numbers ≥ 0.")
        ids = shelters["id"].astype(str)
        if capacities_csv is not None:
            unknown = sorted(set(table["centre_id"].astype(str)) - set(ids))
            if unknown:
                raise InputError(f"{where}: centres {unknown[:5]} are not in this run.")
        update = table.assign(centre_id=table["centre_id"].astype(str)).set_index("centre_id")
        known = ids.isin(update.index)
        shelters.loc[known.to_numpy(), "capacity"] = update.loc[
            ids[known], "capacity"].astype(np.int64).to_numpy()
        if "shelter" in update.columns:
            shelters.loc[known.to_numpy(), "shelter"] = (
                shelters.loc[known.to_numpy(), "shelter"].astype(bool).to_numpy()
                & update.loc[ids[known], "shelter"].astype(bool).to_numpy())
    crs = json.loads((run / RUN_FILE).read_text())["terrain"]["crs"]
    result = plan_evacuation(towns, shelters, load_parameters(LevelRules), crs=crs)
    target = Path(out_dir) if out_dir is not None else run / "replan"
    target.mkdir(parents=True, exist_ok=True)
    write_risk_outputs(target, result, metadata={"replanned_from": str(run),
                                                 "capacities": str(capacities_csv or where)})
    return result


# --------------------------------------------------------------------------- flood scenarios

#: Every step the scenario job reports to a progress display, in order.
SCENARIO_JOB_STEPS = ("load_terrain", "hydrology_model", "thresholds", "settlements",
                      "scenarios", "exposure")


def scenario_folder(out_dir: str | Path, return_period_years: int) -> Path:
    """Where one return period's outputs go: ``OUT/rp10`` for the 10-year flood."""
    return Path(out_dir) / f"rp{int(return_period_years)}"


@dataclass(frozen=True)
class ScenarioJobResult:
    out_dir: Path
    record: dict[str, Any]
    exposure: dict[str, Any]  # the tables of EXPOSURE_FILES, as DataFrames


def run_flood_scenarios(
    request: Any,
    out_dir: str | Path,
    *,
    cache_dir: str | Path | None = None,
    terrain: TerrainModel | None = None,
    execution: Execution | None = None,
    on_step: Callable[[str], None] | None = None,
    on_scenario: Callable[[int, int], None] | None = None,
) -> ScenarioJobResult:
    """Flood scenarios of the request's return periods for planners
    (:class:`floodwarn.request.ScenarioRequest`): each return period's design storm (the IDF,
    durations and areal reduction the thresholds use; :mod:`floodwarn.planning.scenarios`)
    through runoff, routing, the flood map, settlement levels, centre safety and the
    evacuation plan, written to ``OUT/rp{T}/`` as a forecast run's files are (depth and
    first-flooding COGs, ``reaches.gpkg``, ``settlements.gpkg``, ``centres.gpkg``,
    ``evacuation.csv``, ``summary.json``, ``run.json``); then the expected annual exposure per
    settlement, municipality, department and reach and each centre's return period of
    unsafety (:mod:`floodwarn.planning.exposure`, :data:`EXPOSURE_FILES`), and
    ``scenarios.json``.

    Scenarios reuse the prepared terrain (rating curves and thresholds in ``cache_dir``) and
    run as independent tasks, on Dask as ``execution`` says; ``on_scenario(done, total)``
    hears each one finish.
    """
    import pandas as pd

    from floodwarn.planning.exposure import (
        annual_probability_weights,
        area_exposure,
        centre_exposure,
        reach_exposure,
        settlement_exposure,
    )
    from floodwarn.planning.scenarios import ScenarioModel, ScenarioResult, run_scenarios
    from floodwarn.prepared import design_month

    start = time.perf_counter()
    notify = on_step or (lambda _step: None)
    timings: dict[str, float] = {}
    out = Path(out_dir)
    cache = ArrayCache(cache_dir)
    execution = execution or Execution()
    periods = tuple(request.return_periods)
    if len(periods) > 1:
        start_dask_client(execution)
    notify("load_terrain")
    with timed_step(log, "load_terrain", timings, path=str(request.terrain_dir)):
        model = terrain if terrain is not None else load_terrain_model(request.terrain_dir)
    notify("hydrology_model")
    with timed_step(log, "hydrology_model", timings):
        _, bodies, prepared = _prepared(model, cache, request.landcover_path,
                                        request.soil_path, request.ia_ratio)
        month, specific_base_flow = design_month()
    notify("thresholds")
    with timed_step(log, "thresholds", timings):
        idf = load_parameters(IdfParameters)
        thresholds = cached_thresholds(prepared.hydro, idf, request.ia_ratio, 1, cache)
    notify("settlements")
    water = prepared.water | bodies.surface
    rules = load_parameters(LevelRules)
    with timed_step(log, "settlements", timings):
        towns, shelters, outside = _risk_layers(model, request.settlements_path,
                                                request.centres_path, water)
        footprints = settlement_footprints(model, towns, rules, water) if len(towns) else None
    durations = tuple(request.durations_h or idf.design_storm_hours)
    scenario_model = ScenarioModel(
        hydro=prepared.hydro, idf=idf, durations_h=durations, rain_factor=request.rain_factor,
        ia_ratio=request.ia_ratio, base_flow_l_s_km2=specific_base_flow,
        initial_levels_m=bodies.initial_levels(month), flood_grid=FloodGrid.of(model, water),
        thresholds=thresholds, footprints=footprints, wet_depth_m=rules.wet_depth_m)
    synthetic = bool(model.is_synthetic)
    common = {"synthetic": synthetic, "floodwarn": __version__,
              "rain_factor": request.rain_factor,
              "durations_h": list(durations), "idf_version": idf.version,
              "idf_is_regional_approximation": idf.approximation}
    from floodwarn.io.terrain_files import reaches_geodataframe

    reach_lines = reaches_geodataframe(model)
    settlements_by_rp: dict[int, pd.DataFrame] = {}
    centres_by_rp: dict[int, pd.DataFrame] = {}
    people_by_rp: dict[int, np.ndarray] = {}
    settlement_by_rp: dict[int, np.ndarray] = {}
    summaries: dict[int, dict[str, Any]] = {}

    def write(result: ScenarioResult) -> None:
        years = result.return_period_years
        folder = scenario_folder(out, years)
        folder.mkdir(parents=True, exist_ok=True)
        risk = None
        if len(towns):
            risk = assess_risk(model, result.flood, result.reach_class, towns, shelters, rules,
                               footprints=footprints)
            settlements_by_rp[years] = risk.settlements
            centres_by_rp[years] = risk.centres
        people_by_rp[years] = result.people_by_reach
        settlement_by_rp[years] = result.settlement_by_reach
        summaries[years] = _write_scenario(folder, result, model, prepared.hydro, thresholds,
                                           risk, {**common, "return_period_years": years},
                                           reach_lines)
        if on_scenario is not None:
            on_scenario(len(summaries), len(periods))

    notify("scenarios")
    with timed_step(log, "scenarios", timings, return_periods=list(periods),
                    **execution.describe()):
        out.mkdir(parents=True, exist_ok=True)
        ran = run_scenarios(scenario_model, periods, execution, write)
    notify("exposure")
    tables: dict[str, Any] = {}
    with timed_step(log, "exposure", timings):
        reaches = reach_exposure(people_by_rp, prepared.hydro.reach_id)
        reaches = _with_reach_places(reaches, model, reach_lines, towns, settlement_by_rp)
        tables["reaches"] = reaches
        if settlements_by_rp:
            places = settlement_exposure(settlements_by_rp)
            tables["settlements"] = places.sort_values(
                ["eae_people_exposed", "id"], ascending=[False, True], ignore_index=True)
            tables["municipalities"] = area_exposure(places, "municipality")
            tables["departments"] = area_exposure(places, "department")
            tables["centres"] = centre_exposure(centres_by_rp)
        for name, table in tables.items():
            path = out / EXPOSURE_FILES[name]
            table.to_csv(path.with_suffix(".tmp"), index=False)
            path.with_suffix(".tmp").replace(path)
    weights = annual_probability_weights(periods)
    timings["total"] = time.perf_counter() - start
    record = {
        **common,
        "request": request.to_json(),
        "return_periods": list(periods),
        "annual_probability_weights": [round(float(w), 6) for w in weights],
        "expected_annual_method": "Delft-FIAT: 0 above the first scenario's exceedance "
                                  "probability, the last scenario's value below the last, "
                                  "log-linear in between (floodwarn.planning.exposure)",
        "scenarios": {f"rp{t}": summaries[t] for t in periods},
        "expected_annual": {
            name: round(float(tables["settlements"][f"eae_{name}"].sum()), 1)
            for name in ("people_exposed", "evacuees", "unplaced_evacuees")}
        if "settlements" in tables else {},
        "risk": {"settlements_outside_domain": outside["settlements"],
                 "centres_outside_domain": outside["centres"],
                 "settlements_on_water": outside["settlements_on_water"],
                 "centres_on_water": outside["centres_on_water"],
                 "levels_version": rules.version},
        "execution": ran,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }
    write_run_json(out / SCENARIOS_FILE, record)
    log.info("flood scenarios written", extra={"out": str(out),
                                               "seconds": round(timings["total"], 2)})
    return ScenarioJobResult(out_dir=out, record=record, exposure=tables)


def _write_scenario(folder: Path, result: Any, model: TerrainModel, hydro: HydrologyModel,
                    thresholds: ReturnPeriodThresholds, risk: RiskAssessment | None,
                    meta: dict[str, Any], reach_lines: gpd.GeoDataFrame) -> dict[str, Any]:
    """One scenario's files (as a forecast run's) and the summary kept in scenarios.json."""
    years = meta["return_period_years"]
    flood = result.flood
    tags = {"synthetic": str(meta["synthetic"]).lower(), "scenario": f"rp{years}",
            "rain_factor": str(meta["rain_factor"])}
    # No Web Mercator copies: no tile server reads scenarios (the report draws its own maps).
    write_flood_rasters(folder, flood.depth_m, flood.first_flooding_h, model.grid, tags,
                        time_origin="the start of the design storm", web_mercator=False)
    lake = hydro.water_bodies.pass_through
    columns: dict[str, np.ndarray] = {
        "peak_m3s": result.peak_m3s,
        "base_flow_m3s": result.base_flow_m3s,
        "hours_to_peak": result.peak_time_h,
        "critical_duration_h": result.critical_duration_h,
        "return_period_class": result.reach_class,
        "peak_stage_m": np.where(lake, np.nan, flood.peak_stage_m),
        "rating_curve_extended": flood.extended,
        "stage_beyond_rating_curve": flood.beyond_curve,
        "people_exposed": np.round(result.people_by_reach, 1),
        "rain_total_mm": result.rain_total_mm,
        "runoff_total_mm": result.runoff_total_mm,
        "francou_rodier_k": np.where(lake, np.nan, francou_rodier_k(result.peak_m3s,
                                                                    hydro.upstream_area_km2)),
    }
    for t, q in zip(thresholds.return_periods_years, thresholds.discharge_m3s, strict=True):
        columns[f"q{t}_m3s"] = q
    write_reach_results(folder / FORECAST_REACHES_FILE, model, columns, meta, lines=reach_lines)
    summary: dict[str, Any] = {
        "inundation": _inundation_summary(flood, model.grid.cell_area_km2),
        "mass_balance": {
            "relative_error": result.mass_balance_relative_error,
            "routing_relative_error": result.routing_relative_error,
            "runs": "the worst of the scenario's design-storm runs (durations × areas)",
            "note": "the whole balance counts the catchment reservoirs' volume at the routing "
                    "interval's samples, which a one-hour burst strains (about 0.2 %); the "
                    "channels' and water bodies' own balance is routing_relative_error"},
        "reaches_at_or_above_return_period": int((result.reach_class >= years).sum()),
        "seconds": round(result.seconds, 2),
    }
    summary["inundation"]["member_mapped"] = "design flood (one run per reach's critical " \
        "duration and area)"
    if risk is not None:
        write_risk_outputs(folder, risk, metadata=meta)
        summary.update({k: v for k, v in risk.summary.items() if not k.startswith("by_")})
    write_run_json(folder / RUN_FILE, {**meta, **summary})
    return summary


def _with_reach_places(reaches: Any, model: TerrainModel, reach_lines: gpd.GeoDataFrame,
                       towns: gpd.GeoDataFrame, settlement_by_rp: dict[int, np.ndarray]) -> Any:
    """The ranked reaches with where they are (lon/lat of their middle, upstream area) and the
    settlements whose people their water reaches most, from the rarest flood down."""
    lines = reach_lines.set_index("reach_id")
    ids = reaches["reach_id"].to_numpy()
    middle = lines.loc[ids].geometry.interpolate(0.5, normalized=True).to_crs("EPSG:4326")
    reaches = reaches.copy()
    reaches["lon"] = middle.x.round(5).to_numpy()
    reaches["lat"] = middle.y.round(5).to_numpy()
    reaches["upstream_area_km2"] = model.reaches.upstream_area_km2[ids - 1].round(1)
    names = towns["name"].astype(str).to_numpy() if len(towns) else np.zeros(0, str)
    places = []
    for reach in ids - 1:
        seen: list[str] = []
        for years in sorted(settlement_by_rp, reverse=True):
            k = int(settlement_by_rp[years][reach])
            if k >= 0 and names[k] not in seen:
                seen.append(str(names[k]))
        places.append(", ".join(seen[:3]))
    reaches["settlements"] = places
    return reaches


# --------------------------------------------------------------------------- shelter upgrades



@dataclass(frozen=True)
class ShelterPlanResult:
    out_dir: Path
    chosen: Any  # DataFrame: the chosen actions with their reasons (UPGRADES_FILE)
    record: dict[str, Any]  # UPGRADE_PLAN_FILE
    choice: Any  # floodwarn.planning.upgrades.UpgradeChoice
    problem: Any  # floodwarn.planning.upgrades.UpgradeProblem


def read_scenario_layers(scenarios_dir: str | Path) -> tuple[dict[str, Any], dict[int, Any],
                                                               dict[int, Any]]:
    """A scenario folder's ``scenarios.json`` and, by return period, its settlements and
    centres layers (GeoDataFrames in WGS 84); a clear error for a folder that is not one."""
    folder = Path(scenarios_dir)
    index = folder / SCENARIOS_FILE
    if not index.exists():
        raise InputError(f"{folder}: no {SCENARIOS_FILE}; give the --out folder of "
                         "`floodwarn scenarios run`.")
    record = json.loads(index.read_text())
    from floodwarn.io.forecast_outputs import CENTRES_FILE, SETTLEMENTS_FILE

    settlements, centres = {}, {}
    for years in record["return_periods"]:
        rp = scenario_folder(folder, years)
        for name in (SETTLEMENTS_FILE, CENTRES_FILE):
            if not (rp / name).exists():
                raise InputError(f"{rp}: no {name}; the scenario run was incomplete or had no "
                                 "settlement in its domain; run `floodwarn scenarios run` "
                                 "again.")
        settlements[int(years)] = gpd.read_file(rp / SETTLEMENTS_FILE)
        centres[int(years)] = gpd.read_file(rp / CENTRES_FILE)
    return record, settlements, centres


def plan_shelter_upgrades(
    scenarios_dir: str | Path,
    *,
    upgrades: int | None = None,
    budget: float | None = None,
    candidates_path: str | Path | None = None,
    out_dir: str | Path | None = None,
    time_limit_s: float = 120.0,
    mip_rel_gap: float = 5e-3,
) -> ShelterPlanResult:
    """Which shelter upgrades most reduce the expected yearly number of evacuees left without
    a place, over a scenario folder's floods (:func:`run_flood_scenarios`), within
    ``upgrades`` actions and/or a ``budget`` — one mixed-integer program
    (:func:`floodwarn.planning.upgrades.choose_upgrades`), not a greedy loop.

    Candidates: a planner's file (:func:`floodwarn.planning.candidates.read_candidate_actions`)
    or the defaults of ``models/shelter_upgrades.yaml`` (each eligible site enlarged to the
    Sphere standard, each site that floods in some scenario flood-proofed; costs are
    assumptions). Evacuees, centre safety and capacities are the scenarios'; distances and
    candidates per settlement follow ``models/levels.yaml``. Writes ``upgrades.csv`` (the
    chosen actions with a reason each) and ``upgrade_plan.json`` to ``out_dir`` (default:
    the scenario folder's ``plan/``).
    """
    import pandas as pd

    from floodwarn.parameters import ShelterUpgradeStandard
    from floodwarn.planning.candidates import (
        default_actions,
        read_candidate_actions,
        site_status_from_depth,
    )
    from floodwarn.planning.exposure import annual_probability_weights
    from floodwarn.planning.upgrades import UpgradeProblem, choose_upgrades, upgrade_reason

    record, settlements, centres = read_scenario_layers(scenarios_dir)
    periods = sorted(settlements)
    weights = annual_probability_weights(periods)
    rules = load_parameters(LevelRules)
    standard = load_parameters(ShelterUpgradeStandard)
    first_towns = settlements[periods[0]]
    sites = centres[periods[0]].reset_index(drop=True)
    demand = np.stack([settlements[t]["evacuees"].to_numpy(np.float64) for t in periods])
    needing = demand.max(axis=0) > 0
    status = np.stack([centres[t]["status"].astype(str).to_numpy() for t in periods])
    shelter = sites["shelter"].astype(bool).to_numpy()
    known = set(sites["id"].astype(str))
    if candidates_path is not None:
        actions = read_candidate_actions(candidates_path, known)
    else:
        actions = default_actions(sites[shelter], (status[:, shelter] != "safe").any(axis=0),
                                  standard)
    new = actions[actions["kind"] == "new_site"]
    site_ids = [*sites["id"].astype(str), *new["site_id"].astype(str)]
    site_names = [*sites["name"].astype(str), *new.get("name", pd.Series(dtype=str))]
    xy_sites = _projected_xy(sites)
    new_status = np.zeros((len(periods), len(new)), dtype=object)
    if len(new):
        new_points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(new["lon"], new["lat"]),
                                      crs="EPSG:4326")
        xy_new = _projected_xy(new_points)
        xy_sites = np.vstack([xy_sites, xy_new])
        import rasterio

        from floodwarn.io.forecast_outputs import DEPTH_FILE

        for s, years in enumerate(periods):
            with rasterio.open(scenario_folder(scenarios_dir, years) / DEPTH_FILE) as src:
                depth = src.read(1)
                on_grid = new_points.geometry.to_crs(src.crs)
                rows, cols = rasterio.transform.rowcol(src.transform, on_grid.x, on_grid.y)
                new_status[s] = site_status_from_depth(depth, np.asarray(rows),
                                                       np.asarray(cols), src.res[0],
                                                       rules.centres)
    safe = np.hstack([(status == "safe") & shelter[None, :], new_status == "safe"])
    capacity = np.concatenate([np.where(shelter, sites["capacity"].to_numpy(np.float64), 0.0),
                               np.zeros(len(new))])
    index_of = {site: k for k, site in enumerate(site_ids)}
    problem = UpgradeProblem(
        scenario_weight=weights, demand=demand[:, needing],
        settlement_xy_m=_projected_xy(first_towns[needing]),
        site_xy_m=xy_sites, site_capacity=capacity, site_safe=safe,
        action_site=np.array([index_of[str(s)] for s in actions["site_id"]], np.int64),
        action_kind=actions["kind"].astype(str).to_numpy(),
        action_places=actions["places"].to_numpy(np.float64),
        action_cost=actions["cost"].to_numpy(np.float64),
        max_distance_km=rules.evacuation.max_distance_km,
        candidates=rules.evacuation.candidates_per_settlement)
    with timed_step(log, "plan_shelters", actions=len(actions), settlements=int(needing.sum()),
                    scenarios=len(periods)):
        choice = choose_upgrades(problem, max_actions=upgrades, budget=budget,
                                 time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap)
    chosen_index = np.flatnonzero(choice.chosen)
    place = sites.set_index(sites["id"].astype(str))
    rows = []
    for a in sorted(chosen_index, key=lambda a: -choice.action_expected_gain[a]):
        site = str(actions["site_id"].iloc[a])
        reason_es, _, reason_en = upgrade_reason(problem, choice, int(a),
                                                 np.array(periods)).partition(" / ")
        existing = site in place.index
        rows.append({
            "action_id": actions["action_id"].iloc[a], "site_id": site,
            "site_name": site_names[index_of[site]],
            "kind": actions["kind"].iloc[a], "places": int(actions["places"].iloc[a]),
            "cost": float(actions["cost"].iloc[a]),
            "municipality": place.at[site, "municipality"] if existing else "",
            "department": place.at[site, "department"] if existing else "",
            "capacity_now": int(capacity[index_of[site]]),
            "expected_unplaced_avoided_per_year": round(float(
                choice.action_expected_gain[a]), 2),
            **{f"people_placed_rp{t}": round(float(choice.action_people[a, s]))
               for s, t in enumerate(periods)},
            "reason_es": reason_es, "reason_en": reason_en})
    chosen = pd.DataFrame(rows, columns=[
        "action_id", "site_id", "site_name", "kind", "places", "cost", "municipality",
        "department", "capacity_now", "expected_unplaced_avoided_per_year",
        *[f"people_placed_rp{t}" for t in periods], "reason_es", "reason_en"])
    plan = {
        "synthetic": bool(record.get("synthetic")),
        "scenarios": str(scenarios_dir),
        "return_periods": periods,
        "rain_factor": record.get("rain_factor", 1.0),
        "upgrades": upgrades, "budget": budget,
        "candidates": str(candidates_path) if candidates_path
        else "models/shelter_upgrades.yaml",
        "candidate_actions": len(actions),
        "costs_are_assumptions": candidates_path is None and standard.approximation,
        "currency": standard.currency,
        "settlements_with_evacuees": int(needing.sum()),
        "expected_unplaced_before": round(choice.expected_unplaced_before, 2),
        "expected_unplaced_after": round(choice.expected_unplaced_after, 2),
        "unplaced_before_by_rp": {f"rp{t}": round(float(v)) for t, v in
                                  zip(periods, choice.unplaced_before, strict=True)},
        "unplaced_after_by_rp": {f"rp{t}": round(float(v)) for t, v in
                                 zip(periods, choice.unplaced_after, strict=True)},
        "chosen": int(choice.chosen.sum()),
        "total_cost": round(choice.total_cost, 2),
        "optimal": choice.optimal, "mip_gap": choice.mip_gap,
        "mip_gap_tolerance": mip_rel_gap,
        "seconds": round(choice.seconds, 2),
        "variables": choice.n_variables, "constraints": choice.n_constraints,
        "method": "mixed-integer program (HiGHS via scipy.optimize.milp): minimise the "
                  "expected annual evacuees without a place (scenarios weighted by annual "
                  "exceedance probability, as the expected annual exposure) over "
                  "transport flows and binary actions",
    }
    target = Path(out_dir) if out_dir is not None else Path(scenarios_dir) / PLAN_FOLDER
    target.mkdir(parents=True, exist_ok=True)
    chosen.to_csv(target / (UPGRADES_FILE + ".tmp"), index=False)
    (target / (UPGRADES_FILE + ".tmp")).replace(target / UPGRADES_FILE)
    write_run_json(target / UPGRADE_PLAN_FILE, plan)
    return ShelterPlanResult(out_dir=target, chosen=chosen, record=plan, choice=choice,
                             problem=problem)


def _projected_xy(frame: gpd.GeoDataFrame) -> np.ndarray:
    """Points (or polygons' representative points) in metres of the terrain's default CRS."""
    points = frame.geometry.to_crs(DEFAULT_CRS).representative_point()
    return np.column_stack([points.x.to_numpy(), points.y.to_numpy()])
