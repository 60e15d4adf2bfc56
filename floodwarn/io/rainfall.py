"""Read rainfall forecasts from NetCDF (CF), GRIB1/GRIB2 and stacks of GeoTIFFs.

Readers only find values, units, times and grid as the file states them and hand them to
:func:`floodwarn.rainfall.forecast.canonical_forecast`; conversions and checks live there.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from floodwarn.errors import CRSError, DataFileError, InputError
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


def read_netcdf(path: Path, *, variable: str | None = None) -> RawRainfall:
    """Read a CF NetCDF rain forecast with xarray (lat/lon or projected, optional members)."""
    import xarray as xr

    source = str(path)
    try:
        ds = xr.open_dataset(path, decode_times=True)
    except (OSError, ValueError) as exc:
        raise DataFileError(
            f"{source}: cannot be read as NetCDF ({exc}); the file may be truncated or not "
            "NetCDF — download it again."
        ) from exc
    with ds:
        name = variable or _pick(RAIN_VARIABLES, ds.data_vars)
        if name is None or name not in ds.data_vars:
            raise InputError(
                f"{source}: no rain variable {'named ' + repr(variable) if variable else ''}"
                f" found; variables are {sorted(map(str, ds.data_vars))}. Name it with "
                f"--variable (floodwarn looks for {list(RAIN_VARIABLES)})."
            )
        var = ds[name]
        if "units" not in var.attrs:
            raise InputError(
                f"{source}: variable {name!r} has no 'units' attribute; add one (mm, kg m-2, m, "
                "kg m-2 s-1, mm h-1)."
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
        values = var.transpose(*order).values.astype(np.float64)
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
        if str(var.attrs.get("units", "")).replace("**", "").strip() in ("kg m-2 s-1",):
            accumulation = "rate"
        return RawRainfall(
            values=values,
            step_end=np.asarray(times),
            x=x,
            y=y,
            crs=crs,
            units=str(var.attrs["units"]),
            variable=name,
            source=source,
            accumulation=accumulation,
            step_start=step_start,
            reference_time=reference,
            members=ds[m_name].values if m_name else None,
            attrs={**dict(ds.attrs), **dict(var.attrs)},
        )


# -------------------------------------------------------------------------------------- GRIB


def read_grib(path: Path, *, variable: str | None = None) -> RawRainfall:
    """Read GRIB1/GRIB2 precipitation messages with ecCodes, chaining their step ranges.

    Each message covers an interval [startStep, endStep] after its reference time (GFS mixes
    0-3 h and 0-6 h totals; ECMWF accumulates from 0). Messages are chained into depth
    accumulated since the earliest interval start: a message starting where a known total ends
    extends it. cfgrib cannot represent such mixed step ranges in one array, so ecCodes is read
    directly (the same library cfgrib wraps). Only regular lat/lon grids are accepted.

    References
    ----------
    WMO (2023) Manual on Codes, vol. I.2, FM 92 GRIB edition 2 (product definition templates
    4.8 and 4.11: statistically processed fields over a time interval).
    """
    import eccodes

    source = str(path)
    wanted = (variable,) if variable else GRIB_SHORT_NAMES
    found: dict[str, list[dict[str, Any]]] = {}
    try:
        with open(path, "rb") as fh:
            while True:
                try:
                    gid = eccodes.codes_grib_new_from_file(fh)
                except eccodes.CodesInternalError as exc:
                    raise DataFileError(
                        f"{source}: GRIB message {sum(map(len, found.values())) + 1} is corrupt "
                        f"or truncated ({exc}); download the file again."
                    ) from exc
                if gid is None:
                    break
                try:
                    short = eccodes.codes_get(gid, "shortName")
                    if short not in wanted:
                        continue
                    grid_type = eccodes.codes_get(gid, "gridType")
                    if grid_type != "regular_ll":
                        raise InputError(
                            f"{source}: {short} is on a {grid_type} grid; floodwarn reads "
                            "regular lat/lon GRIB grids (regrid with cdo or wgrib2 first)."
                        )
                    ni = eccodes.codes_get(gid, "Ni")
                    nj = eccodes.codes_get(gid, "Nj")
                    vals = eccodes.codes_get_values(gid).astype(np.float64).reshape(nj, ni)
                    if eccodes.codes_get(gid, "bitmapPresent"):
                        missing = eccodes.codes_get(gid, "missingValue")
                        vals[vals == missing] = np.nan
                    lats = eccodes.codes_get_array(gid, "latitudes").reshape(nj, ni)[:, 0]
                    lons = eccodes.codes_get_array(gid, "longitudes").reshape(nj, ni)[0, :]
                    try:
                        number = int(eccodes.codes_get(gid, "number"))
                    except eccodes.KeyValueNotFoundError:
                        number = 0
                    date = eccodes.codes_get(gid, "dataDate")
                    hhmm = eccodes.codes_get(gid, "dataTime")
                    found.setdefault(short, []).append({
                        "member": number,
                        "reference": np.datetime64(
                            f"{str(date)[:4]}-{str(date)[4:6]}-{str(date)[6:8]}T"
                            f"{hhmm // 100:02d}:{hhmm % 100:02d}", "s"),
                        "start_h": int(eccodes.codes_get(gid, "startStep", ktype=int)),
                        "end_h": int(eccodes.codes_get(gid, "endStep", ktype=int)),
                        "step_units": eccodes.codes_get(gid, "stepUnits", ktype=str),
                        "units": eccodes.codes_get(gid, "units"),
                        "step_type": eccodes.codes_get(gid, "stepType"),
                        "values": vals, "lats": lats, "lons": lons,
                    })
                finally:
                    eccodes.codes_release(gid)
    except FileNotFoundError as exc:
        raise DataFileError(f"{source}: file not found.") from exc
    name = next((n for n in wanted if n in found), None)
    if name is None:
        raise InputError(
            f"{source}: no precipitation message ({'/'.join(wanted)}) in this GRIB file; name "
            "the shortName with --variable."
        )
    return _chain_grib_messages(found[name], name, source)


def _chain_grib_messages(messages: list[dict[str, Any]], name: str, source: str) -> RawRainfall:
    refs = {m["reference"] for m in messages}
    if len(refs) != 1:
        raise InputError(f"{source}: messages from {len(refs)} forecast runs ({sorted(refs)}); "
                         "give one run per file.")
    reference = refs.pop()
    units = {m["units"] for m in messages}
    if len(units) != 1:
        raise InputError(f"{source}: {name} messages have mixed units {sorted(units)}.")
    bad_units = {m["step_units"] for m in messages} - {"h", "1"}
    if bad_units:
        raise InputError(f"{source}: step units {sorted(bad_units)}; floodwarn reads hourly "
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
                    f"{source}: member {member}: {name} over hours {m['start_h']}-{m['end_h']} "
                    f"does not continue any earlier interval (known ends {sorted(totals)}); "
                    "the file is missing a message."
                )
            depth = m["values"] * (3600.0 * (m["end_h"] - m["start_h"]) if is_rate else 1.0)
            totals.setdefault(m["end_h"], totals[m["start_h"]] + depth)
        ends = sorted(h for h in totals if h != origin)
        ends_by_member.append((origin, ends))
        cumulative_by_member.append(np.stack([totals[h] for h in ends]))
    if len({(o, tuple(e)) for o, e in ends_by_member}) != 1:
        raise InputError(f"{source}: ensemble members cover different step ranges.")
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


# ------------------------------------------------------------------------------ GeoTIFF stack

_TIME_IN_NAME = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})[T_-]?(\d{2})(?::?(\d{2}))?")


def _time_from(tags: dict[str, str], name: str, source: str) -> tuple[np.datetime64, Any]:
    start = tags.get("step_start")
    for key in ("valid_time", "step_end", "TIFFTAG_DATETIME"):
        if key in tags:
            text = tags[key].replace(" ", "T").replace(":", "-", 2) if key == "TIFFTAG_DATETIME" \
                else tags[key]
            try:
                return np.datetime64(text.rstrip("Z"), "s"), start
            except ValueError as exc:
                raise InputError(f"{source}: tag {key}={tags[key]!r} is not an ISO time.") from exc
    match = _TIME_IN_NAME.search(name)
    if match is None:
        raise InputError(
            f"{source}: no time in the tags (valid_time) or in the file name {name!r}; name "
            "files like rain_20200531T0600.tif (end of the step, UTC)."
        )
    y, mo, d, h, mi = match.groups()
    return np.datetime64(f"{y}-{mo}-{d}T{h}:{mi or '00'}", "s"), start


def read_geotiff_stack(path: Path, *, units: str | None = None) -> RawRainfall:
    """Read one GeoTIFF per time step (a folder or a glob); times from tags or file names.

    Each file holds the rain of one step (bands = ensemble members). Its time is the end of the
    step, from the tag ``valid_time`` (or ``step_end``/``TIFFTAG_DATETIME``) or from the file
    name (``…20200531T0600…``); an optional ``step_start`` tag gives the start. Units come from
    the ``units`` tag, or ``units`` when the files have none.
    """
    import rasterio

    source = str(path)
    files = (sorted(Path(path).glob("*.tif")) + sorted(Path(path).glob("*.tiff"))
             if Path(path).is_dir() else sorted(Path(p) for p in glob.glob(str(path))))
    if not files:
        raise DataFileError(f"{source}: no GeoTIFF files found.")
    stack, ends, starts, file_units = [], [], [], set()
    grid = None
    for f in files:
        try:
            with rasterio.open(f) as ds:
                tags = ds.tags()
                for b in range(1, ds.count + 1):
                    tags = {**ds.tags(b), **tags}
                arr = ds.read().astype(np.float64)
                if ds.nodata is not None:
                    arr[arr == ds.nodata] = np.nan
                this_grid = (ds.transform, ds.crs.to_wkt() if ds.crs else None, ds.shape)
        except rasterio.errors.RasterioIOError as exc:
            raise DataFileError(f"{f}: cannot be read as GeoTIFF ({exc}); it may be truncated.") \
                from exc
        if this_grid[1] is None:
            raise CRSError(f"{f}: the GeoTIFF has no CRS; set one (gdal_edit.py -a_srs).")
        if grid is None:
            grid = this_grid
        elif grid != this_grid:
            raise InputError(f"{f}: its grid differs from {files[0].name}'s; every step of a "
                             "stack must share one grid.")
        end, start = _time_from(tags, f.name, str(f))
        ends.append(end)
        starts.append(start)
        file_units.add(tags.get("units", units))
        stack.append(arr)
    if None in file_units:
        raise InputError(f"{source}: the GeoTIFFs have no 'units' tag; tag them or pass --units "
                         "(mm for depth per step).")
    if len(file_units) != 1:
        raise InputError(f"{source}: files have different units {sorted(map(str, file_units))}.")
    assert grid is not None
    transform, crs, (nrow, ncol) = grid
    if transform.b != 0 or transform.d != 0:
        raise InputError(f"{source}: rotated GeoTIFF grids are not supported.")
    x = transform.c + transform.a * (np.arange(ncol) + 0.5)
    y = transform.f + transform.e * (np.arange(nrow) + 0.5)
    values = np.stack(stack, axis=1)  # (member, time, y, x)
    step_start = None
    if all(s is not None for s in starts):
        step_start = np.array([np.datetime64(str(s).rstrip("Z"), "s") for s in starts])
    order = np.argsort(np.array(ends))
    return RawRainfall(
        values=values[:, order],
        step_end=np.array(ends)[order],
        step_start=None if step_start is None else step_start[order],
        x=x,
        y=y,
        crs=str(crs),
        units=str(file_units.pop()),
        variable="band 1",
        source=source,
        accumulation="step",
    )


# -------------------------------------------------------------------------------- dispatcher

READERS: dict[str, Callable[..., RawRainfall]] = {
    ".nc": read_netcdf,
    ".nc4": read_netcdf,
    ".netcdf": read_netcdf,
    ".grib": read_grib,
    ".grib2": read_grib,
    ".grb": read_grib,
    ".grb2": read_grib,
    ".grib1": read_grib,
}


def read_rainfall(
    path: str | Path,
    *,
    variable: str | None = None,
    units: str | None = None,
    accumulation: Accumulation | None = None,
) -> RainfallForecast:
    """Read a rain forecast file (NetCDF, GRIB1/2, a folder or glob of GeoTIFFs), canonical.

    ``units`` overrides the file's units; ``accumulation`` ("step", "since_start") overrides
    what the file states or what is inferred from it.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if p.is_dir() or suffix in (".tif", ".tiff") or any(ch in str(path) for ch in "*?["):
        raw = read_geotiff_stack(p, units=units)
    elif suffix in READERS:
        if not p.exists():
            raise DataFileError(f"{p}: file not found.")
        raw = READERS[suffix](p, variable=variable)
    else:
        raise InputError(
            f"{p}: unknown rain forecast format {suffix!r}; floodwarn reads NetCDF "
            f"({', '.join(k for k, v in READERS.items() if v is read_netcdf)}), GRIB "
            f"({', '.join(k for k, v in READERS.items() if v is read_grib)}) and GeoTIFF stacks."
        )
    if units is not None:
        raw = replace(raw, units=units)
    if accumulation is not None:
        raw = replace(raw, accumulation=accumulation)
    return canonical_forecast(raw)


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
