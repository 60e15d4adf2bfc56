"""Flood scenarios of given return periods, for planning: the design storms the return-period
thresholds are built from, run through the whole chain (runoff, routing, flood map, levels).

A scenario of return period T is the flood every reach would see in its own T-year design
storm. Design rain is a point depth; over a large basin less falls on average, so — as for
the thresholds (:func:`floodwarn.hydrology.thresholds.return_period_thresholds`) — the storm
is run once for each reference area of the IDF file with its areal reduction factor, and
each reach takes the hydrograph interpolated, in log area, between the two runs that bracket
its upstream area. With several storm durations (the default: all the IDF's), each reach takes
the duration whose hydrograph peaks highest there, its critical duration (Ball et al. 2019,
Australian Rainfall and Runoff, Book 4 ch. 3): a small steep catchment floods in a one-hour
burst, the Lempa in a three-day rain. With the default durations and no rain factor, every
reach's scenario peak is its T-year threshold, so the hazard map and the forecasts' classes
agree.

``rain_factor`` scales every design depth: a climate-change sensitivity, not a projection.
Extreme daily rain intensifies by about 7 % per °C of warming (Clausius-Clapeyron scaling;
IPCC AR6 WG I, Seneviratne et al. 2021, ch. 11), so 1.1–1.3 spans roughly +1.5 to +4 °C.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from floodwarn.ensemble import Execution, dask_client, task_result
from floodwarn.errors import InputError
from floodwarn.hydrology.simulation import HydrologyModel, Simulation, simulate
from floodwarn.hydrology.thresholds import (
    ReturnPeriodThresholds,
    design_hyetograph,
    reference_area_weights,
)
from floodwarn.inundation.depth import FloodGrid, Inundation, map_flood
from floodwarn.logs import get_logger
from floodwarn.parameters import IdfParameters
from floodwarn.risk.settlements import SettlementFootprints

log = get_logger(__name__)

#: Return periods a scenario may have (years).
MAX_RETURN_PERIOD_YEARS = 10_000
#: Rain factors accepted: a sensitivity of ±50 % at most.
RAIN_FACTOR_RANGE = (0.5, 1.5)


@dataclass(frozen=True, eq=False)
class ScenarioModel:
    """What every scenario reads, shared read-only (sent once to each Dask worker): the
    hydrology model, the IDF, the design conditions (AMC II, the flood season's base flow and
    water-body levels), the flood-mapping rasters and the settlements' footprints."""

    hydro: HydrologyModel
    idf: IdfParameters
    durations_h: tuple[int, ...]
    rain_factor: float
    ia_ratio: float
    base_flow_l_s_km2: float
    initial_levels_m: np.ndarray
    flood_grid: FloodGrid
    thresholds: ReturnPeriodThresholds
    footprints: SettlementFootprints | None
    wet_depth_m: float

    @property
    def uses_threshold_storms(self) -> bool:
        """The thresholds' own design storms: every IDF duration, no rain factor."""
        return self.rain_factor == 1.0 and \
            tuple(sorted(self.durations_h)) == tuple(sorted(self.idf.design_storm_hours))

    def threshold_peaks(self, return_period_years: int) -> np.ndarray | None:
        """The thresholds' design peak of each reach for this return period, when the
        scenario runs their storms and they hold it; else None."""
        periods = [int(t) for t in self.thresholds.return_periods_years]
        if not self.uses_threshold_storms or int(return_period_years) not in periods:
            return None
        return np.asarray(self.thresholds.discharge_m3s[periods.index(int(return_period_years))],
                          np.float64)

    @property
    def n_steps(self) -> int:
        """Hourly steps: the longest storm and its recession, within the IDF's simulation."""
        return min(self.idf.simulation_hours,
                   max(self.durations_h) + self.idf.recession_hours)


@dataclass(frozen=True, eq=False)
class ScenarioResult:
    """One return period's flood: per reach the composite hydrograph (reach, time) float32 at
    hourly step ends, its peak and critical storm duration, its return-period class on the
    thresholds; the flood map; and per reach the people its flooding reaches (settlements'
    people on its wet cells, each cell holding an equal share of its settlement)."""

    return_period_years: int
    discharge_m3s: np.ndarray
    peak_m3s: np.ndarray
    base_flow_m3s: np.ndarray
    peak_time_h: np.ndarray
    critical_duration_h: np.ndarray
    reach_class: np.ndarray
    flood: Inundation
    people_by_reach: np.ndarray
    settlement_by_reach: np.ndarray  # index of the settlement most flooded by each reach, −1
    rain_total_mm: np.ndarray  # (reach,) areal design rain on the reach's catchment
    runoff_total_mm: np.ndarray
    mass_balance_relative_error: float  # the worst of the scenario's runs, whole balance
    routing_relative_error: float  # the worst of its runs, channels and water bodies alone
    seconds: float


def check_scenario_options(return_periods: tuple[int, ...], durations_h: tuple[int, ...],
                           rain_factor: float) -> None:
    """Return periods > 1 year (distinct), durations ≥ 1 h, a rain factor within
    :data:`RAIN_FACTOR_RANGE`: a clear error otherwise."""
    if not return_periods:
        raise InputError("give at least one return period, e.g. 2 5 10 25 50 100.")
    bad = [t for t in return_periods if not 1 < t <= MAX_RETURN_PERIOD_YEARS]
    if bad:
        raise InputError(f"return periods {bad} are outside 2…{MAX_RETURN_PERIOD_YEARS} years; "
                         "a return period is the mean years between floods, > 1.")
    if len(set(return_periods)) != len(return_periods):
        raise InputError(f"return periods {list(return_periods)} repeat one; give each once.")
    if not durations_h or min(durations_h) < 1:
        raise InputError(f"storm durations {list(durations_h)}: give whole hours ≥ 1.")
    low, high = RAIN_FACTOR_RANGE
    if not (low <= rain_factor <= high):
        raise InputError(f"rain factor {rain_factor}: give {low}…{high} (e.g. 1.2 for 20 % "
                         "more design rain, a climate-change sensitivity).")


def run_scenario(model: ScenarioModel, return_period_years: int) -> ScenarioResult:
    """The flood of one return period (see the module's description). Pure: the same model and
    return period always give the same result, serially or on any worker.

    Each reach's design peak is found as the thresholds find it: the largest peak over the
    durations in each reference area's runs, interpolated in log area. Its hydrograph is the
    critical duration's (the one whose hydrograph, interpolated between the bracketing area
    runs, peaks highest), its rise above base flow scaled to reach that design peak: the
    interpolation of two hydrographs that peak at different times peaks lower than the
    interpolation of their peaks (by 4 % at the median reach of the demo, up to 20 %), and a
    hazard map of the T-year flood must show the T-year peak the forecasts are judged
    against. With the thresholds' own storms (every IDF duration, no rain factor) the design
    peak is the threshold itself, kept increasing with T. Depth and first flooding follow the
    peak stage; the scaled volumes are not a water balance (each run's own balance is checked
    and reported).
    """
    start = time.perf_counter()
    hydro = model.hydro
    n = model.n_steps
    dt = np.full(n, 3600.0)
    reach = np.arange(hydro.n_reaches)
    ref_areas = np.asarray(model.idf.reference_areas_km2, np.float64)
    lower, upper, weight = reference_area_weights(hydro.upstream_area_km2, ref_areas)
    w = weight.astype(np.float32)[:, None]
    nearest = np.where(weight < 0.5, lower, upper)
    best_q = np.zeros((hydro.n_reaches, n), np.float32)
    best_peak = np.full(hydro.n_reaches, -np.inf)
    best_duration = np.zeros(hydro.n_reaches, np.int32)
    area_peak = np.zeros((ref_areas.size, hydro.n_reaches))
    rain_mm = np.zeros(hydro.n_reaches)
    runoff_mm = np.zeros(hydro.n_reaches)
    body_levels = np.zeros((hydro.water_bodies.n_bodies, n))
    base_flow = np.zeros(hydro.n_reaches)
    worst_balance = 0.0
    worst_routing = 0.0

    def area_run(hours: int, steps: int, area: float) -> Simulation:
        hyeto = design_hyetograph(return_period_years, hours, area, model.idf, 1, steps,
                                  rain_factor=model.rain_factor)
        rain = np.ascontiguousarray(np.broadcast_to(hyeto[:, None], (steps, hydro.n_reaches)))
        return simulate(hydro, rain, dt[:steps], amc=2, ia_ratio=model.ia_ratio,
                        base_flow_l_s_km2=model.base_flow_l_s_km2,
                        initial_levels_m=model.initial_levels_m)

    # The routing kernel releases the interpreter lock: a duration's area runs share the
    # cores as threads, over the one model in memory.
    with ThreadPoolExecutor(max_workers=min(ref_areas.size, _cores())) as pool:
        for hours in model.durations_h:
            # The storm and its recession only, as for the thresholds: by then its peak has
            # passed every reach where it can be the critical storm. The rest of the horizon
            # holds the last flow, below that peak: neither depth nor first flooding change.
            steps = min(n, hours + model.idf.recession_hours)
            runs = list(pool.map(lambda area, h=hours, m=steps: area_run(h, m, float(area)),
                                 ref_areas))
            for k, run in enumerate(runs):
                balance = run.mass_balance
                worst_balance = max(worst_balance, abs(float(balance["relative_error"])))
                worst_routing = max(worst_routing,
                                    abs(float(balance["routing_relative_error"])))
                area_peak[k] = np.maximum(area_peak[k], run.peak_m3s)
            base_flow = runs[0].base_flow_m3s
            stacked = np.stack([r.discharge_m3s for r in runs])  # (area, reach, time)
            q = stacked[lower, reach] * (1 - w) + stacked[upper, reach] * w
            del stacked
            peak = q.max(axis=1)
            better = peak > best_peak
            best_q[better, :steps] = q[better]
            best_q[better, steps:] = q[better, -1:]
            best_peak[better] = peak[better]
            best_duration[better] = hours
            rains = np.stack([r.rain_mm.sum(axis=0) for r in runs])
            runoffs = np.stack([r.runoff_mm.sum(axis=0) for r in runs])
            rain_mm[better] = rains[nearest, reach][better]
            runoff_mm[better] = runoffs[nearest, reach][better]
            bodies = hydro.water_bodies
            if bodies.n_bodies:
                outlet = bodies.outlet_reach
                chosen = better[outlet]
                levels = _held(np.stack([r.water_body_level_m for r in runs]), n)
                body_levels[chosen] = levels[nearest[outlet], np.arange(bodies.n_bodies)][chosen]
    design_peak = area_peak[lower, reach] * (1 - weight) + area_peak[upper, reach] * weight
    thresholds = model.threshold_peaks(return_period_years)
    if thresholds is not None:
        # The same storms, but raised where a rarer flood's routed peak came out lower than a
        # more frequent one's (the routing's parameters follow each flood's own size): the
        # maps of 2 … 100 years then never shrink as the return period grows.
        design_peak = thresholds
    rise = best_peak - base_flow
    scale = np.where(rise > 1e-9, (design_peak - base_flow) / np.where(rise > 1e-9, rise, 1.0),
                     1.0)
    best_q = (base_flow[:, None] + (best_q - base_flow[:, None]) * scale[:, None]).astype(
        np.float32)
    peak_m3s = np.where(rise > 1e-9, design_peak, best_peak)
    hours_from_start = np.arange(1, n + 1, dtype=np.float64)
    flood = map_flood(model.flood_grid, hydro.curves, best_q, hours_from_start,
                      water_bodies=hydro.water_bodies, water_body_level_m=body_levels)
    reach_class = model.thresholds.classify(peak_m3s)
    reach_class[hydro.water_bodies.pass_through] = 0
    reach_people, reach_settlement = people_by_reach(
        model.footprints, flood, model.flood_grid.catchment_id, hydro.n_reaches,
        model.wet_depth_m)
    return ScenarioResult(
        return_period_years=int(return_period_years), discharge_m3s=best_q,
        peak_m3s=peak_m3s, base_flow_m3s=base_flow,
        peak_time_h=(best_q.argmax(axis=1) + 1).astype(np.float64),
        critical_duration_h=best_duration, reach_class=reach_class, flood=flood,
        people_by_reach=reach_people, settlement_by_reach=reach_settlement,
        rain_total_mm=rain_mm, runoff_total_mm=runoff_mm,
        mass_balance_relative_error=worst_balance, routing_relative_error=worst_routing,
        seconds=time.perf_counter() - start)


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _held(series: np.ndarray, n_steps: int) -> np.ndarray:
    """``series`` (…, time) extended to ``n_steps`` by holding its last value."""
    missing = n_steps - series.shape[-1]
    if missing <= 0:
        return series
    tail = np.repeat(series[..., -1:], missing, axis=-1)
    return np.concatenate([series, tail], axis=-1)


def people_by_reach(footprints: SettlementFootprints | None, flood: Inundation,
                    catchment_id: np.ndarray, n_reaches: int, wet_depth_m: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """People on flooded land, by the reach whose water floods it: every footprint cell holds
    an equal share of its settlement's people, and a wet cell (depth ≥ ``wet_depth_m``) counts
    them for the reach of its catchment (HAND floods a cell from the reach it drains to).
    Summed over reaches it is the settlements' people exposed before rounding. Also, per
    reach, the settlement (index) with the most people on its water, −1 for none."""
    people = np.zeros(n_reaches)
    top = np.full(n_reaches, -1, np.int64)
    if footprints is None:
        return people, top
    counts = np.diff(footprints.offsets)
    per_cell = np.repeat(footprints.population / counts, counts)
    settlement = np.repeat(np.arange(footprints.n_settlements), counts)
    depth = np.nan_to_num(flood.depth_m.reshape(-1)[footprints.cells], nan=0.0)
    wet = depth >= wet_depth_m
    reach = catchment_id.reshape(-1)[footprints.cells[wet]].astype(np.int64)
    on_reach = reach > 0
    reach, weight, who = reach[on_reach] - 1, per_cell[wet][on_reach], settlement[wet][on_reach]
    if not reach.size:  # nobody's land is wet
        return people, top
    people += np.bincount(reach, weights=weight, minlength=n_reaches)[:n_reaches]
    pairs, inverse = np.unique(reach * footprints.n_settlements + who, return_inverse=True)
    pair_people = np.bincount(inverse, weights=weight)
    pair_reach, pair_settlement = np.divmod(pairs, footprints.n_settlements)
    # Per reach, its pair with the most people: sorted by reach, most people first.
    order = np.lexsort((-pair_people, pair_reach))
    first = np.r_[True, np.diff(pair_reach[order]) != 0]
    top[pair_reach[order][first]] = pair_settlement[order][first]
    return people, top


def run_scenarios(model: ScenarioModel, return_periods: tuple[int, ...], execution: Execution,
                  on_result: Callable[[ScenarioResult], None]) -> dict[str, object]:
    """Every return period's scenario, independent tasks over the shared ``model``: one after
    another here, or on the Dask cluster of ``execution`` (the model scattered to each worker
    once), handing each result to ``on_result`` as it comes (in no set order). Returns how
    they ran."""
    start = time.perf_counter()
    if not execution.distributed or len(return_periods) == 1:
        # Each scenario is written (maps, risk, files) on a thread while the next one runs;
        # one result waits at most, so memory holds two scenarios.
        with ThreadPoolExecutor(1, thread_name_prefix="floodwarn-scenario-writer") as writer:
            written: Future[None] | None = None
            for years in return_periods:
                result = run_scenario(model, years)
                if written is not None:
                    written.result()
                written = writer.submit(on_result, result)
                del result
            if written is not None:
                written.result()
        return {**Execution().describe(), "seconds": round(time.perf_counter() - start, 3)}
    from distributed import as_completed

    client = dask_client(execution)
    shared = client.scatter(model, broadcast=True, hash=False)
    # Longest first: the 100-year flood maps the most cells.
    futures = [client.submit(run_scenario, shared, years, pure=False)
               for years in sorted(return_periods, reverse=True)]
    finished = False
    try:
        for future in as_completed(futures, loop=client.loop):
            on_result(task_result(future))
        finished = True
    finally:
        if not finished:
            client.cancel(futures)
    return {**execution.describe(), "dask_workers": sum(client.nthreads().values()),
            "seconds": round(time.perf_counter() - start, 3)}

