"""Read GRIB1/GRIB2 precipitation with ecCodes: the messages of one file or of several (ECMWF
ENS and open data, GEFS), pooled and chained per member into depth accumulated since the start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from floodwarn.errors import DataFileError, FloodwarnError, InputError
from floodwarn.io.rain_limits import CROP_BOX, check_declared_cells, decoder_reason, file_name
from floodwarn.io.rainfall_files import (
    Interval,
    RainFiles,
    lon_to_180,
    plan_chain,
    refuse_mixed,
)
from floodwarn.logs import get_logger
from floodwarn.rainfall.forecast import RawRainfall

log = get_logger(__name__)

GRIB_SHORT_NAMES = ("tp", "prate")  # total precipitation (accumulated), rate (average)
_CROP_GRIB = (f"wgrib2 in.grib2 -small_grib {CROP_BOX[0]}:{CROP_BOX[2]} "
              f"{CROP_BOX[1]}:{CROP_BOX[3]} out.grib2")


#: Header keys that together fix a regular lat/lon grid: messages agreeing on all of them
#: share their coordinates.
_GRID_KEYS = ("Nj", "Ni", "latitudeOfFirstGridPointInDegrees",
              "longitudeOfFirstGridPointInDegrees", "latitudeOfLastGridPointInDegrees",
              "longitudeOfLastGridPointInDegrees", "iScansNegatively", "jScansPositively",
              "jPointsAreConsecutive")


@dataclass(frozen=True)
class _GribField:
    """A wanted message's header: where it is (file, number, byte offset), what it holds."""

    path: Path
    number: int
    offset: int
    short: str
    member: int
    reference: np.datetime64
    start_h: int
    end_h: int
    step_units: str
    units: str
    step_type: str
    grid: tuple[float, ...]

    @property
    def where(self) -> str:
        return f"message {self.number} of {self.path.name}"


def read_grib(path: Path, *, variable: str | None = None, units: str | None = None,
              max_cells: int | None = None) -> RawRainfall:
    """Read GRIB1/GRIB2 precipitation messages with ecCodes, chaining their step ranges.

    Each message covers an interval [startStep, endStep] after its reference time (GFS mixes
    0-3 h and 0-6 h totals; ECMWF accumulates from 0). Messages are chained into depth
    accumulated since the earliest interval start: a message starting where a known total ends
    extends it (:func:`~floodwarn.io.rainfall_files.plan_chain`). The ensemble member is the
    ecCodes key ``number`` (``perturbationNumber`` of product definition template 4.11; 0 for
    a control or a deterministic run); members come out sorted by number, and every member
    must hold every step. cfgrib cannot represent such mixed step ranges in one array, so
    ecCodes is read directly (the same library cfgrib wraps). Only regular lat/lon grids are
    accepted. A message over hours 0-0 (ECMWF's ``tp`` at step 0) is the start, not a step:
    it must hold no rain.

    The file is read in two passes: first the messages' headers (shortName, grid, Ni × Nj,
    which must agree with the number of points, member, run, step range), so that the rain
    messages' declared size — messages × Nj × Ni — is checked against ``max_cells`` (default
    :data:`MAX_RAIN_CELLS`) and the steps are planned before any values are decoded; then the
    values of the messages needed. Every ecCodes failure (corrupt or truncated message,
    ``DecodingError`` …) is a :class:`DataFileError` naming the file and the message.
    ``units`` replaces the units the messages state.

    References
    ----------
    WMO (2023) Manual on Codes, vol. I.2, FM 92 GRIB edition 2 (product definition templates
    4.8 and 4.11: statistically processed fields over a time interval, of an ensemble member).
    """
    path = Path(path)
    return _read_grib([path], label=file_name(path), source=str(path), parts="messages",
                      variable=variable, units=units, max_cells=max_cells)


def read_grib_files(files: RainFiles, *, variable: str | None = None, units: str | None = None,
                    max_cells: int | None = None) -> RawRainfall:
    """Read the GRIB messages of several files as one forecast, exactly as if they were one
    file (:func:`read_grib`): ECMWF ENS or open data with one file per step (control and
    perturbed members in each), GEFS with one file per member and step (``gec00.t00z.pgrb2s.
    0p25.f003``, ``gep01…``). Files without the rain variable (GEFS ``f000``) are left out.
    Messages of different files must share grid, run, units and kind; the error for a member
    or step missing or held twice names them and the files.

    References
    ----------
    WMO (2023) Manual on Codes, vol. I.2, FM 92 GRIB edition 2 (template 4.11).
    NOAA/NCEP (2020) Global Ensemble Forecast System v12 products (pgrb2 files per member).
    """
    single = len(files.files) == 1
    return _read_grib(list(files.files), label=files.name,
                      source=str(files.files[0]) if single else files.source,
                      parts="messages" if single else "files", variable=variable, units=units,
                      max_cells=max_cells)


def _read_grib(paths: Sequence[Path], *, label: str, source: str, parts: str,
               variable: str | None, units: str | None, max_cells: int | None) -> RawRainfall:
    import eccodes

    wanted = (variable,) if variable else GRIB_SHORT_NAMES
    n_messages, fields = 0, []
    for path in paths:
        n, found = _grib_scan(eccodes, path, wanted)
        n_messages += n
        fields += found
    name = next((n for n in wanted if any(f.short == n for f in fields)), None)
    if name is None:
        raise InputError(
            f"{label}: no precipitation message ({'/'.join(wanted)}) among its "
            f"{n_messages} GRIB messages; name the shortName with --variable."
        )
    chosen = [f for f in fields if f.short == name]
    skipped = sorted({p.name for p in paths} - {f.path.name for f in chosen})
    if skipped:
        log.warning("rain files without the rain variable left out",
                    extra={"source": label, "variable": name, "files": skipped})
    _check_grib_alike(label, chosen, name, parts)
    nj, ni = int(chosen[0].grid[0]), int(chosen[0].grid[1])
    check_declared_cells(label, (len(chosen), nj, ni), f"{name} messages × Nj × Ni", max_cells,
                         _CROP_GRIB)
    reference = chosen[0].reference
    plan = plan_chain(label, [Interval(f.member, f.start_h, f.end_h, f.where) for f in chosen],
                      reference=reference, variable=name, parts=parts)
    needed = sorted({i for route in plan.routes.values() for i in route} | set(plan.zero_length))
    values, lats, lons = _grib_decode(eccodes, chosen, needed)
    for i in plan.zero_length:
        f = chosen[i]
        if np.nanmax(np.abs(values[i]), initial=0.0) > 0:
            raise InputError(
                f"{label}: {name} is accumulated from the forecast start, yet its step "
                f"{f.start_h} (hours {f.start_h}-{f.end_h}, member {f.member}, {f.where}) "
                f"holds rain ({np.nanmax(values[i]):g} {f.units}); a total over no time is 0. "
                "Check the reference time or the accumulation.")
    is_rate = chosen[0].step_type == "avg"
    cumulative = np.empty((plan.members.size, len(plan.ends_h), nj, ni), np.float64)
    for k, member in enumerate(plan.members.tolist()):
        totals = {plan.origin_h: np.zeros((nj, ni), np.float64)}
        for i in plan.routes[member]:
            f = chosen[i]
            depth = values[i] * (3600.0 * (f.end_h - f.start_h) if is_rate else 1.0)
            totals[f.end_h] = totals[f.start_h] + depth
        cumulative[k] = np.stack([totals[h] for h in plan.ends_h])
    step_end = reference + np.array(plan.ends_h, dtype="timedelta64[h]")
    step_start = np.concatenate([[reference + np.timedelta64(plan.origin_h, "h")],
                                 step_end[:-1]])
    x, cumulative = lon_to_180(lons, cumulative, axis=3)
    raw = RawRainfall(
        values=cumulative,
        step_end=step_end.astype("datetime64[s]"),
        step_start=step_start.astype("datetime64[s]"),
        x=x,
        y=lats,
        crs="EPSG:4326",
        units="kg m-2" if is_rate else str(chosen[0].units),
        variable=name,
        source=source,
        accumulation="since_start",
        reference_time=reference,
        members=plan.members,
        attrs={"grib_step_type": chosen[0].step_type, "floodwarn_files": len(paths)},
    )
    return raw if units is None else replace(raw, units=units)


def _grib_scan(eccodes: Any, path: Path, wanted: tuple[str, ...]) -> tuple[int, list[_GribField]]:
    """Pass 1 over a file: every message's header checked, the wanted ones kept (no values)."""
    source = file_name(path)
    fields: list[_GribField] = []
    n_messages = 0
    try:
        with open(path, "rb") as fh:
            while True:
                try:
                    gid = eccodes.codes_grib_new_from_file(fh)
                except eccodes.CodesInternalError as exc:
                    raise DataFileError(
                        f"{source}: GRIB message {n_messages + 1} is corrupt or truncated "
                        f"({decoder_reason(exc, path)}); download the file again."
                    ) from exc
                if gid is None:
                    break
                n_messages += 1
                try:
                    field = _grib_field(eccodes, gid, path, n_messages, wanted)
                finally:
                    eccodes.codes_release(gid)
                if field is not None:
                    fields.append(field)
    except FloodwarnError:
        raise
    except OSError as exc:
        raise DataFileError(f"{source}: cannot be opened ({decoder_reason(exc, path)}).") from exc
    if n_messages == 0:
        raise DataFileError(f"{source}: holds no GRIB message; it is empty or not GRIB "
                            "(check the download).")
    return n_messages, fields


def _grib_field(eccodes: Any, gid: Any, path: Path, number: int,
                wanted: tuple[str, ...]) -> _GribField | None:
    """The header of a wanted message whose header is sound, else None (not wanted)."""
    source = file_name(path)
    try:
        short = str(eccodes.codes_get(gid, "shortName"))
        if short not in wanted:
            return None
        grid_type = eccodes.codes_get(gid, "gridType")
        if grid_type != "regular_ll":
            raise InputError(
                f"{source}: {short} (message {number}) is on a {grid_type} grid; floodwarn "
                "reads regular lat/lon GRIB grids (regrid with cdo or wgrib2 first)."
            )
        ni = int(eccodes.codes_get(gid, "Ni"))
        nj = int(eccodes.codes_get(gid, "Nj"))
        points = int(eccodes.codes_get(gid, "numberOfDataPoints"))
        coded = max(int(eccodes.codes_get(gid, "numberOfValues")),
                    int(eccodes.codes_get(gid, "numberOfCodedValues")))
        grid = tuple(float(eccodes.codes_get(gid, key)) for key in _GRID_KEYS)
    except eccodes.CodesInternalError as exc:
        raise DataFileError(f"{source}: GRIB message {number} has a corrupt header "
                            f"({exc}); download the file again.") from exc
    if ni <= 0 or nj <= 0 or ni * nj != points or coded > points:
        raise DataFileError(
            f"{source}: GRIB message {number} has a corrupt header (grid Ni {ni} × Nj {nj}, "
            f"{points} points, {coded} coded values); download the file again.")
    if grid[_GRID_KEYS.index("jPointsAreConsecutive")]:
        # Values stored column by column: read row by row they would be transposed.
        raise InputError(
            f"{source}: {short} (message {number}) stores its grid column by column "
            "(jPointsAreConsecutive = 1); floodwarn reads row-by-row grids — rewrite it with "
            "`cdo copy` or `wgrib2 -order we:ns` first.")
    try:
        try:
            member = int(eccodes.codes_get(gid, "number"))
        except eccodes.KeyValueNotFoundError:
            member = 0
        date = str(eccodes.codes_get(gid, "dataDate"))
        hhmm = int(eccodes.codes_get(gid, "dataTime"))
        field = _GribField(
            path=path, number=number, offset=int(eccodes.codes_get(gid, "offset", ktype=int)),
            short=short, member=member,
            reference=np.datetime64(
                f"{date[:4]}-{date[4:6]}-{date[6:8]}T{hhmm // 100:02d}:{hhmm % 100:02d}", "s"),
            start_h=int(eccodes.codes_get(gid, "startStep", ktype=int)),
            end_h=int(eccodes.codes_get(gid, "endStep", ktype=int)),
            step_units=str(eccodes.codes_get(gid, "stepUnits", ktype=str)),
            units=str(eccodes.codes_get(gid, "units")),
            step_type=str(eccodes.codes_get(gid, "stepType")),
            grid=grid,
        )
    except (eccodes.CodesInternalError, ValueError, OverflowError) as exc:
        raise DataFileError(
            f"{source}: GRIB message {number} cannot be decoded ({decoder_reason(exc, path)}); "
            "the file is corrupt — download it again."
        ) from exc
    if field.end_h < field.start_h:
        raise DataFileError(f"{source}: GRIB message {number} covers hours {field.start_h}-"
                            f"{field.end_h}, ending before it starts; the file is corrupt.")
    return field


#: What the messages of one forecast must share: what it is called → its value in a header.
_GRIB_ALIKE: dict[str, Any] = {
    "units": lambda f: f.units,
    "forecast runs": lambda f: str(np.datetime_as_string(f.reference, unit="m")),
    "grids (Nj, Ni, first and last lat/lon, scanning)": lambda f: f.grid,
    "kinds of step (accumulation, average)": lambda f: f.step_type,
}


def _check_grib_alike(label: str, fields: Sequence[_GribField], name: str, parts: str) -> None:
    """Messages of one forecast share units, run, grid and kind; their steps are hours."""
    bad_units = {f.step_units for f in fields} - {"h", "1"}
    if bad_units:
        raise InputError(f"{label}: step units {sorted(bad_units)}; floodwarn reads hourly "
                         "step ranges.")
    for what, key in _GRIB_ALIKE.items():
        refuse_mixed(label, [(key(f), f.path.name if parts == "files" else f"message {f.number}")
                             for f in fields], what=what, parts=f"{name} {parts}",
                     fix="give one run, on one grid, of one product.")


def _grib_decode(eccodes: Any, fields: Sequence[_GribField], needed: Sequence[int]
                 ) -> tuple[dict[int, np.ndarray], np.ndarray, np.ndarray]:
    """Pass 2: the values of the ``needed`` messages (by index into ``fields``), each found
    again at its byte offset, and the grid's latitudes and longitudes (from the first)."""
    by_file: dict[Path, list[int]] = {}
    for i in needed:
        by_file.setdefault(fields[i].path, []).append(i)
    values: dict[int, np.ndarray] = {}
    coords: tuple[np.ndarray, np.ndarray] | None = None
    for path, indices in by_file.items():
        try:
            with open(path, "rb") as fh:
                for i in indices:
                    fh.seek(fields[i].offset)
                    values[i], found = _grib_values(eccodes, fh, fields[i], coords is None)
                    coords = coords or found
        except FloodwarnError:
            raise
        except OSError as exc:
            raise DataFileError(f"{path.name}: cannot be opened "
                                f"({decoder_reason(exc, path)}).") from exc
    assert coords is not None
    return values, coords[0].astype(np.float64), coords[1].astype(np.float64)


def _grib_values(eccodes: Any, fh: Any, field: _GribField, with_coords: bool
                 ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Decode one message (its header already checked): values (Nj × Ni, missing as NaN)
    and, if asked, the latitudes of its rows and longitudes of its columns."""
    source, path = field.path.name, field.path
    try:
        gid = eccodes.codes_grib_new_from_file(fh)
        if gid is None:
            raise DataFileError(f"{source}: GRIB message {field.number} is gone; the file "
                                "changed while it was read.")
        try:
            ni, nj = int(field.grid[1]), int(field.grid[0])
            vals = eccodes.codes_get_values(gid).astype(np.float64).reshape(nj, ni)
            if eccodes.codes_get(gid, "bitmapPresent"):
                missing = eccodes.codes_get(gid, "missingValue")
                vals[vals == missing] = np.nan
            coords = None
            if with_coords:
                coords = (eccodes.codes_get_array(gid, "latitudes").reshape(nj, ni)[:, 0],
                          eccodes.codes_get_array(gid, "longitudes").reshape(nj, ni)[0, :])
            return vals, coords
        finally:
            eccodes.codes_release(gid)
    except (eccodes.CodesInternalError, ValueError, OverflowError) as exc:
        raise DataFileError(
            f"{source}: GRIB message {field.number} cannot be decoded "
            f"({decoder_reason(exc, path)}); the file is corrupt — download it again."
        ) from exc


# -------------------------------------------------------------------------------- dispatcher
