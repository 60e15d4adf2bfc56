"""Return-period discharge thresholds per reach, from design storms run through the same model.

A forecast peak is compared with discharges the *same* model produces for design storms of
known return period, so the class a reach gets (2, 5, … 100 years) does not carry the model's
bias in absolute discharge (both sides share it).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from floodwarn.hydrology.simulation import HydrologyModel, simulate
from floodwarn.parameters import IdfParameters

EULER_GAMMA = 0.5772156649


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


def return_period_thresholds(model: HydrologyModel, idf: IdfParameters, *,
                             ia_ratio: float = 0.2) -> ReturnPeriodThresholds:
    """Route the design storms of every return period and duration (uniform over the domain,
    AMC II, hourly, ``idf.simulation_hours`` long); a reach's threshold is its largest peak
    over the durations (the critical duration, as in Australian Rainfall and Runoff 2019,
    Book 4 ch. 3 and Book 7: the design flood of a return period comes from the storm duration
    that gives the highest peak at that point).

    No areal reduction is applied: a point design depth over a whole basin overstates the
    rain of large basins, so large-basin thresholds are high (a forecast reaches them less
    easily). This is a known limitation of the regional approximation.
    """
    steps = idf.simulation_hours
    dt = np.full(steps, 3600.0)
    peaks = []
    for years in idf.return_periods_years:
        best = np.zeros(model.n_reaches)
        for hours in idf.design_storm_hours:
            hyeto = np.zeros(steps)
            storm = alternating_block_hyetograph(years, hours, idf)
            hyeto[: storm.size] = storm
            rain = np.broadcast_to(hyeto[:, None], (steps, model.n_reaches))
            sim = simulate(model, np.ascontiguousarray(rain), dt, amc=2, ia_ratio=ia_ratio)
            best = np.maximum(best, sim.peak_m3s)
        peaks.append(best)
    q = np.maximum.accumulate(np.array(peaks), axis=0)  # never decreasing with T
    return ReturnPeriodThresholds(
        return_periods_years=np.array(idf.return_periods_years, np.int32),
        discharge_m3s=q,
        idf_version=idf.version,
        idf_is_approximation=idf.approximation,
    )


def thresholds_key(model: HydrologyModel, idf: IdfParameters, ia_ratio: float) -> str:
    """Hash of everything the thresholds depend on (model arrays and parameters, IDF file)."""
    h = hashlib.blake2b(digest_size=16)
    for arr in (model.order, model.downstream, model.length_m, model.slope, model.width_m,
                model.catchment_area_km2, model.curve_number_ii, model.lag_hours):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(f"{model.manning_n}|{model.reference_flow_share}|{ia_ratio}|".encode())
    h.update(idf.model_dump_json().encode())
    return h.hexdigest()
