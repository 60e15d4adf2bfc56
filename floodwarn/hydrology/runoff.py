"""SCS curve-number runoff, applied incrementally through a storm, with antecedent moisture.

Runoff depth after cumulative rain P (mm), with potential retention S = 25400/CN − 254 and
initial abstraction Ia = λS:  Q = (P − Ia)² / (P − Ia + S) for P > Ia, else 0. Applied to the
cumulative rain at the end of every step, the runoff of a step is the growth of Q over it, so
storm totals equal the single-event equation and the timing follows the rain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from floodwarn.errors import InputError
from floodwarn.parameters import SOIL_GROUPS, CurveNumberTable

#: Five-day antecedent rain limits (mm) between AMC I|II and II|III, by season (NEH-4 Table
#: 4.2, 0.5/1.1 in dormant and 1.4/2.1 in growing season).
AMC_LIMITS_MM: dict[str, tuple[float, float]] = {
    "dormant": (12.7, 27.9),
    "growing": (35.6, 53.3),
}
#: El Salvador's rainy season (growing season for AMC): May to October.
GROWING_MONTHS = frozenset(range(5, 11))



def season_of(month: int) -> str:
    """AMC season of a calendar month in El Salvador (rainy May–October = growing)."""
    return "growing" if month in GROWING_MONTHS else "dormant"


#: Antecedent moisture classes of NEH-4 (dry, average, wet) and the initial abstraction ratios
#: λ whose curve-number conversion is published (Hawkins et al. 2002): the only values a run
#: may choose.
AMC_CLASSES = (1, 2, 3)
IA_RATIOS = (0.2, 0.05)


def check_amc(amc: int) -> None:
    """Refuse an antecedent moisture class other than 1, 2 or 3."""
    if amc not in AMC_CLASSES:
        raise InputError(f"antecedent moisture class {amc} unknown; use 1, 2 or 3.")


def check_ia_ratio(ia_ratio: float) -> None:
    """Refuse an initial abstraction ratio without a published curve-number conversion."""
    if ia_ratio not in IA_RATIOS:
        raise InputError(f"initial abstraction ratio {ia_ratio} unsupported; use 0.2 or 0.05.")


def check_curve_number_sources(landcover: object | None, soil: object | None) -> None:
    """Curve numbers come from the shipped table or from both rasters, never from one."""
    if (landcover is None) != (soil is None):
        raise InputError("curve numbers from rasters need both land cover (--landcover) and "
                         "soil (--soil) rasters, or neither.")


def antecedent_moisture_class(antecedent_rain_mm: np.ndarray, season: str) -> np.ndarray:
    """AMC I, II or III (as 1, 2, 3) from the rain of the preceding five days.

    References
    ----------
    USDA-SCS (1972) National Engineering Handbook, Section 4 Hydrology, Table 4.2.
    """
    if season not in AMC_LIMITS_MM:
        raise InputError(f"season {season!r} unknown; use one of {sorted(AMC_LIMITS_MM)}.")
    p5 = np.asarray(antecedent_rain_mm, np.float64)
    if np.any(~np.isfinite(p5)) or np.any(p5 < 0):
        raise InputError("antecedent rain must be finite and ≥ 0 mm.")
    low, high = AMC_LIMITS_MM[season]
    return np.where(p5 < low, 1, np.where(p5 > high, 3, 2)).astype(np.int8)


def curve_number_for_amc(cn_ii: np.ndarray, amc: np.ndarray) -> np.ndarray:
    """Curve number for dry (I) or wet (III) antecedent conditions from its AMC II value.

    CN_I = 4.2 CN_II / (10 − 0.058 CN_II);  CN_III = 23 CN_II / (10 + 0.13 CN_II).

    References
    ----------
    Chow, V.T., Maidment, D.R. & Mays, L.W. (1988) Applied Hydrology, eqs. 5.5.6–5.5.7 (after
    NEH-4 Table 10.1).
    """
    cn = np.asarray(cn_ii, np.float64)
    amc = np.broadcast_to(np.asarray(amc), cn.shape)
    dry = 4.2 * cn / (10.0 - 0.058 * cn)
    wet = 23.0 * cn / (10.0 + 0.13 * cn)
    out = np.where(amc == 1, dry, np.where(amc == 3, wet, cn))
    return np.where(cn >= 100.0, 100.0, np.minimum(out, 100.0))


def retention_mm(cn: np.ndarray, ia_ratio: float = 0.2) -> np.ndarray:
    """Potential maximum retention S (mm) for the chosen initial abstraction ratio λ.

    Curve numbers in tables are for λ = 0.2. For λ = 0.05 the retention is converted with
    S₀.₀₅ = 1.33 S₀.₂^1.15 (S in inches), as Hawkins et al. (2002) and Woodward et al. (2003)
    derived from rainfall-runoff events.

    References
    ----------
    USDA-NRCS (2004) NEH Part 630, ch. 10, eq. 10-12 (S = 1000/CN − 10 in).
    Hawkins, R.H., Jiang, R., Woodward, D.E., Hjelmfelt, A.T. & Van Mullem, J.A. (2002) Runoff
    curve number method: examination of the initial abstraction ratio. Proc. 2nd Federal
    Interagency Hydrologic Modeling Conference, Las Vegas.
    """
    cn = np.asarray(cn, np.float64)
    if np.any((cn < 1) | (cn > 100) | ~np.isfinite(cn)):
        raise InputError("curve numbers must lie in 1…100.")
    check_ia_ratio(ia_ratio)
    s_in = 1000.0 / cn - 10.0
    if ia_ratio == 0.05:
        s_in = 1.33 * s_in**1.15
    return s_in * 25.4


def scs_runoff_mm(cumulative_rain_mm: np.ndarray, retention: np.ndarray,
                  ia_ratio: float = 0.2) -> np.ndarray:
    """SCS runoff depth (mm) for cumulative rain (mm) and retention S (mm), broadcasting.

    References
    ----------
    USDA-NRCS (2004) NEH Part 630, ch. 10, eq. 10-9; USDA-NRCS (1986) TR-55, eq. 2-3.
    """
    p = np.asarray(cumulative_rain_mm, np.float64)
    s = np.asarray(retention, np.float64)
    ia = ia_ratio * s
    excess = np.maximum(p - ia, 0.0)
    denom = excess + s
    return np.divide(excess * excess, denom, out=np.zeros(np.broadcast(excess, denom).shape),
                     where=denom > 0)


@dataclass(frozen=True)
class RunoffResult:
    """Per-step runoff of every catchment: ``runoff_mm`` (time, n) and ``loss_mm`` (time, n)."""

    runoff_mm: np.ndarray
    loss_mm: np.ndarray
    curve_number: np.ndarray


def incremental_runoff(rain_mm: np.ndarray, curve_number: np.ndarray, *,
                       ia_ratio: float = 0.2) -> RunoffResult:
    """Runoff of each step from rain of each step (time, n), curve numbers (n,) at the AMC used.

    Rain minus runoff is the loss (initial abstraction plus continuing infiltration);
    rain = runoff + loss holds step by step to rounding.
    """
    rain = np.asarray(rain_mm, np.float64)
    if rain.ndim != 2:
        raise InputError(f"rain must be (time, catchments); got shape {rain.shape}.")
    if np.any(~np.isfinite(rain)) or np.any(rain < 0):
        raise InputError("rain per catchment must be finite and ≥ 0 mm.")
    s = retention_mm(curve_number, ia_ratio)
    cumulative_q = scs_runoff_mm(np.cumsum(rain, axis=0), s[None, :], ia_ratio)
    runoff = np.diff(cumulative_q, axis=0, prepend=0.0)
    return RunoffResult(runoff_mm=runoff, loss_mm=rain - runoff,
                        curve_number=np.asarray(curve_number, np.float64))


def curve_number_grid(landcover: np.ndarray, soil: np.ndarray,
                      table: CurveNumberTable) -> np.ndarray:
    """AMC II curve number per cell from land-cover and soil-group codes (NaN where unknown).

    Codes are mapped by lookup tables built from ``table`` (vectorised over the grid).
    """
    lc = np.asarray(landcover)
    sg = np.asarray(soil)
    if lc.shape != sg.shape:
        raise InputError(f"land cover {lc.shape} and soil {sg.shape} grids differ in shape.")
    size = int(max(max(table.landcover_codes), max(table.soil_codes))) + 1
    cover_lut = np.full(size, -1, np.int64)
    covers = list(table.curve_numbers)
    for code, cover in table.landcover_codes.items():
        cover_lut[code] = covers.index(cover)
    soil_lut = np.full(size, -1, np.int64)
    for code, group in table.soil_codes.items():
        soil_lut[code] = SOIL_GROUPS.index(group)
    cn_matrix = np.array([table.curve_numbers[c] for c in covers], np.float64)
    lc_i = np.where((lc >= 0) & (lc < size), lc, 0).astype(np.int64)
    sg_i = np.where((sg >= 0) & (sg < size), sg, 0).astype(np.int64)
    ci = np.where((lc >= 0) & (lc < size), cover_lut[lc_i], -1)
    si = np.where((sg >= 0) & (sg < size), soil_lut[sg_i], -1)
    ok = (ci >= 0) & (si >= 0)
    out = np.full(lc.shape, np.nan)
    out[ok] = cn_matrix[ci[ok], si[ok]]
    return out


def catchment_curve_numbers(cn_grid: np.ndarray, catchment_id: np.ndarray, n_reaches: int,
                            default_cn: float) -> tuple[np.ndarray, float]:
    """Area-weighted mean CN per reach catchment (TR-55 ch. 2 composite CN); cells without a
    CN take ``default_cn``. Returns the CNs and the share of catchment cells defaulted."""
    cid = np.asarray(catchment_id).reshape(-1)
    cn = np.asarray(cn_grid, np.float64).reshape(-1)
    inside = cid > 0
    missing = inside & ~np.isfinite(cn)
    cn_filled = np.where(np.isfinite(cn), cn, default_cn)
    sums = np.bincount(cid[inside], weights=cn_filled[inside], minlength=n_reaches + 1)
    counts = np.bincount(cid[inside], minlength=n_reaches + 1)
    out = np.divide(sums, counts, out=np.full(n_reaches + 1, default_cn), where=counts > 0)
    share = float(missing.sum() / max(int(inside.sum()), 1))
    return out[1:], share
