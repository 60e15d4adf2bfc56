"""The canonical rainfall forecast: depth in mm per time step, UTC times, on its own grid.

Every reader (NetCDF, GRIB, GeoTIFF stack) hands a :class:`RawRainfall` — values as stored,
with their units, time stamps and accumulation convention — to :func:`canonical_forecast`,
which converts units, turns accumulations into per-step depths, checks everything a forecast
can get wrong and returns a :class:`RainfallForecast`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from floodwarn.errors import InputError
from floodwarn.logs import get_logger

log = get_logger(__name__)

#: How the values of a forecast relate to time.
Accumulation = Literal["step", "since_start", "rate"]

#: Known units → (factor to mm or mm/s, kind). "depth" values are depths over their step or
#: since the start; "rate" values are mean intensities over their step, per second.
UNITS: dict[str, tuple[float, str]] = {
    "mm": (1.0, "depth"),
    "millimeter": (1.0, "depth"),
    "millimeters": (1.0, "depth"),
    "millimetre": (1.0, "depth"),
    "kg m-2": (1.0, "depth"),  # 1 kg of water over 1 m² is 1 mm deep
    "kg/m2": (1.0, "depth"),
    "kg/m^2": (1.0, "depth"),
    "m": (1000.0, "depth"),
    "metre": (1000.0, "depth"),
    "meter": (1000.0, "depth"),
    "meters": (1000.0, "depth"),
    "kg m-2 s-1": (1.0, "rate"),
    "kg/m2/s": (1.0, "rate"),
    "kg/(m2 s)": (1.0, "rate"),
    "mm s-1": (1.0, "rate"),
    "mm/s": (1.0, "rate"),
    "mm h-1": (1.0 / 3600.0, "rate"),
    "mm/h": (1.0 / 3600.0, "rate"),
    "mm/hr": (1.0 / 3600.0, "rate"),
    "mm hr-1": (1.0 / 3600.0, "rate"),
    "m s-1": (1000.0, "rate"),
    "m/s": (1000.0, "rate"),
}

#: Largest share of values that may be missing (NaN) and still be filled, with a warning.
MAX_FILLED_SHARE = 0.01
#: Negative depths down to this (mm) are rounding noise of packing or de-accumulation: set to 0.
NEGATIVE_TOLERANCE_MM = 0.05
#: No step may average more than this (mm/h): the record 305 mm in 42 min (Holt, Missouri,
#: 1947) is ≈ 305 mm over its hour, and a forecast grid cell averages far below a rain gauge.
MAX_PLAUSIBLE_MM_PER_HOUR = 400.0
#: No cell may get more than this (mm) per 24 h of forecast (at least one day's worth): the
#: 24-h world record, 1,825 mm at Foc-Foc, La Réunion, 7–8 January 1966. Pro rata it also
#: stays above the 48-h to 96-h records (2,493 mm; 4,936 mm at Commerson, 2007).
MAX_PLAUSIBLE_MM_PER_DAY = 1825.0
#: A forecast whose wettest cell gets less than this (mm) in total …
MIN_WETTEST_TOTAL_MM = 1.0
#: … while more than this share of its cells (all members) get at least :data:`WET_TOTAL_MM`
#: looks like metres labelled mm (see :func:`canonical_forecast`).
MAX_DRIZZLE_WET_SHARE = 0.2
#: A cell counts as wet from this total (mm): 1 mm if the values were metres, and above the
#: packing noise (µm) some GRIB/NetCDF encoders leave in dry cells.
WET_TOTAL_MM = 0.001


def normalise_units(units: str) -> str:
    """Spell ``units`` the way :data:`UNITS` does: ``kg m**-2`` → ``kg m-2``, ``mm/hr`` kept."""
    u = units.strip().lower().replace("**", "").replace("^", "")
    u = re.sub(r"\s+", " ", u)
    return u


@dataclass(frozen=True, eq=False)
class RawRainfall:
    """A forecast as a reader found it, before any conversion.

    ``values`` is (member, time, y, x); ``step_end`` the time stamp of each value (UTC);
    ``step_start`` the start of each value's interval when the file says it (CF bounds, GRIB
    step ranges), else None; ``reference_time`` the forecast's start when known.
    """

    values: np.ndarray
    step_end: np.ndarray
    x: np.ndarray
    y: np.ndarray
    crs: str
    units: str
    variable: str
    source: str
    accumulation: Accumulation | None = None
    step_start: np.ndarray | None = None
    reference_time: np.datetime64 | None = None
    members: np.ndarray | None = None
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class RainfallForecast:
    """Rainfall depth per step, in the canonical form every later step uses.

    ``rain_mm`` float32 (member, time, y, x): depth fallen during each step, mm, finite, ≥ 0.
    ``step_start`` / ``step_end`` datetime64[s] UTC (time,): each step's interval.
    ``x`` / ``y`` cell-centre coordinates of a regular grid in ``crs`` (``y`` may descend).
    ``metadata``: source file, variable, units and conversion, accumulation, what was filled,
    and ``synthetic`` (True for generated storms).
    """

    rain_mm: np.ndarray
    step_start: np.ndarray
    step_end: np.ndarray
    x: np.ndarray
    y: np.ndarray
    crs: str
    members: np.ndarray
    metadata: dict[str, Any]

    @property
    def n_members(self) -> int:
        return int(self.rain_mm.shape[0])

    @property
    def n_steps(self) -> int:
        return int(self.rain_mm.shape[1])

    @property
    def step_hours(self) -> np.ndarray:
        """Length of each step in hours (float64)."""
        return (self.step_end - self.step_start).astype("timedelta64[s]").astype(np.float64) / 3600

    def member(self, index: int) -> RainfallForecast:
        """One member as a forecast of its own (members are independent tasks)."""
        return replace(
            self,
            rain_mm=self.rain_mm[index : index + 1],
            members=self.members[index : index + 1],
        )


def _file_name(source: str) -> str:
    """How errors name a source: its file (or folder) name, never the folders above it."""
    return Path(source).name or source


def _utc_seconds(times: np.ndarray, what: str, source: str) -> np.ndarray:
    t = np.asarray(times)
    if t.size == 0:
        raise InputError(f"{source}: {what} is empty; a forecast needs at least one time step.")
    if not np.issubdtype(t.dtype, np.datetime64):
        raise InputError(
            f"{source}: {what} has values of type {t.dtype}, not times; decode the time axis "
            "(CF 'units: hours since …') or name the times in the file names."
        )
    if np.isnat(t).any():
        raise InputError(f"{source}: {what} has missing values (NaT) at positions "
                         f"{np.flatnonzero(np.isnat(t))[:5].tolist()}.")
    return t.astype("datetime64[s]")


def _check_regular_axis(coord: np.ndarray, name: str, source: str) -> None:
    c = np.asarray(coord, np.float64)
    if c.ndim != 1 or c.size < 1 or not np.isfinite(c).all():
        raise InputError(f"{source}: coordinate {name} must be 1-D and finite.")
    if c.size >= 2:
        d = np.diff(c)
        if not (np.all(d > 0) or np.all(d < 0)):
            raise InputError(f"{source}: coordinate {name} is not monotonic.")
        if np.abs(d - d[0]).max() > 1e-3 * abs(d[0]):
            raise InputError(
                f"{source}: coordinate {name} is not regularly spaced (steps from "
                f"{d.min():g} to {d.max():g}); regrid the forecast to a regular grid first."
            )


def _interval_starts(raw: RawRainfall, end: np.ndarray) -> np.ndarray:
    """Start of each step: from the file when it says, else the previous end."""
    if raw.step_start is not None:
        return _utc_seconds(raw.step_start, "step start times", raw.source)
    start = np.empty_like(end)
    start[1:] = end[:-1]
    if raw.accumulation == "since_start" and raw.reference_time is not None:
        start[0] = raw.reference_time.astype("datetime64[s]")
    elif end.size >= 2:
        start[0] = end[0] - (end[1] - end[0])
    elif raw.reference_time is not None:
        start[0] = raw.reference_time.astype("datetime64[s]")
    else:
        raise InputError(
            f"{_file_name(raw.source)}: one time step and no interval start (no time bounds, "
            "no forecast reference time): cannot tell how long the step lasts. Add CF time "
            "bounds."
        )
    return start


def _infer_accumulation(raw: RawRainfall, kind: str) -> Accumulation:
    if kind == "rate":
        return "rate"
    if raw.accumulation is not None:
        return raw.accumulation
    v = raw.values
    if v.shape[1] >= 3:
        steps = np.diff(v, axis=1)
        finite = np.isfinite(steps)
        if np.all(steps[finite] >= -1e-6) and float(np.nanmax(v[:, -1])) > 0:
            log.warning(
                "rainfall accumulation inferred",
                extra={"source": raw.source, "variable": raw.variable,
                       "accumulation": "since_start",
                       "why": "values never decrease in time at any cell",
                       "override": "--accumulation step"},
            )
            return "since_start"
    return "step"


#: What a field far too large for its declared units most likely is, by (factor to mm, kind)
#: of those units; other units get a general hint.
TOO_LARGE_HINTS: dict[tuple[float, str], str] = {
    (1000.0, "depth"): "the values look like millimetres labelled as metres (×1000): set the "
                       "units to 'mm' (fix the file's units attribute, or units='mm' / "
                       "--units mm)",
    (1000.0, "rate"): "the values look like mm s-1 labelled as m s-1 (×1000): set the units to "
                      "'mm s-1' (fix the file's units attribute, or units='mm s-1' / "
                      "--units 'mm s-1')",
    (1.0, "rate"): "the values look like mm per hour labelled per second (×3600): set the "
                   "units to 'mm h-1' (fix the file's units attribute, or units='mm h-1' / "
                   "--units 'mm h-1')",
}


def _mm(depth: float) -> str:
    """A depth for a message: 3,000 rather than 3e+03; 0.108 rather than 0.1080000001."""
    return f"{depth:,.0f}" if abs(depth) >= 100 else f"{depth:.3g}"


def _too_large_hint(units: str, units_confirmed: bool) -> str:
    factor, kind = UNITS[normalise_units(units)]
    hint = TOO_LARGE_HINTS.get((factor, kind), (
        f"the units {units!r} cannot be right for these values: check the file's units and "
        "scale_factor (tenths or hundredths of mm?), or whether the file is corrupt"))
    return hint + (f" (the units {units!r} were given by the caller)." if units_confirmed
                   else ".")


def check_rain_magnitude(depth_mm: np.ndarray, step_start: np.ndarray, step_end: np.ndarray,
                         *, units: str, source: str, units_confirmed: bool = False) -> None:
    """Refuse rain too large to be real, or so small that it is probably metres read as mm.

    ``depth_mm`` (member, time, y, x) is the converted depth per step (mm, ≥ 0); ``units`` the
    units it was converted from (a key of :data:`UNITS` once normalised); ``source`` the
    file's name for the messages. The rules:

    1. Too large (always checked, ``units_confirmed`` or not): a step whose wettest cell
       averages more than :data:`MAX_PLAUSIBLE_MM_PER_HOUR` mm/h, or a cell whose total over
       the forecast exceeds :data:`MAX_PLAUSIBLE_MM_PER_DAY` mm per 24 h of forecast (a
       forecast shorter than a day is allowed one day's worth). Both bounds lie above the
       world records, so only a unit error or corrupt data exceed them; the hint names the
       likely mix-up for the declared units (e.g. millimetres labelled as metres, ×1000).
    2. Too small (only for units worth 1 mm — mm, kg m-2, kg m-2 s-1, mm s-1 — and only when
       the caller did not state the units): the wettest cell's forecast total is below
       :data:`MIN_WETTEST_TOTAL_MM` while more than :data:`MAX_DRIZZLE_WET_SHARE` of the cells
       (over all members) get at least :data:`WET_TOTAL_MM`. Metres labelled mm look exactly
       like this (a 420 mm storm becomes 0.42 "mm", widespread), and it would run "green"
       everywhere. Genuine forecasts rarely do: a dry-season run over El Salvador is exactly 0
       in most cells, or has showers of several mm somewhere. A forecast that really is
       widespread drizzle is read once the caller confirms its units (``units_confirmed``).

    References
    ----------
    WMO World Weather and Climate Extremes Archive (https://wmo.asu.edu): 305 mm in 42 min
    (Holt, Missouri, 22 June 1947); 1,825 mm in 24 h (Foc-Foc, La Réunion, 7–8 January 1966).
    """
    hours = (step_end - step_start).astype("timedelta64[s]").astype(np.float64) / 3600.0
    rate = depth_mm.max(axis=(0, 2, 3)) / hours  # wettest cell's mean rate per step, mm/h
    if float(rate.max()) > MAX_PLAUSIBLE_MM_PER_HOUR:
        t = int(rate.argmax())
        m, r, c = np.unravel_index(int(depth_mm[:, t].argmax()), depth_mm[:, t].shape)
        raise InputError(
            f"{source}: {_mm(depth_mm[m, t, r, c])} mm in the {hours[t]:g}-h step ending "
            f"{step_end[t]} ({rate[t]:,.0f} mm/h) at member {m}, row {r}, col {c} is beyond any "
            f"recorded rain (world record 305 mm in 42 min; limit "
            f"{MAX_PLAUSIBLE_MM_PER_HOUR:.0f} mm/h): {_too_large_hint(units, units_confirmed)}"
        )
    totals = depth_mm.sum(axis=1)  # (member, y, x), mm over the whole forecast
    total_hours = float(hours.sum())
    wettest = float(totals.max())
    limit = MAX_PLAUSIBLE_MM_PER_DAY * max(1.0, total_hours / 24.0)
    if wettest > limit:
        m, r, c = np.unravel_index(int(totals.argmax()), totals.shape)
        raise InputError(
            f"{source}: {_mm(wettest)} mm in total over the forecast's {total_hours:g} h at "
            f"member {m}, row {r}, col {c} is beyond any recorded rain (world record 1,825 mm "
            f"in 24 h; limit {limit:,.0f} mm): {_too_large_hint(units, units_confirmed)}"
        )
    factor, kind = UNITS[normalise_units(units)]
    if units_confirmed or factor != 1.0 or wettest >= MIN_WETTEST_TOTAL_MM:
        return
    wet_share = float(np.count_nonzero(totals >= WET_TOTAL_MM)) / totals.size
    if wet_share > MAX_DRIZZLE_WET_SHARE:
        metres = "m" if kind == "depth" else "m s-1"
        confirm = "mm" if kind == "depth" else units
        raise InputError(
            f"{source}: the wettest cell gets only {wettest:.3g} mm over the whole forecast "
            f"({total_hours:g} h), yet {wet_share:.0%} of the cells get rain (≥ {WET_TOTAL_MM:g}"
            f" mm): the values look like metres labelled {units!r} — {wettest:.3g} m would be "
            f"{wettest * 1000:,.0f} mm. If they are metres, set the units to {metres!r} (fix "
            f"the file's units attribute, or units={metres!r} / --units '{metres}'). If the "
            f"forecast really is this dry, confirm its units explicitly: units={confirm!r} / "
            f"--units '{confirm}'."
        )


def canonical_forecast(raw: RawRainfall, *, units_confirmed: bool = False) -> RainfallForecast:
    """Convert a reader's :class:`RawRainfall` to mm per step, UTC, validated.

    Units are looked up in :data:`UNITS` (depths in mm, kg m⁻² or m; rates in kg m⁻² s⁻¹,
    mm s⁻¹, mm h⁻¹); rates are multiplied by their step length; accumulations since the start
    of the forecast are differenced step by step (ECMWF ``tp`` is accumulated and in metres).
    Missing values up to :data:`MAX_FILLED_SHARE` of the data are filled with that step's mean
    over the member's valid cells (logged as a warning with the count); more is an error.
    Negative depths down to −:data:`NEGATIVE_TOLERANCE_MM` are rounding and set to 0; below
    that they are an error.

    Magnitudes are checked in both directions, since a factor of 1000 either way is the usual
    unit mistake (see :func:`check_rain_magnitude`):

    - too large, always: a step averaging more than :data:`MAX_PLAUSIBLE_MM_PER_HOUR`, or a
      cell's total above :data:`MAX_PLAUSIBLE_MM_PER_DAY` per 24 h of forecast;
    - too small, for units in mm (factor 1: mm, kg m⁻², kg m⁻² s⁻¹, mm s⁻¹) unless
      ``units_confirmed`` (the caller stated the units): the wettest cell's total below
      :data:`MIN_WETTEST_TOTAL_MM` while more than :data:`MAX_DRIZZLE_WET_SHARE` of the cells
      get at least :data:`WET_TOTAL_MM` — metres labelled mm, which would run "green".

    References
    ----------
    CF Conventions 1.10, §4.4 (time), §7.1 (cell boundaries), §7.3 (cell methods).
    ECMWF (2023) IFS documentation, Part IV: total precipitation is accumulated from the start
    of the forecast, in m of water equivalent.
    WMO World Weather and Climate Extremes Archive (https://wmo.asu.edu): greatest point
    rainfall in 42 min, 305 mm (Holt, Missouri, 22 June 1947); in 24 h, 1,825 mm (Foc-Foc,
    La Réunion, 7–8 January 1966, tropical cyclone Denise).
    """
    source = _file_name(raw.source)
    units_key = normalise_units(raw.units)
    if units_key not in UNITS:
        raise InputError(
            f"{source}: variable {raw.variable!r} has units {raw.units!r}, which floodwarn does "
            f"not know; known units are {sorted(UNITS)}. Fix the file's 'units' attribute."
        )
    factor, kind = UNITS[units_key]
    values = np.asarray(raw.values, np.float64)
    if values.ndim != 4:
        raise InputError(f"{source}: rainfall must be (member, time, y, x); got {values.shape}.")
    _check_regular_axis(raw.x, "x", source)
    _check_regular_axis(raw.y, "y", source)
    if values.shape[2:] != (len(raw.y), len(raw.x)):
        raise InputError(f"{source}: values {values.shape} do not match y {len(raw.y)} × x "
                         f"{len(raw.x)}.")
    end = _utc_seconds(raw.step_end, "time axis", source)
    if end.size != values.shape[1]:
        raise InputError(f"{source}: {end.size} times for {values.shape[1]} steps of values.")
    order = np.diff(end.astype(np.int64))
    if np.any(order <= 0):
        i = int(np.flatnonzero(order <= 0)[0])
        raise InputError(
            f"{source}: times are not strictly increasing: step {i + 1} is {end[i + 1]}, after "
            f"{end[i]}. Sort the forecast by time and drop duplicates."
        )
    accumulation = _infer_accumulation(raw, kind)
    if (accumulation == "since_start" and raw.step_start is None and end.size >= 2
            and raw.reference_time is not None
            and end[0] == raw.reference_time.astype("datetime64[s]")):
        # Step 0 of a field accumulated from the start (cfgrib's step = 0 h, valid at the
        # reference time) is the forecast's start, not an interval: it holds 0 by definition.
        if np.nanmax(np.abs(values[:, 0])) > 0:
            raise InputError(
                f"{source}: {raw.variable!r} is accumulated from the forecast start, yet its "
                f"step 0 (valid at the reference time {end[0]}) holds rain "
                f"({np.nanmax(values[:, 0]):g} {raw.units}); a total since the start is 0 "
                "there. Check the reference time or the accumulation.")
        values, end = values[:, 1:], end[1:]
    start = _interval_starts(replace(raw, accumulation=accumulation), end)
    seconds = (end - start).astype(np.float64)
    if np.any(seconds <= 0):
        raise InputError(f"{source}: a step ends before it starts (interval bounds).")

    missing = ~np.isfinite(values)
    filled = int(missing.sum())
    if filled:
        share = filled / values.size
        whole_steps = missing.all(axis=(2, 3))
        if share > MAX_FILLED_SHARE or whole_steps.any():
            where = np.argwhere(missing)[0]
            raise InputError(
                f"{source}: {filled} values ({share:.1%}) of {raw.variable!r} are missing "
                f"(first at member {where[0]}, time {end[where[1]]}, row {where[2]}, col "
                f"{where[3]}){'; whole time steps are empty' if whole_steps.any() else ''}. "
                f"At most {MAX_FILLED_SHARE:.0%} can be filled: supply a complete forecast."
            )
        step_mean = np.nanmean(values, axis=(2, 3), keepdims=True)
        values = np.where(missing, step_mean, values)
        log.warning(
            "rainfall gaps filled",
            extra={"source": raw.source, "values_filled": filled, "share": round(share, 6),
                   "with": "the step's mean over valid cells"},
        )

    if accumulation == "since_start":
        depth = np.diff(values, axis=1, prepend=0.0)
        depth *= factor
    elif accumulation == "rate":
        depth = values * (factor * seconds)[None, :, None, None]
    else:
        depth = values * factor

    lowest = float(depth.min())
    if lowest < -NEGATIVE_TOLERANCE_MM:
        m, t, r, c = np.unravel_index(int(depth.argmin()), depth.shape)
        raise InputError(
            f"{source}: rainfall of {lowest:.3g} mm at member {m}, step ending {end[t]}, row {r},"
            f" col {c}: rain cannot be negative"
            + (" — accumulated values decrease there; is the variable really accumulated "
               "since the start?" if accumulation == "since_start" else "")
            + f" (tolerance {NEGATIVE_TOLERANCE_MM} mm for rounding)."
        )
    np.maximum(depth, 0.0, out=depth)
    check_rain_magnitude(depth, start, end, units=raw.units, source=source,
                         units_confirmed=units_confirmed)
    members = raw.members if raw.members is not None else np.arange(values.shape[0])
    metadata = {
        "source": raw.source,
        "variable": raw.variable,
        "units": raw.units,
        "accumulation": accumulation,
        "values_filled": filled,
        "units_confirmed": units_confirmed,
        "synthetic": bool(raw.attrs.get("floodwarn_synthetic", False)),
        "reference_time": None if raw.reference_time is None else str(raw.reference_time),
    }
    log.info(
        "rainfall forecast read",
        extra={"source": raw.source, "members": values.shape[0], "steps": values.shape[1],
               "grid": f"{len(raw.y)}x{len(raw.x)}", "units": raw.units,
               "accumulation": accumulation, "max_step_mm": round(float(depth.max()), 2)},
    )
    return RainfallForecast(
        rain_mm=depth.astype(np.float32),
        step_start=start,
        step_end=end,
        x=np.asarray(raw.x, np.float64),
        y=np.asarray(raw.y, np.float64),
        crs=raw.crs,
        members=np.asarray(members),
        metadata=metadata,
    )
