"""Read rainfall forecasts from NetCDF (CF, and WRF ``wrfout``), GRIB1/GRIB2 and GeoTIFFs.

Readers only find values, units, times and grid as the files state them and hand them to
:func:`floodwarn.rainfall.forecast.canonical_forecast`; conversions and checks live there.
Before any data array is decoded each reader checks the size the files *declare* against a
cell budget (:data:`MAX_RAIN_CELLS`), so a small hostile file cannot make the process allocate
gigabytes; every decoder failure becomes a :class:`~floodwarn.errors.DataFileError` naming
the file (by its name only: messages reach users of the service, folders do not).

:func:`read_rainfall` is the one way in. A forecast is one file, a folder, a glob pattern or a
list of files (:func:`~floodwarn.io.rainfall_files.rain_files`), all of one format, which
picks the reader from :data:`RAIN_SET_READERS`: GRIB messages of all files are pooled and
chained per member (:func:`read_grib_files`: ECMWF ENS in one file or one per step, GEFS one
file per member and step); NetCDF files are read one by one and assembled by member and valid
time (:func:`read_netcdf_files`); GeoTIFFs are a stack of steps. Each single file is read by
:data:`RAIN_READERS` (suffix → reader). The WRF reader is in :mod:`floodwarn.io.rainfall_wrf`,
the GeoTIFF stack reader in :mod:`floodwarn.io.rainfall_geotiff`, the limits every reader
shares in :mod:`floodwarn.io.rain_limits`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from floodwarn.errors import CRSError, DataFileError, FloodwarnError, InputError
from floodwarn.io.rain_limits import (
    CROP_BOX,
    cell_budget,
    check_declared_cells,
    decoder_reason,
    decoding,
    file_name,
)
from floodwarn.io.rainfall_files import (
    RAIN_FORMATS,
    RainFiles,
    RainSource,
    describe_rain_source,
    lon_to_180,
    rain_files,
    read_each,
)
from floodwarn.io.rainfall_geotiff import _CROP_GEOTIFF, read_geotiff_stack
from floodwarn.io.rainfall_grib import read_grib, read_grib_files
from floodwarn.io.rainfall_wrf import WRF_RAIN_COMPONENTS, is_wrfout, read_wrf
from floodwarn.logs import get_logger
from floodwarn.rainfall.forecast import (
    Accumulation,
    RainfallForecast,
    RawRainfall,
    canonical_forecast,
)

__all__ = ["RAIN_FILE_SUFFIXES", "RAIN_READERS", "RAIN_SET_READERS", "RainSource",
           "describe_rain_source", "read_grib", "read_grib_files", "read_netcdf",
           "read_netcdf_files", "read_rainfall", "write_rainfall_netcdf"]

log = get_logger(__name__)

#: Rain variables looked for, in order, when none is named.
RAIN_VARIABLES = ("precipitation", "tp", "APCP", "apcp", "pr", "precip", "rain", "rainfall",
                  "prate", "PRATE", "tp_mm")
TIME_DIMS = ("time", "valid_time", "step", "t")
MEMBER_DIMS = ("number", "member", "realization", "ensemble", "ens")
Y_DIMS = ("latitude", "lat", "y", "rlat")
X_DIMS = ("longitude", "lon", "x", "rlon")


class RainReader(Protocol):
    """What every reader of one file in :data:`RAIN_READERS` accepts."""

    def __call__(self, path: Path, *, variable: str | None = None, units: str | None = None,
                 max_cells: int | None = None) -> RawRainfall: ...


class RainSetReader(Protocol):
    """What every reader of a set of files in :data:`RAIN_SET_READERS` accepts."""

    def __call__(self, files: RainFiles, *, variable: str | None = None,
                 units: str | None = None, max_cells: int | None = None) -> RawRainfall: ...


_CROP_NETCDF = (f"cdo sellonlatbox,{CROP_BOX[0]},{CROP_BOX[2]},{CROP_BOX[1]},{CROP_BOX[3]} "
                "in.nc out.nc")


def _pick(names: tuple[str, ...], available: Any) -> str | None:
    """The first of ``names`` present in ``available``."""
    for name in names:
        if name in available:
            return name
    return None


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


@dataclass(frozen=True)
class _NetcdfHeader:
    """What a NetCDF header declares: the rain variable's cells, and whether it is a wrfout."""

    rain_cells: int
    wrf: bool


def _netcdf_header_check(path: Path, variable: str | None,
                         max_cells: int | None) -> _NetcdfHeader:
    """Check what a NetCDF file declares, reading its header only (no data).

    A classic file (CDF-1/CDF-2) is first parsed by scipy, in Python: netCDF-C crashes the
    process (segmentation fault) on some corrupt classic headers, and reads bytes missing past
    the end as zeros, i.e. as no rain (:func:`_netcdf3_complete`). Then netCDF4 reads the
    header: every dimension must fit the budget (xarray loads 1-D coordinates when it opens a
    file), as must the rain variable (named, or the first of :data:`RAIN_VARIABLES`, or a
    wrfout's rain, see :func:`~floodwarn.io.rainfall_wrf.is_wrfout`).
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
            wrf = is_wrfout(nc.variables) and variable in (None, *WRF_RAIN_COMPONENTS)
            wrf_rain = next(v for v in WRF_RAIN_COMPONENTS if v in nc.variables) if wrf else None
            rain = variable if variable is not None else (
                wrf_rain or _pick(RAIN_VARIABLES, nc.variables))
            rain_cells = 0
            if rain is not None and rain in nc.variables:
                var = nc.variables[rain]
                check_declared_cells(name, var.shape,
                                     f"variable {rain!r}: {', '.join(var.dimensions)}",
                                     max_cells, _CROP_NETCDF)
                rain_cells = math.prod(int(n) for n in var.shape)
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
    return _NetcdfHeader(rain_cells=rain_cells, wrf=wrf)


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
    """Read a CF NetCDF rain forecast with xarray (lat/lon or projected, optional members), or
    a WRF ``wrfout`` (:func:`~floodwarn.io.rainfall_wrf.read_wrf`, when the file holds
    RAINNC/RAINC with XLAT, XLONG and Times).

    The header is checked first (:func:`_netcdf_header_check`: declared sizes against
    ``max_cells``, default :data:`MAX_RAIN_CELLS`); ``units`` replaces the variable's units
    attribute (which is then not needed). Any failure of the decoders (HDF5, netCDF-C, time
    decoding) is a :class:`DataFileError` naming the file.
    """
    import xarray as xr

    path = Path(path)
    source = file_name(path)
    if _netcdf_header_check(path, variable, max_cells).wrf:
        return read_wrf(path, variable=variable, units=units, max_cells=max_cells)
    try:
        ds = xr.open_dataset(path, engine="netcdf4", decode_times=True)
    except (OSError, RuntimeError, ValueError, OverflowError, TypeError, KeyError) as exc:
        raise DataFileError(
            f"{source}: cannot be read as NetCDF ({decoder_reason(exc, path)}); the file may be "
            "truncated, corrupt or not NetCDF — download it again."
        ) from exc
    with ds, decoding(path):
        return _netcdf_rain(ds, path, variable=variable, units=units, max_cells=max_cells)


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
    t_name = _pick(TIME_DIMS, var.dims)
    if t_name is None:  # one step of a forecast, its time a scalar (cfgrib: step, valid_time)
        t_name = _pick(("step", "valid_time", "time"),
                       [c for c in var.coords if var[c].ndim == 0])
        if t_name is not None:
            var = var.expand_dims(t_name)
    dims = var.dims
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
    times = var[t_name].values
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
    members = _netcdf_members(var, m_name)
    if members is not None and members.dtype.kind in "iuf" and np.any(np.diff(members) < 0):
        order_m = np.argsort(members, kind="stable")
        members, values = members[order_m], values[order_m]
    x = ds[x_name].values.astype(np.float64)
    y = ds[y_name].values.astype(np.float64)
    crs = _netcdf_crs(ds, var, x_name, source)
    if crs == "EPSG:4326":
        x, values = lon_to_180(x, values, axis=3)
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
        members=members,
        attrs={**dict(ds.attrs), **dict(var.attrs)},
    )


def _netcdf_members(var: Any, m_name: str | None) -> np.ndarray | None:
    """Member numbers: the member axis, or a scalar member coordinate (cfgrib writes
    ``number`` as a scalar for a file of one member), else None."""
    if m_name is not None:
        return np.asarray(var[m_name].values)
    scalar = _pick(MEMBER_DIMS, [c for c in var.coords if var[c].ndim == 0])
    return None if scalar is None else np.asarray(var[scalar].values).reshape(1)


# ------------------------------------------------------------------------- sets of files


def read_netcdf_files(files: RainFiles, *, variable: str | None = None,
                      units: str | None = None, max_cells: int | None = None) -> RawRainfall:
    """Read NetCDF files (CF or WRF, :func:`read_netcdf`) one by one and join them by member
    and valid time (:func:`~floodwarn.io.rainfall_files.assemble_rainfall`): cfgrib-style
    files per step or per member, wrfout files per time (members numbered by their
    ``ensemble_member`` attribute). Every header is read first, so the rain all files declare
    together is checked against ``max_cells`` before any file's data is read."""
    if len(files.files) == 1:
        return read_netcdf(files.files[0], variable=variable, units=units, max_cells=max_cells)
    return read_each(
        files, lambda f: read_netcdf(f, variable=variable, units=units, max_cells=max_cells),
        lambda f: _netcdf_header_check(f, variable, max_cells).rain_cells,
        max_cells=max_cells, crop=_CROP_NETCDF)


def _geotiff_cells(path: Path) -> int:
    """Bands × rows × columns a GeoTIFF declares; 0 if it cannot be opened (its reader then
    says why)."""
    import rasterio
    import rasterio.errors

    try:
        with rasterio.open(path) as ds:
            return int(ds.count) * int(ds.height) * int(ds.width)
    except (rasterio.errors.RasterioError, OSError, ValueError):
        return 0


def read_geotiff_files(files: RainFiles, *, variable: str | None = None,
                       units: str | None = None, max_cells: int | None = None) -> RawRainfall:
    """A folder, pattern or file of GeoTIFFs is a stack (:func:`read_geotiff_stack`); a list
    of GeoTIFFs is read file by file, after checking all their declared cells against
    ``max_cells``, and joined by member (band) and valid time."""
    if files.kind != "list":
        return read_geotiff_stack(files.source, variable=variable, units=units,
                                  max_cells=max_cells)
    return read_each(
        files, lambda f: read_geotiff_stack(f, variable=variable, units=units,
                                            max_cells=max_cells),
        _geotiff_cells, max_cells=max_cells, crop=_CROP_GEOTIFF)


#: Format → reader of one file of it.
FORMAT_READERS: dict[str, RainReader] = {
    "NetCDF": read_netcdf,
    "GRIB": read_grib,
    "GeoTIFF": read_geotiff_stack,  # one GeoTIFF is a stack of one step
}
#: Rain file suffix (lower case) → its reader, in the order of
#: :data:`~floodwarn.io.rainfall_files.RAIN_FORMATS`: what callers (upload, inbox, CLI)
#: should accept as one file.
RAIN_READERS: dict[str, RainReader] = {suffix: FORMAT_READERS[fmt]
                                       for suffix, fmt in RAIN_FORMATS.items()}
#: The suffixes of the rain files :func:`read_rainfall` reads (files without a suffix are
#: recognised by their first bytes; folders, patterns and lists are read too).
RAIN_FILE_SUFFIXES: tuple[str, ...] = tuple(RAIN_READERS)
#: Format → reader of a forecast given as files of that format (one or several): the table
#: :func:`read_rainfall` dispatches on.
RAIN_SET_READERS: dict[str, RainSetReader] = {
    "NetCDF": read_netcdf_files,
    "GRIB": read_grib_files,
    "GeoTIFF": read_geotiff_files,
}


def _reader_for(files: RainFiles) -> RainSetReader:
    """The reader of a forecast's files, by their one format."""
    return RAIN_SET_READERS[files.format]


def read_rainfall(
    path: RainSource,
    *,
    variable: str | None = None,
    units: str | None = None,
    accumulation: Accumulation | None = None,
    max_cells: int | None = None,
) -> RainfallForecast:
    """Read a rain forecast, canonical: one file, a folder, a glob pattern, or a list of files.

    ``path`` is a path (``str`` or :class:`~pathlib.Path`) or a list/tuple of paths of files.
    A file is NetCDF (CF, or WRF ``wrfout``), GRIB1/2 or GeoTIFF by its suffix
    (:data:`RAIN_FILE_SUFFIXES`), or, without one of those suffixes, by its first bytes
    (``wrfout_d01_2020-05-30_12:00:00``, ``gec00.t00z.pgrb2s.0p25.f003``). A folder, pattern
    or list is a set of files of one format (:func:`~floodwarn.io.rainfall_files.rain_files`;
    mixed formats are refused): GeoTIFFs are a stack of steps, GRIB messages of all files are
    pooled and chained per member as one file's would be, NetCDF files are joined by member
    and valid time. Every member must hold every step exactly once: the error names each
    missing (member, step) and each step two files both hold. A path that exists is always
    read as that file or folder, whatever characters its name holds; it is a pattern
    (``rain_*.tif``) only when nothing by that exact name exists.

    ``units`` replaces the file's units and confirms them: a forecast that looks like metres
    labelled mm is then read as stated (see
    :func:`~floodwarn.rainfall.forecast.check_rain_magnitude`); implausibly large rain is
    refused whatever the units. ``accumulation`` ("step", "since_start") overrides what the
    file states or what is inferred from it. ``max_cells`` caps the array size (members ×
    steps × rows × columns) the files may declare together, checked before any data is read
    (default :data:`MAX_RAIN_CELLS`).
    """
    cell_budget(max_cells)
    files = rain_files(path)
    raw = _reader_for(files)(files, variable=variable, units=units, max_cells=max_cells)
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
