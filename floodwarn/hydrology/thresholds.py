"""Return-period discharge thresholds per reach, from design storms run through the same model.

A forecast peak is compared with discharges the *same* model produces for design storms of
known return period, so the class a reach gets (2, 5, … 100 years) does not carry the model's
bias in absolute discharge (both sides share it).
"""

from __future__ import annotations

import hashlib
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from floodwarn.hydrology.simulation import HydrologyModel, simulate
from floodwarn.parameters import IdfParameters

EULER_GAMMA = 0.5772156649
#: Smallest areal reduction factor used (see :func:`areal_reduction_factor`).
MIN_AREAL_REDUCTION = 0.2


def gumbel_frequency_factor(return_period_years: float) -> float:
    """K_T of the Gumbel distribution (moments): x_T = mean + K_T · std.

    K_T = −(√6/π) (γ + ln ln (T / (T − 1))).

    References
    ----------
    Chow, V.T. (1951) A general formula for hydrologic frequency analysis. Trans. AGU 32(2),
    231-237; Chow, Maidment & Mays (1988) Applied Hydrology, eq. 12.3.8.
    """
    t = float(return_period_years)
    if t <= 1:
        raise ValueError("return period must exceed 1 year")
    return -math.sqrt(6.0) / math.pi * (EULER_GAMMA + math.log(math.log(t / (t - 1.0))))


def design_depth_mm(duration_h: np.ndarray | float, return_period_years: float,
                    idf: IdfParameters) -> np.ndarray:
    """Design rain depth (mm) of a duration (h) and return period, from ``idf``.

    P24(T) = factor · (mean + K_T · std) of annual-maximum daily rain; P(d) = P24 (d/24)^n.

    References
    ----------
    Hershfield, D.M. (1961) Rainfall frequency atlas of the United States (TP-40): factor 1.13
    from clock-day to 24-hour maxima. Koutsoyiannis, D., Kozonis, D. & Manetas, A. (1998) A
    mathematical framework for studying rainfall intensity-duration-frequency relationships.
    J. Hydrology 206, 118-135.
    """
    p24 = idf.clock_to_sliding_factor * (
        idf.annual_max_daily_mean_mm
        + gumbel_frequency_factor(return_period_years) * idf.annual_max_daily_std_mm
    )
    d = np.asarray(duration_h, np.float64)
    return p24 * (d / 24.0) ** idf.duration_exponent


def alternating_block_hyetograph(return_period_years: float, duration_h: int,
                                 idf: IdfParameters, step_h: float = 1.0) -> np.ndarray:
    """Design storm of ``duration_h`` hours: step depths (mm), alternating blocks.

    The block of the largest increment of the depth-duration curve sits in the middle, the
    next ones alternately right and left, so every centred window of d hours holds the
    d-hour design depth.

    References
    ----------
    Chow, V.T., Maidment, D.R. & Mays, L.W. (1988) Applied Hydrology, §14.4.
    """
    n = round(duration_h / step_h)
    cumulative = design_depth_mm(step_h * np.arange(1, n + 1), return_period_years, idf)
    increments = np.diff(cumulative, prepend=0.0)
    order = np.argsort(-increments, kind="stable")
    hyeto = np.zeros(n)
    centre = (n - 1) // 2
    for rank, block in enumerate(order):
        offset = (rank + 1) // 2
        pos = centre + offset if rank % 2 == 1 else centre - offset
        hyeto[min(max(pos, 0), n - 1)] = increments[block]
    return hyeto


def uniform_hyetograph(return_period_years: float, duration_h: int, idf: IdfParameters,
                       step_h: float = 1.0) -> np.ndarray:
    """Design storm of ``duration_h`` hours at constant intensity: the d-hour design depth
    spread evenly over its steps (mm per step).

    Run over a range of durations, constant-intensity storms find each point's critical
    duration without nesting every duration's design depth in one storm, as the alternating
    block does — which biases design peaks high (a high threshold means a missed warning).

    References
    ----------
    Ball, J. et al. (eds.) (2019) Australian Rainfall and Runoff: A Guide to Flood Estimation,
    Book 4 ch. 3 and Book 5 ch. 3 (critical duration; bias of nested-intensity patterns).
    """
    n = round(duration_h / step_h)
    return np.full(n, float(design_depth_mm(duration_h, return_period_years, idf)) / n)


#: Design storm temporal patterns by name (``design_storm_pattern`` in the IDF file).
DESIGN_STORM_PATTERNS = {
    "uniform": uniform_hyetograph,
    "alternating_block": alternating_block_hyetograph,
}


@dataclass(frozen=True, eq=False)
class ReturnPeriodThresholds:
    """``discharge_m3s`` (n_periods, n_reaches): design peak of each return period."""

    return_periods_years: np.ndarray
    discharge_m3s: np.ndarray
    idf_version: str
    idf_is_approximation: bool

    def classify(self, peak_m3s: np.ndarray) -> np.ndarray:
        """Largest return period (years) whose threshold a peak reaches; 0 below the first.

        A reach whose threshold is 0 (design storms make no runoff there) is classed only
        when its peak is positive.
        """
        peak = np.asarray(peak_m3s, np.float64)
        out = np.zeros(peak.shape, np.int32)
        for years, q in zip(self.return_periods_years, self.discharge_m3s, strict=True):
            out = np.where((peak >= q) & (peak > 0), int(years), out)
        return out


def areal_reduction_factor(area_km2: np.ndarray | float, duration_h: float) -> np.ndarray:
    """Ratio of areal to point design rainfall for a catchment area and storm duration.

    ARF = 1 − b1·D^(−b2), b1 = 0.0394 A^0.354, b2 = 0.40 − 0.0208 ln(4.6 − ln A) for
    A < 20 km² and b2 = 0.40 − 0.00382 (4.6 − ln A)² above (A in km², D in hours); areas are
    kept within 1…30,000 km². For short storms on large areas, outside the range the relation
    was fitted on, it falls to 0 and below: it is floored at :data:`MIN_AREAL_REDUCTION`.

    References
    ----------
    NERC (1975) Flood Studies Report, vol. II, Natural Environment Research Council, London;
    as given by Svensson, C. & Jones, D.A. (2010) Review of methods for deriving areal
    reduction factors. Journal of Flood Risk Management 3, 232-245, eqs. 1-3.
    """
    a = np.clip(np.asarray(area_km2, np.float64), 1.0, 30_000.0)
    b1 = 0.0394 * a**0.354
    log_a = np.log(a)
    b2 = np.where(a < 20.0, 0.40 - 0.0208 * np.log(np.maximum(4.6 - log_a, 1e-9)),
                  0.40 - 0.00382 * (4.6 - log_a) ** 2)
    return np.clip(1.0 - b1 * float(duration_h) ** -b2, MIN_AREAL_REDUCTION, 1.0)


def reference_area_weights(upstream_area_km2: np.ndarray, reference_areas_km2: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each reach, the reference areas that bracket its upstream area (indices ``lower``
    and ``upper``) and the ``weight`` of the upper one, linear in log area (areas outside the
    references take the nearest one)."""
    ref_areas = np.asarray(reference_areas_km2, np.float64)
    n = np.asarray(upstream_area_km2).shape[0]
    if ref_areas.size == 1:
        zero = np.zeros(n, np.int64)
        return zero, zero, np.zeros(n)
    log_area = np.log(np.clip(upstream_area_km2, ref_areas[0], ref_areas[-1]))
    upper = np.clip(np.searchsorted(ref_areas, np.exp(log_area)), 1, ref_areas.size - 1)
    lower = upper - 1
    weight = (log_area - np.log(ref_areas[lower])) / (
        np.log(ref_areas[upper]) - np.log(ref_areas[lower]))
    return lower, upper, weight


def design_hyetograph(return_period_years: float, duration_h: int, area_km2: float,
                      idf: IdfParameters, step_hours: int, n_steps: int, *,
                      rain_factor: float = 1.0) -> np.ndarray:
    """Rain (mm per step) of ``n_steps`` steps: the design storm of a return period and
    duration in the IDF's pattern, reduced to areal rain for ``area_km2``
    (:func:`areal_reduction_factor`) and scaled by ``rain_factor``, then dry steps."""
    hyeto = np.zeros(n_steps)
    storm = DESIGN_STORM_PATTERNS[idf.design_storm_pattern](return_period_years, duration_h,
                                                           idf, float(step_hours))
    m = min(storm.size, n_steps)
    hyeto[:m] = storm[:m] * areal_reduction_factor(area_km2, duration_h) * rain_factor
    return hyeto


def return_period_thresholds(model: HydrologyModel, idf: IdfParameters, *,
                             ia_ratio: float = 0.2, step_hours: int = 1,
                             base_flow_l_s_km2: float = 0.0,
                             initial_levels_m: np.ndarray | None = None
                             ) -> ReturnPeriodThresholds:
    """Route the design storms of every return period, duration and reference area through
    the model (uniform over the domain, AMC II, ``idf.simulation_hours`` long).

    Design storms use the forecast's own time step (``step_hours``), and only durations of at
    least one step (the longest one if none is): a forecast with 6-hour steps cannot hold a
    1-hour burst, and comparing its peaks with thresholds from hourly bursts would never
    warn.

    - Duration: a reach's threshold is its largest peak over the storm durations (the
      critical duration, as in Australian Rainfall and Runoff 2019, Book 4 ch. 3: the design
      flood of a return period comes from the duration giving the highest peak there).
    - Base flow and water bodies: annual maximum floods come in the wettest months, so the
      design storms start from that season's base flow (``base_flow_l_s_km2``) and with the
      reservoirs and lakes at its normal levels (``initial_levels_m``).
    - Area: a design storm of point depth over a whole basin overstates what falls on a large
      basin, so the depth is reduced by :func:`areal_reduction_factor` for each of
      ``idf.reference_areas_km2``; each reach takes its threshold by interpolating, in log
      area, between the runs of the reference areas that bracket its upstream area.
    """
    if step_hours < 1:
        raise ValueError("step_hours must be at least 1")
    steps = max(1, idf.simulation_hours // step_hours)
    dt = np.full(steps, 3600.0 * step_hours)
    durations = [h for h in idf.design_storm_hours if h >= step_hours and h % step_hours == 0]
    durations = durations or [max(step_hours, max(idf.design_storm_hours))]
    ref_areas = np.array(idf.reference_areas_km2, np.float64)
    lower, upper, weight = reference_area_weights(model.upstream_area_km2, ref_areas)
    reach = np.arange(model.n_reaches)

    def design_peak(years: int, hours: int, area: float) -> np.ndarray:
        # The storm plus its recession: a short storm's peak has passed every reach for which
        # it can be the critical duration well before the longest storm's would.
        n = min(steps, (hours + idf.recession_hours) // step_hours)
        hyeto = design_hyetograph(years, hours, area, idf, step_hours, n)
        rain = np.broadcast_to(hyeto[:, None], (n, model.n_reaches))
        return simulate(model, np.ascontiguousarray(rain), dt[:n], amc=2,
                        ia_ratio=ia_ratio, base_flow_l_s_km2=base_flow_l_s_km2,
                        initial_levels_m=initial_levels_m).peak_m3s

    runs = [(y, h, k) for y in idf.return_periods_years for h in durations
            for k in range(ref_areas.size)]
    # Design storms are independent runs; the routing kernels release the GIL, so threads
    # share the cores without copying the model.
    with ThreadPoolExecutor(max_workers=max(1, min(os.cpu_count() or 1, 8))) as pool:
        results = list(pool.map(lambda run: design_peak(run[0], run[1], ref_areas[run[2]]),
                                runs))
    peaks = []
    for years in idf.return_periods_years:
        by_area = np.zeros((ref_areas.size, model.n_reaches))
        for (y, _h, k), peak in zip(runs, results, strict=True):
            if y == years:
                by_area[k] = np.maximum(by_area[k], peak)
        peaks.append(by_area[lower, reach] * (1 - weight) + by_area[upper, reach] * weight)
    q = np.maximum.accumulate(np.array(peaks), axis=0)  # never decreasing with T
    return ReturnPeriodThresholds(
        return_periods_years=np.array(idf.return_periods_years, np.int32),
        discharge_m3s=q,
        idf_version=idf.version,
        idf_is_approximation=idf.approximation,
    )


def thresholds_key(model: HydrologyModel, idf: IdfParameters, ia_ratio: float,
                   step_hours: int = 1, base_flow_l_s_km2: float = 0.0,
                   initial_levels_m: np.ndarray | None = None) -> str:
    """Hash of everything the thresholds depend on (model arrays and parameters, reach
    geometry, water bodies, base flow, IDF file)."""
    h = hashlib.blake2b(digest_size=16)
    curves = model.curves
    bodies = model.water_bodies
    for arr in (model.downstream, model.length_m, model.catchment_area_km2,
                model.curve_number_ii, model.lag_hours, curves.slope, curves.discharge_m3s,
                curves.area_m2, curves.top_width_m, bodies.outlet_reach, bodies.pass_through,
                bodies.levels_m, bodies.storage_m3, bodies.outflow_m3s,
                np.asarray(initial_levels_m if initial_levels_m is not None else [], float)):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(f"{model.routing_step_s}|{model.reference_flow_share}|{ia_ratio}|{step_hours}|"
             f"{base_flow_l_s_km2}|".encode())
    h.update(idf.model_dump_json().encode())
    return h.hexdigest()
