"""Read rainfall forecasts from NetCDF (CF), GRIB1/GRIB2 and stacks of GeoTIFFs.

Readers only find values, units, times and grid as the file states them and hand them to
:func:`floodwarn.rainfall.forecast.canonical_forecast`; conversions and checks live there.
Before any data array is decoded each reader checks the size the file *declares* against a
cell budget (:data:`MAX_RAIN_CELLS`), so a small hostile file cannot make the process allocate
gigabytes; every decoder failure becomes a :class:`~floodwarn.errors.DataFileError` naming
the file (by its name only: messages reach users of the service, folders do not).

:func:`read_rainfall` is the one way in: it picks the reader by suffix from
:data:`RAIN_READERS`. The NetCDF and GRIB readers live here; the GeoTIFF stack reader
(:func:`~floodwarn.io.rainfall_geotiff.read_geotiff_stack`) and the limits every reader shares
(the cell budget, file names in messages, patterns) live in :mod:`floodwarn.io.rainfall_geotiff`,
which imports nothing from this module.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from floodwarn.errors import CRSError, DataFileError, FloodwarnError, InputError
from floodwarn.io.rain_limits import (
    CROP_BOX,
    cell_budget,
    check_declared_cells,
    decoder_reason,
    file_name,
    is_pattern,
)
from floodwarn.io.rainfall_geotiff import read_geotiff_stack
from floodwarn.rainfall.forecast import (
    Accumulation,
    RainfallForecast,
    RawRainfall,
    canonical_forecast,
)

#: Rain variables looked for, in order, when none is named.
RAIN_VARIABLES = ("precipitation", "tp", "APCP", "apcp", "pr", "precip", "rain", "rainfall",
                  "prate", "PRATE", "tp_mm")
TIME_DIMS = ("time", "valid_time", "step", "t")
MEMBER_DIMS = ("number", "member", "realization", "ensemble", "ens")
Y_DIMS = ("latitude", "lat", "y", "rlat")
X_DIMS = ("longitude", "lon", "x", "rlon")
GRIB_SHORT_NAMES = ("tp", "prate")  # total precipitation (accumulated), rate (average)


class RainReader(Protocol):
    """What every reader in :data:`RAIN_READERS` accepts."""

    def __call__(self, path: Path, *, variable: str | None = None, units: str | None = None,
                 max_cells: int | None = None) -> RawRainfall: ...


_CROP_NETCDF = (f"cdo sellonlatbox,{CROP_BOX[0]},{CROP_BOX[2]},{CROP_BOX[1]},{CROP_BOX[3]} "
                "in.nc out.nc")
_CROP_GRIB = (f"wgrib2 in.grib2 -small_grib {CROP_BOX[0]}:{CROP_BOX[2]} "
              f"{CROP_BOX[1]}:{CROP_BOX[3]} out.grib2")


def _pick(names: tuple[str, ...], available: Any) -> str | None:
    """The first of ``names`` present in ``available``."""
    for name in names:
        if name in available:
            return name
    return None


def _lon_to_180(x: np.ndarray, values: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Longitudes 0…360 → −180…180, values reordered to keep x ascending."""
    if x.max() <= 180.0:
        return x, values
    x180 = ((x + 180.0) % 360.0) - 180.0
    order = np.argsort(x180, kind="stable")
    return x180[order], np.take(values, order, axis=axis)


# ------------------------------------------------------------------------------------ NetCDF


def _netcdf_crs(ds: Any, var: Any, x_name: str, source: str) -> str:
    if x_name in ("longitude", "lon"):
        return "EPSG:4326"
    mapping = var.attrs.get("grid_mapping")
    candidates = [mapping] if mapping else []
    candidates += ["crs", "spatial_ref", "transverse_mercator", "lambert_conformal_conic"]
    for name in candidates:
        if name and name in ds.variables:
            attrs = ds[name].attrs
            for key in ("crs_wkt", "spatial_ref"):
                if key in attrs:
                    return str(attrs[key])
            if "epsg_code" in attrs:
                return str(attrs["epsg_code"])
    raise CRSError(
        f"{source}: the rain grid has projected coordinates ({x_name}) but no CRS: add a CF "
        "grid_mapping variable with a 'crs_wkt' attribute, or use latitude/longitude."
    )


def _netcdf_accumulation(name: str, attrs: dict[str, Any], has_bounds: bool) -> Accumulation | None:
    stated = attrs.get("floodwarn_accumulation")
    if stated in ("step", "since_start"):
        return stated
    methods = str(attrs.get("cell_methods", ""))
    if "since" in methods or "accumulated" in str(attrs.get("long_name", "")).lower():
        return "since_start"
    if has_bounds or "time: sum" in methods:
        return "step"
    if name == "tp" and str(attrs.get("units", "")).strip() == "m":
        return "since_start"  # ECMWF convention: tp in metres, accumulated from the start
    return None


def _netcdf_header_check(path: Path, variable: str | None, max_cells: int | None) -> None:
    """Check what a NetCDF file declares, reading its header only (no data).

    A classic file (CDF-1/CDF-2) is first parsed by scipy, in Python: netCDF-C crashes the
    process (segmentation fault) on some corrupt classic headers, and reads bytes missing past
    the end as zeros, i.e. as no rain (:func:`_netcdf3_complete`). Then netCDF4 reads the
    header: every dimension must fit the budget (xarray loads 1-D coordinates when it opens a
    file), as must the rain variable (named, or the first of :data:`RAIN_VARIABLES`).
    """
    import netCDF4

    name = file_name(path)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise DataFileError(f"{name}: cannot be opened ({decoder_reason(exc, path)}).") from exc
    if magic in (b"CDF\x01", b"CDF\x02"):
        _netcdf3_complete(path)
    try:
        with netCDF4.Dataset(path, "r") as nc:
            for dim_name, dim in nc.dimensions.items():
                check_declared_cells(name, (len(dim),), f"dimension {dim_name!r}", max_cells,
                             _CROP_NETCDF)
            rain = variable if variable is not None else _pick(RAIN_VARIABLES, nc.variables)
            if rain is not None and rain in nc.variables:
                var = nc.variables[rain]
                check_declared_cells(name, var.shape,
                                     f"variable {rain!r}: {', '.join(var.dimensions)}",
                                     max_cells, _CROP_NETCDF)
            if not nc.variables:
                raise DataFileError(f"{name}: holds no variables; it is empty or truncated — "
                                    "download it again.")
            declared = sum(int(v.size) * np.dtype(v.dtype).itemsize
                           for v in nc.variables.values()) if magic == b"CDF\x05" else 0
    except FloodwarnError:
        raise
    except (OSError, RuntimeError, ValueError, TypeError, KeyError) as exc:
        raise DataFileError(
            f"{name}: cannot be read as NetCDF ({decoder_reason(exc, path)}); the file may be "
            "truncated, corrupt or not NetCDF — download it again."
        ) from exc
    size = path.stat().st_size
    if size < declared:  # CDF-5, which scipy does not parse: at least as long as its data
        raise DataFileError(
            f"{name}: is truncated: its header declares {declared:,} bytes of data but the "
            f"file holds {size:,} bytes; download it again."
        )


def _netcdf3_complete(path: Path) -> None:
    """Refuse a corrupt or truncated classic (CDF-1/CDF-2) NetCDF file. scipy parses the header
    in Python and maps the file (no data is read): it fails where the header is inconsistent
    or a variable runs past the end of the file."""
    import struct

    from scipy.io import netcdf_file

    try:
        with netcdf_file(path, "r", mmap=True):
            pass
    except (OSError, ValueError, TypeError, IndexError, KeyError, OverflowError, MemoryError,
            struct.error) as exc:
        raise DataFileError(
            f"{file_name(path)}: is truncated or corrupt: its NetCDF header does not match the "
            f"file's {path.stat().st_size:,} bytes ({decoder_reason(exc, path)}); download it "
            "again."
        ) from exc


def read_netcdf(path: Path, *, variable: str | None = None, units: str | None = None,
                max_cells: int | None = None) -> RawRainfall:
    """Read a CF NetCDF rain forecast with xarray (lat/lon or projected, optional members).

    The header is checked first (:func:`_netcdf_header_check`: declared sizes against
    ``max_cells``, default :data:`MAX_RAIN_CELLS`); ``units`` replaces the variable's units
    attribute (which is then not needed). Any failure of the decoders (HDF5, netCDF-C, time
    decoding) is a :class:`DataFileError` naming the file.
    """
    import xarray as xr

    path = Path(path)
    source = file_name(path)
    _netcdf_header_check(path, variable, max_cells)
    try:
        ds = xr.open_dataset(path, engine="netcdf4", decode_times=True)
    except (OSError, RuntimeError, ValueError, OverflowError, TypeError, KeyError) as exc:
        raise DataFileError(
            f"{source}: cannot be read as NetCDF ({decoder_reason(exc, path)}); the file may be "
            "truncated, corrupt or not NetCDF — download it again."
        ) from exc
    with ds:
        try:
            return _netcdf_rain(ds, path, variable=variable, units=units, max_cells=max_cells)
        except FloodwarnError:
            raise
        except (OSError, RuntimeError, ValueError, OverflowError, TypeError, KeyError) as exc:
            raise DataFileError(
                f"{source}: its data cannot be decoded ({decoder_reason(exc, path)}); the file is "
                "probably truncated or corrupt — download it again."
            ) from exc


def _netcdf_rain(ds: Any, path: Path, *, variable: str | None, units: str | None,
                 max_cells: int | None) -> RawRainfall:
    source = file_name(path)
    name = variable or _pick(RAIN_VARIABLES, ds.data_vars)
    if name is None or name not in ds.data_vars:
        raise InputError(
            f"{source}: no rain variable {'named ' + repr(variable) if variable else ''}"
            f" found; variables are {sorted(map(str, ds.data_vars))}. Name it with "
            f"--variable (floodwarn looks for {list(RAIN_VARIABLES)})."
        )
    var = ds[name]
    stated_units = units if units is not None else var.attrs.get("units")
    if stated_units is None:
        raise InputError(
            f"{source}: variable {name!r} has no 'units' attribute; add one (mm, kg m-2, m, "
            "kg m-2 s-1, mm h-1) or state them (units='mm' / --units mm)."
        )
    dims = var.dims
    t_name = _pick(TIME_DIMS, dims)
    if t_name is None:
        raise InputError(
            f"{source}: variable {name!r} has dimensions {list(dims)} and no time axis "
            f"(one of {list(TIME_DIMS)}); a forecast needs one."
        )
    y_name = _pick(Y_DIMS, dims)
    x_name = _pick(X_DIMS, dims)
    if y_name is None or x_name is None:
        raise InputError(f"{source}: variable {name!r} has dimensions {list(dims)}; "
                         f"expected spatial axes among {list(Y_DIMS)} and {list(X_DIMS)}.")
    m_name = _pick(MEMBER_DIMS, dims)
    extra = set(dims) - {t_name, y_name, x_name} - ({m_name} if m_name else set())
    squeezable = [d for d in extra if var.sizes[d] == 1]
    if len(squeezable) != len(extra):
        raise InputError(f"{source}: variable {name!r} has unexpected dimensions "
                         f"{sorted(map(str, extra))}; select one level first.")
    var = var.squeeze(squeezable)
    order = ([m_name] if m_name else []) + [t_name, y_name, x_name]
    check_declared_cells(source, [var.sizes[d] for d in order], ", ".join(map(str, order)),
                         max_cells, _CROP_NETCDF)
    values = var.transpose(*order).values.astype(np.float64, copy=False)
    if not m_name:
        values = values[None]
    times = ds[t_name].values
    reference = None
    if t_name == "step":
        if "time" not in ds.coords or ds["time"].size != 1:
            raise InputError(f"{source}: forecast steps without a single reference time.")
        reference = np.datetime64(ds["time"].values.reshape(-1)[0], "s")
        times = reference + times
    elif "forecast_reference_time" in ds.coords and ds["forecast_reference_time"].size == 1:
        reference = np.datetime64(ds["forecast_reference_time"].values.reshape(-1)[0], "s")
    bounds_name = ds[t_name].attrs.get("bounds")
    step_start = None
    if bounds_name and bounds_name in ds.variables:
        step_start = ds[bounds_name].values[:, 0]
    x = ds[x_name].values.astype(np.float64)
    y = ds[y_name].values.astype(np.float64)
    crs = _netcdf_crs(ds, var, x_name, source)
    if crs == "EPSG:4326":
        x, values = _lon_to_180(x, values, axis=3)
    accumulation = _netcdf_accumulation(name, dict(var.attrs), step_start is not None)
    if str(stated_units).replace("**", "").strip() in ("kg m-2 s-1",):
        accumulation = "rate"
    return RawRainfall(
        values=values,
        step_end=np.asarray(times),
        x=x,
        y=y,
        crs=crs,
        units=str(stated_units),
        variable=name,
        source=str(path),
        accumulation=accumulation,
        step_start=step_start,
        reference_time=reference,
        members=ds[m_name].values if m_name else None,
        attrs={**dict(ds.attrs), **dict(var.attrs)},
    )


# -------------------------------------------------------------------------------------- GRIB


def read_grib(path: Path, *, variable: str | None = None, units: str | None = None,
              max_cells: int | None = None) -> RawRainfall:
    """Read GRIB1/GRIB2 precipitation messages with ecCodes, chaining their step ranges.

    Each message covers an interval [startStep, endStep] after its reference time (GFS mixes
    0-3 h and 0-6 h totals; ECMWF accumulates from 0). Messages are chained into depth
    accumulated since the earliest interval start: a message starting where a known total ends
    extends it. cfgrib cannot represent such mixed step ranges in one array, so ecCodes is read
    directly (the same library cfgrib wraps). Only regular lat/lon grids are accepted.

    The file is read in two passes over its messages: first their headers (shortName, grid,
    Ni × Nj, which must agree with the number of points), so that the rain messages' declared
    size — messages × Nj × Ni — is checked against ``max_cells`` (default
    :data:`MAX_RAIN_CELLS`) before any values are decoded; then their values. Every ecCodes
    failure (corrupt or truncated message, ``DecodingError`` …) is a :class:`DataFileError`
    naming the file and the message. ``units`` replaces the units the messages state.

    References
    ----------
    WMO (2023) Manual on Codes, vol. I.2, FM 92 GRIB edition 2 (product definition templates
    4.8 and 4.11: statistically processed fields over a time interval).
    """
    import eccodes

    path = Path(path)
    source = file_name(path)
    wanted = (variable,) if variable else GRIB_SHORT_NAMES
    kept: dict[str, list[tuple[int, Any]]] = {}  # shortName → (message number, handle)
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
                short = _grib_header(eccodes, gid, source, n_messages, wanted)
                if short is None:
                    eccodes.codes_release(gid)
                else:
                    kept.setdefault(short, []).append((n_messages, gid))
        if n_messages == 0:
            raise DataFileError(f"{source}: holds no GRIB message; it is empty or not GRIB "
                                "(check the download).")
        name = next((n for n in wanted if n in kept), None)
        if name is None:
            raise InputError(
                f"{source}: no precipitation message ({'/'.join(wanted)}) among its "
                f"{n_messages} GRIB messages; name the shortName with --variable."
            )
        chosen = kept[name]
        grids = {(eccodes.codes_get(g, "Nj"), eccodes.codes_get(g, "Ni")) for _, g in chosen}
        if len(grids) != 1:
            raise InputError(f"{source}: its {name} messages are on {len(grids)} different "
                             f"grids (Nj × Ni: {sorted(grids)}); give one grid per file.")
        nj, ni = grids.pop()
        check_declared_cells(source, (len(chosen), nj, ni), f"{name} messages × Nj × Ni", max_cells,
                     _CROP_GRIB)
        messages = [_grib_message(eccodes, gid, source, number, path)
                    for number, gid in chosen]
    except FloodwarnError:
        raise
    except OSError as exc:
        raise DataFileError(f"{source}: cannot be opened ({decoder_reason(exc, path)}).") from exc
    finally:
        for handles in kept.values():
            for _, gid in handles:
                eccodes.codes_release(gid)
    raw = _chain_grib_messages(messages, name, str(path))
    return raw if units is None else replace(raw, units=units)


def _grib_header(eccodes: Any, gid: Any, source: str, number: int,
                 wanted: tuple[str, ...]) -> str | None:
    """The shortName of a wanted message whose header is sound, else None (not wanted)."""
    try:
        short = str(eccodes.codes_get(gid, "shortName"))
        if short not in wanted:
            return None
        grid_type = eccodes.codes_get(gid, "gridType")
        if grid_type != "regular_ll":
            eccodes.codes_release(gid)
            raise InputError(
                f"{source}: {short} (message {number}) is on a {grid_type} grid; floodwarn "
                "reads regular lat/lon GRIB grids (regrid with cdo or wgrib2 first)."
            )
        ni = int(eccodes.codes_get(gid, "Ni"))
        nj = int(eccodes.codes_get(gid, "Nj"))
        points = int(eccodes.codes_get(gid, "numberOfDataPoints"))
        coded = max(int(eccodes.codes_get(gid, "numberOfValues")),
                    int(eccodes.codes_get(gid, "numberOfCodedValues")))
    except eccodes.CodesInternalError as exc:
        eccodes.codes_release(gid)
        raise DataFileError(f"{source}: GRIB message {number} has a corrupt header "
                            f"({exc}); download the file again.") from exc
    if ni <= 0 or nj <= 0 or ni * nj != points or coded > points:
        eccodes.codes_release(gid)
        raise DataFileError(
            f"{source}: GRIB message {number} has a corrupt header (grid Ni {ni} × Nj {nj}, "
            f"{points} points, {coded} coded values); download the file again.")
    return short


def _grib_message(eccodes: Any, gid: Any, source: str, number: int,
                  path: Path) -> dict[str, Any]:
    """Decode one message (its header already checked) into the fields chaining needs."""
    try:
        ni = eccodes.codes_get(gid, "Ni")
        nj = eccodes.codes_get(gid, "Nj")
        vals = eccodes.codes_get_values(gid).astype(np.float64).reshape(nj, ni)
        if eccodes.codes_get(gid, "bitmapPresent"):
            missing = eccodes.codes_get(gid, "missingValue")
            vals[vals == missing] = np.nan
        lats = eccodes.codes_get_array(gid, "latitudes").reshape(nj, ni)[:, 0]
        lons = eccodes.codes_get_array(gid, "longitudes").reshape(nj, ni)[0, :]
        try:
            member = int(eccodes.codes_get(gid, "number"))
        except eccodes.KeyValueNotFoundError:
            member = 0
        date = str(eccodes.codes_get(gid, "dataDate"))
        hhmm = int(eccodes.codes_get(gid, "dataTime"))
        return {
            "member": member,
            "reference": np.datetime64(
                f"{date[:4]}-{date[4:6]}-{date[6:8]}T{hhmm // 100:02d}:{hhmm % 100:02d}", "s"),
            "start_h": int(eccodes.codes_get(gid, "startStep", ktype=int)),
            "end_h": int(eccodes.codes_get(gid, "endStep", ktype=int)),
            "step_units": eccodes.codes_get(gid, "stepUnits", ktype=str),
            "units": eccodes.codes_get(gid, "units"),
            "step_type": eccodes.codes_get(gid, "stepType"),
            "values": vals, "lats": lats, "lons": lons,
        }
    except (eccodes.CodesInternalError, ValueError, OverflowError) as exc:
        raise DataFileError(
            f"{source}: GRIB message {number} cannot be decoded ({decoder_reason(exc, path)}); the "
            "file is corrupt — download it again."
        ) from exc


def _chain_grib_messages(messages: list[dict[str, Any]], name: str, source: str) -> RawRainfall:
    where = file_name(source)
    refs = {m["reference"] for m in messages}
    if len(refs) != 1:
        raise InputError(f"{where}: messages from {len(refs)} forecast runs ({sorted(refs)}); "
                         "give one run per file.")
    reference = refs.pop()
    units = {m["units"] for m in messages}
    if len(units) != 1:
        raise InputError(f"{where}: {name} messages have mixed units {sorted(units)}.")
    bad_units = {m["step_units"] for m in messages} - {"h", "1"}
    if bad_units:
        raise InputError(f"{where}: step units {sorted(bad_units)}; floodwarn reads hourly "
                         "step ranges.")
    is_rate = messages[0]["step_type"] == "avg"
    members = sorted({m["member"] for m in messages})
    first = messages[0]
    cumulative_by_member = []
    ends_by_member = []
    for member in members:
        own = sorted((m for m in messages if m["member"] == member),
                     key=lambda m: (m["end_h"], m["start_h"]))
        origin = min(m["start_h"] for m in own)
        totals: dict[int, np.ndarray] = {origin: np.zeros_like(first["values"])}
        for m in own:
            if m["start_h"] not in totals:
                raise InputError(
                    f"{where}: member {member}: {name} over hours {m['start_h']}-{m['end_h']} "
                    f"does not continue any earlier interval (known ends {sorted(totals)}); "
                    "the file is missing a message."
                )
            depth = m["values"] * (3600.0 * (m["end_h"] - m["start_h"]) if is_rate else 1.0)
            totals.setdefault(m["end_h"], totals[m["start_h"]] + depth)
        ends = sorted(h for h in totals if h != origin)
        ends_by_member.append((origin, ends))
        cumulative_by_member.append(np.stack([totals[h] for h in ends]))
    if len({(o, tuple(e)) for o, e in ends_by_member}) != 1:
        raise InputError(f"{where}: ensemble members cover different step ranges.")
    origin, ends = ends_by_member[0]
    values = np.stack(cumulative_by_member)
    hours = np.array(ends, dtype="timedelta64[h]")
    step_end = reference + hours
    step_start = np.concatenate([[reference + np.timedelta64(origin, "h")], step_end[:-1]])
    x, values = _lon_to_180(first["lons"].astype(np.float64), values, axis=3)
    grib_units = "kg m-2" if is_rate else str(first["units"])
    return RawRainfall(
        values=values,
        step_end=step_end.astype("datetime64[s]"),
        step_start=step_start.astype("datetime64[s]"),
        x=x,
        y=first["lats"].astype(np.float64),
        crs="EPSG:4326",
        units=grib_units,
        variable=name,
        source=source,
        accumulation="since_start",
        reference_time=reference,
        members=np.array(members),
        attrs={"grib_step_type": first["step_type"]},
    )


# -------------------------------------------------------------------------------- dispatcher

#: Rain file suffix (lower case) → its reader: the one table :func:`read_rainfall` dispatches
#: on, and what callers (upload, inbox, CLI) should accept.
RAIN_READERS: dict[str, RainReader] = {
    ".nc": read_netcdf,
    ".nc4": read_netcdf,
    ".netcdf": read_netcdf,
    ".grib": read_grib,
    ".grib1": read_grib,
    ".grib2": read_grib,
    ".grb": read_grib,
    ".grb2": read_grib,
    ".tif": read_geotiff_stack,  # one GeoTIFF is a stack of one step
    ".tiff": read_geotiff_stack,
}
#: The suffixes of the rain files :func:`read_rainfall` reads (a folder or a pattern of
#: GeoTIFFs is read too).
RAIN_FILE_SUFFIXES: tuple[str, ...] = tuple(RAIN_READERS)
_FORMAT_NAMES = {read_netcdf: "NetCDF", read_grib: "GRIB", read_geotiff_stack: "GeoTIFF"}


def _formats() -> str:
    by_format: dict[str, list[str]] = {}
    for suffix, reader in RAIN_READERS.items():
        by_format.setdefault(_FORMAT_NAMES[reader], []).append(suffix)
    return "; ".join(f"{fmt} ({', '.join(suffixes)})" for fmt, suffixes in by_format.items())


def _reader_for(path: str | Path) -> RainReader:
    """The reader of ``path``: a folder or a pattern is a GeoTIFF stack; a file is read by its
    suffix, whatever characters its name holds (``x[1].nc`` is that file, not a pattern)."""
    p = Path(path)
    if p.is_dir() or is_pattern(path):
        return read_geotiff_stack
    suffix = p.suffix.lower()
    if suffix not in RAIN_READERS:
        raise InputError(f"{file_name(p)}: unknown rain forecast format {suffix!r}; floodwarn "
                         f"reads {_formats()}, and folders or patterns of GeoTIFFs.")
    if not p.exists():
        raise DataFileError(f"{file_name(p)}: no such file.")
    if not p.is_file():
        raise DataFileError(f"{file_name(p)}: is not a regular file.")
    return RAIN_READERS[suffix]


def read_rainfall(
    path: str | Path,
    *,
    variable: str | None = None,
    units: str | None = None,
    accumulation: Accumulation | None = None,
    max_cells: int | None = None,
) -> RainfallForecast:
    """Read a rain forecast file, canonical: NetCDF, GRIB1/2 or GeoTIFF by its suffix
    (:data:`RAIN_FILE_SUFFIXES`), or a folder of GeoTIFFs, or a pattern of GeoTIFFs.

    A path that exists is always read as that file or folder, whatever characters its name
    holds; it is a pattern (``rain_*.tif``) only when nothing by that exact name exists.
    ``units`` replaces the file's units and confirms them: a forecast that looks like metres
    labelled mm is then read as stated (see
    :func:`~floodwarn.rainfall.forecast.check_rain_magnitude`); implausibly large rain is
    refused whatever the units. ``accumulation`` ("step", "since_start") overrides what the
    file states or what is inferred from it. ``max_cells`` caps the array size (members ×
    steps × rows × columns) a file may declare, checked before any data is read (default
    :data:`MAX_RAIN_CELLS`).
    """
    cell_budget(max_cells)
    reader = _reader_for(path)
    raw = reader(Path(path), variable=variable, units=units, max_cells=max_cells)
    if accumulation is not None:
        raw = replace(raw, accumulation=accumulation)
    return canonical_forecast(raw, units_confirmed=units is not None)


def write_rainfall_netcdf(forecast: RainfallForecast, path: str | Path) -> Path:
    """Write a canonical forecast as CF-1.10 NetCDF: ``precipitation`` (mm per step) with time
    bounds, lat/lon or projected axes, a ``member`` axis when there are several members, and
    the ``floodwarn_synthetic`` flag. :func:`read_rainfall` reads it back unchanged."""
    import xarray as xr

    from floodwarn import __version__

    path = Path(path)
    geographic = forecast.crs in ("EPSG:4326", "OGC:CRS84")
    x_name, y_name = ("lon", "lat") if geographic else ("x", "y")
    data = forecast.rain_mm
    dims: tuple[str, ...] = ("member", "time", y_name, x_name)
    if forecast.n_members == 1:
        data = data[0]
        dims = dims[1:]
    attrs = {"units": "mm", "long_name": "precipitation depth during each time step",
             "standard_name": "precipitation_amount", "cell_methods": "time: sum",
             "floodwarn_accumulation": "step"}
    if not geographic:
        attrs["grid_mapping"] = "crs"
    ds = xr.Dataset(
        {"precipitation": (dims, data, attrs),
         "time_bnds": (("time", "nv"), np.stack([forecast.step_start, forecast.step_end], 1))},
        coords={
            "time": ("time", forecast.step_end, {"bounds": "time_bnds", "standard_name": "time"}),
            x_name: (x_name, forecast.x, {"units": "degrees_east" if geographic else "m",
                                          "standard_name": "longitude" if geographic
                                          else "projection_x_coordinate"}),
            y_name: (y_name, forecast.y, {"units": "degrees_north" if geographic else "m",
                                          "standard_name": "latitude" if geographic
                                          else "projection_y_coordinate"}),
        },
        attrs={
            "Conventions": "CF-1.10",
            "title": str(forecast.metadata.get("description") or "rainfall forecast"),
            "source": str(forecast.metadata.get("source", "")),
            "history": f"written by floodwarn {__version__}",
            "floodwarn_synthetic": int(bool(forecast.metadata.get("synthetic", False))),
        },
    )
    if forecast.n_members > 1:
        ds = ds.assign_coords(member=("member", forecast.members))
    if not geographic:
        ds["crs"] = xr.DataArray(0, attrs={"crs_wkt": forecast.crs})
    encoding: dict[str, Any] = {"precipitation": {"zlib": True, "complevel": 4, "dtype": "float32"},
                "time": {"units": "hours since 1970-01-01 00:00:00", "calendar": "standard",
                         "dtype": "float64"},
                "time_bnds": {"units": "hours since 1970-01-01 00:00:00",
                              "calendar": "standard", "dtype": "float64"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    ds.to_netcdf(tmp, encoding=encoding, engine="netcdf4")
    tmp.replace(path)
    return path
