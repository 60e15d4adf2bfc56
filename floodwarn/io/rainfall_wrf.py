"""Read the rain of WRF-ARW ``wrfout`` NetCDF files.

WRF writes precipitation as depths in mm accumulated since the start of the simulation:
``RAINC`` (cumulus scheme), ``RAINNC`` (microphysics) and, with some schemes, ``RAINSH``
(shallow cumulus); total = their sum. With ``bucket_mm`` set, each accumulator is kept below
``BUCKET_MM`` (a global attribute) and an integer counter ``I_RAINC`` / ``I_RAINNC`` counts how
many times it was emptied: the true total is ``RAINNC + I_RAINNC × BUCKET_MM``. Times are a
character array ``Times(Time, DateStrLen)`` (``2020-05-30_12:00:00``, UTC); the run's start is
the global attribute ``SIMULATION_START_DATE`` (kept across restarts).

The grid is given as curvilinear latitude/longitude (``XLAT``, ``XLONG``) but is regular in its
map projection, which the global attributes describe (``MAP_PROJ``, ``TRUELAT1/2``,
``STAND_LON``, ``MOAD_CEN_LAT``, ``DX``, ``DY``) on WRF's sphere of radius 6,370 km. The reader
rebuilds that projection with pyproj (:data:`WRF_PROJECTIONS`), places the regular grid at the
projected first cell (x = x₀ + i·DX, y = y₀ + j·DY, ``south_north`` northwards) and then checks
that every cell's XLAT/XLONG projects onto it within :data:`GRID_TOLERANCE` of DX — a file
whose coordinates do not match its attributes is refused, never silently misplaced. This is
the approach of salem and wrf-python.

References
----------
Skamarock, W. C. et al. (2019) A Description of the Advanced Research WRF Model Version 4.
NCAR Technical Note NCAR/TN-556+STR (§1.3 map projections, Earth radius 6,370 km).
NCAR MMM (2023) WRF-ARW User's Guide, ch. 5 (``bucket_mm``, ``I_RAINNC``) and the description
of wrfout variables and global attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np

# pyproj is imported here, at import time, on purpose: ecCodes' wheels bring their own PROJ
# and SQLite, and pyproj loaded after them cannot find its database.
from pyproj import CRS, Transformer

from floodwarn.errors import InputError
from floodwarn.io.rain_limits import check_declared_cells, decoding, file_name
from floodwarn.rainfall.forecast import RawRainfall

#: Radius of the sphere WRF and WPS compute their map projections on (m).
WRF_SPHERE_RADIUS_M = 6_370_000.0
#: Accumulated rain variables summed into the total, in mm since the start of the run.
WRF_RAIN_COMPONENTS = ("RAINC", "RAINNC", "RAINSH")
#: Accumulator → its bucket counter (each tip of the bucket is ``BUCKET_MM`` mm).
WRF_BUCKETS = {"RAINC": "I_RAINC", "RAINNC": "I_RAINNC"}
#: Variables every wrfout holds besides its rain.
WRF_REQUIRED = ("XLAT", "XLONG", "Times")
#: Global attributes that may number an ensemble member (first found wins).
WRF_MEMBER_ATTRIBUTES = ("ensemble_member", "ENSEMBLE_MEMBER", "member")
#: Largest distance, as a share of the grid spacing, between a cell's projected XLAT/XLONG and
#: its place on the regular grid.
GRID_TOLERANCE = 0.01

_CROP_WRF = "ncks -d south_north,J0,J1 -d west_east,I0,I1 wrfout_d01_… out.nc"
_SPHERE = f"+a={WRF_SPHERE_RADIUS_M:.0f} +b={WRF_SPHERE_RADIUS_M:.0f} +units=m +no_defs"


def is_wrfout(variables: Collection[str]) -> bool:
    """Whether a NetCDF file's variables are those of a wrfout: RAINNC and/or RAINC, with
    XLAT, XLONG and Times."""
    names = set(variables)
    return bool(names & {"RAINC", "RAINNC"}) and set(WRF_REQUIRED) <= names


def _lambert(attrs: Mapping[str, Any]) -> str:
    lat_0 = attrs.get("MOAD_CEN_LAT", attrs.get("CEN_LAT", attrs["TRUELAT1"]))
    return (f"+proj=lcc +lat_1={float(attrs['TRUELAT1'])!r} +lat_2={float(attrs['TRUELAT2'])!r} "
            f"+lat_0={float(lat_0)!r} +lon_0={float(attrs['STAND_LON'])!r} +x_0=0 +y_0=0 "
            + _SPHERE)


def _polar(attrs: Mapping[str, Any]) -> str:
    true_lat = float(attrs["TRUELAT1"])
    return (f"+proj=stere +lat_0={90.0 if true_lat >= 0 else -90.0!r} +lat_ts={true_lat!r} "
            f"+lon_0={float(attrs['STAND_LON'])!r} +x_0=0 +y_0=0 " + _SPHERE)


def _mercator(attrs: Mapping[str, Any]) -> str:
    return (f"+proj=merc +lat_ts={float(attrs['TRUELAT1'])!r} "
            f"+lon_0={float(attrs.get('STAND_LON', attrs.get('CEN_LON', 0.0)))!r} +x_0=0 +y_0=0 "
            + _SPHERE)


def _latlon(attrs: Mapping[str, Any]) -> str:
    return f"+proj=longlat +a={WRF_SPHERE_RADIUS_M:.0f} +b={WRF_SPHERE_RADIUS_M:.0f} +no_defs"


#: WRF ``MAP_PROJ`` code → (its name, the PROJ string of its projection from the global
#: attributes). Code 6 is regular in longitude/latitude itself (a rotated pole is not: its
#: coordinates fail the grid check).
WRF_PROJECTIONS: dict[int, tuple[str, Callable[[Mapping[str, Any]], str]]] = {
    1: ("Lambert conformal conic", _lambert),
    2: ("polar stereographic", _polar),
    3: ("Mercator", _mercator),
    6: ("latitude-longitude", _latlon),
}


def wrf_grid(name: str, attrs: Mapping[str, Any], lon: np.ndarray,
             lat: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """The regular grid (x, y cell centres, CRS) of a WRF domain whose cells are at ``lon``,
    ``lat`` (south_north × west_east, degrees), from the projection its global attributes
    describe; refused when any cell lies farther than :data:`GRID_TOLERANCE` × DX from its
    place on that grid.

    References
    ----------
    Skamarock et al. (2019) NCAR/TN-556+STR, §1.3 (map projections on a 6,370-km sphere).
    """
    try:
        code = int(attrs["MAP_PROJ"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{name}: the wrfout has no valid MAP_PROJ global attribute "
                         f"({attrs.get('MAP_PROJ')!r}); floodwarn needs it to place the grid."
                         ) from exc
    if code not in WRF_PROJECTIONS:
        known = ", ".join(f"{k} ({label})" for k, (label, _) in WRF_PROJECTIONS.items())
        raise InputError(f"{name}: WRF MAP_PROJ {code} is not a projection floodwarn reads "
                         f"(it reads {known}); regrid the rain to a regular grid first.")
    label, build = WRF_PROJECTIONS[code]
    ny, nx = lon.shape
    try:
        crs = CRS.from_proj4(build(attrs))
        if code == 6:
            if nx < 2 or ny < 2:
                raise InputError(f"{name}: a WRF latitude-longitude grid of {ny} × {nx} cells "
                                 "is too small to tell its spacing (at least 2 × 2).")
            px, py = lon.astype(np.float64), lat.astype(np.float64)
            dx = float(px[0, -1] - px[0, 0]) / (nx - 1)
            dy = float(py[-1, 0] - py[0, 0]) / (ny - 1)
        else:
            dx, dy = float(attrs["DX"]), float(attrs["DY"])
            to_grid = Transformer.from_crs(crs.geodetic_crs, crs, always_xy=True)
            px, py = to_grid.transform(lon.astype(np.float64), lat.astype(np.float64))
    except KeyError as exc:
        raise InputError(f"{name}: its MAP_PROJ {code} ({label}) grid needs the global "
                         f"attribute {exc.args[0]!r}, which the file lacks; it is not a "
                         "complete wrfout (keep WRF's global attributes when post-processing)."
                         ) from exc
    x = px[0, 0] + dx * np.arange(nx)
    y = py[0, 0] + dy * np.arange(ny)
    distance = np.hypot(px - x[None, :], py - y[:, None])
    limit = GRID_TOLERANCE * min(abs(dx), abs(dy))
    worst = float(np.nanmax(distance)) if np.isfinite(distance).any() else np.inf
    if not np.isfinite(distance).all() or worst > limit or dx == 0 or dy == 0:
        j, i = np.unravel_index(int(np.nanargmax(np.where(np.isfinite(distance), distance,
                                                          np.inf))), distance.shape)
        unit = "°" if code == 6 else " m"
        raise InputError(
            f"{name}: the WRF grid could not be matched to its projection: XLAT/XLONG at "
            f"south_north {j}, west_east {i} (lat {float(lat[j, i]):.4f}, lon "
            f"{float(lon[j, i]):.4f}) lies {float(distance[j, i]):.4g}{unit} from its place on "
            f"the regular MAP_PROJ {code} ({label}) grid of DX {dx:g}{unit} × DY {dy:g}{unit} "
            f"(tolerance {GRID_TOLERANCE:.0%} of the spacing, {limit:.3g}{unit}). The "
            "coordinates or the projection attributes (TRUELAT1, TRUELAT2, STAND_LON, DX, DY) "
            "are corrupt, or the file was regridded or rotated; regrid the rain to a regular "
            "grid with its CRS (CF grid_mapping) first."
        )
    if code == 6:
        return x, y, "EPSG:4326"  # WRF's lat/lon on its sphere, read as they are (as PROJ does)
    named = {**crs.to_json_dict(), "name": f"WRF {label} (MAP_PROJ {code}, sphere of radius "
                                           f"{WRF_SPHERE_RADIUS_M / 1000:.0f} km)"}
    return x, y, CRS.from_json_dict(named).to_wkt()


def _wrf_time(text: str, what: str, name: str) -> np.datetime64:
    try:
        return np.datetime64(text.strip().replace("_", "T"), "s")
    except ValueError as exc:
        raise InputError(f"{name}: {what} {text!r} is not a WRF time (2020-05-30_12:00:00)."
                         ) from exc


def _times(nc: Any, name: str) -> np.ndarray:
    import netCDF4

    var = nc.variables["Times"]
    var.set_auto_chartostring(False)
    chars = np.asarray(var[:])
    if chars.ndim != 2 or chars.dtype.kind != "S":
        raise InputError(f"{name}: Times must be characters (Time, DateStrLen); it is "
                         f"{chars.dtype} {chars.shape}.")
    texts = np.atleast_1d(netCDF4.chartostring(chars))
    return np.array([_wrf_time(str(t), "Times entry", name) for t in texts], "datetime64[s]")


def _values(nc: Any, var_name: str) -> np.ndarray:
    data = nc.variables[var_name][:]
    return np.ma.filled(np.ma.asarray(data).astype(np.float64), np.nan)


def _first_slice(nc: Any, var_name: str, index: int) -> np.ndarray:
    var = nc.variables[var_name]
    data = var[index] if var.ndim == 3 else var[:]
    return np.ma.filled(np.ma.asarray(data).astype(np.float64), np.nan)


def _member(attrs: Mapping[str, Any], name: str) -> np.ndarray | None:
    key = next((k for k in WRF_MEMBER_ATTRIBUTES if k in attrs), None)
    if key is None:
        return None
    try:
        return np.array([int(np.asarray(attrs[key]).reshape(-1)[0])])
    except (TypeError, ValueError, IndexError) as exc:
        raise InputError(f"{name}: global attribute {key}={attrs[key]!r} is not a member "
                         "number; set it to a whole number or remove it.") from exc


def _components(nc: Any, variable: str | None, name: str) -> list[str]:
    if variable is None:
        return [v for v in WRF_RAIN_COMPONENTS if v in nc.variables]
    if variable not in WRF_RAIN_COMPONENTS or variable not in nc.variables:
        present = [v for v in WRF_RAIN_COMPONENTS if v in nc.variables]
        raise InputError(f"{name}: no WRF rain variable {variable!r}; it holds {present} "
                         "(without --variable floodwarn adds them all).")
    return [variable]


def read_wrf(path: Path, *, variable: str | None = None, units: str | None = None,
             max_cells: int | None = None) -> RawRainfall:
    """Read a wrfout file's total rain, accumulated since the start of the run (mm).

    Total = RAINC + RAINNC (+ RAINSH when present), each plus its bucket counter × BUCKET_MM
    when the global attribute ``BUCKET_MM`` is positive; ``variable`` picks one of them
    instead. Times come from ``Times``; the reference time is ``SIMULATION_START_DATE`` (else
    the file's first time), where the totals are 0. The grid is rebuilt in the map projection
    and checked (:func:`wrf_grid`). The declared Time × south_north × west_east is checked
    against ``max_cells`` before any rain is read. A global attribute ``ensemble_member``
    numbers the member (so that the files of an ensemble assemble); else there is one member.
    ``units`` replaces the variables' units (``mm`` in WRF).

    References
    ----------
    Skamarock et al. (2019) NCAR/TN-556+STR; WRF-ARW User's Guide (``bucket_mm``).
    """
    import netCDF4

    path = Path(path)
    with decoding(path, "WRF data"), netCDF4.Dataset(path, "r") as nc:
        nc.set_auto_mask(True)
        return _read_open(nc, path, variable=variable, units=units, max_cells=max_cells)


def _read_open(nc: Any, path: Path, *, variable: str | None, units: str | None,
               max_cells: int | None) -> RawRainfall:
    name = file_name(path)
    attrs = {k: nc.getncattr(k) for k in nc.ncattrs()}
    components = _components(nc, variable, name)
    shapes = {v: tuple(nc.variables[v].shape) for v in components}
    if len(set(shapes.values())) != 1 or len(next(iter(shapes.values()))) != 3:
        raise InputError(f"{name}: WRF rain variables must share one (Time, south_north, "
                         f"west_east) shape; they are {shapes}.")
    shape = shapes[components[0]]
    check_declared_cells(name, shape, "Time × south_north × west_east", max_cells, _CROP_WRF)
    bucket_mm = float(np.asarray(attrs.get("BUCKET_MM", -1.0)).reshape(-1)[0])
    counters = [WRF_BUCKETS[v] for v in components if v in WRF_BUCKETS] if bucket_mm > 0 else []
    lacking = [c for c in counters if c not in nc.variables]
    if lacking:
        raise InputError(f"{name}: BUCKET_MM is {bucket_mm:g} mm, so the accumulators are "
                         f"emptied into counters, but {lacking} are missing; without them the "
                         "totals drop at every tip. Keep the I_RAINC/I_RAINNC variables in the "
                         "output.")
    times = _times(nc, name)
    if times.size != shape[0]:
        raise InputError(f"{name}: Times has {times.size} entries for {shape[0]} rain fields.")
    lon = _first_slice(nc, "XLONG", 0)
    lat = _first_slice(nc, "XLAT", 0)
    if lon.shape != shape[1:] or lat.shape != shape[1:]:
        raise InputError(f"{name}: XLAT/XLONG {lat.shape} do not match the rain's "
                         f"south_north × west_east {shape[1:]}.")
    if shape[0] > 1 and nc.variables["XLAT"].ndim == 3:
        last = _first_slice(nc, "XLAT", shape[0] - 1)
        if np.nanmax(np.abs(last - lat)) > 1e-4:
            raise InputError(f"{name}: XLAT changes between the first and last time: a moving "
                             "nest, whose rain cannot be assembled on one grid.")
    x, y, crs = wrf_grid(name, attrs, lon, lat)
    stated = {v: nc.variables[v].getncattr("units") if "units" in nc.variables[v].ncattrs()
              else None for v in components}
    if units is None and (None in stated.values() or len(set(stated.values())) != 1):
        raise InputError(f"{name}: WRF rain variables state units {stated}; they must state "
                         "one unit (WRF writes 'mm'), or give them (units='mm' / --units mm).")
    total = np.zeros(shape, np.float64)
    for v in components:
        total += _values(nc, v)
    for counter in counters:
        total += _values(nc, counter) * bucket_mm
    start_text = attrs.get("SIMULATION_START_DATE")
    reference = (_wrf_time(str(start_text), "SIMULATION_START_DATE", name)
                 if start_text else times[0])
    if times.min() < reference:
        raise InputError(f"{name}: Times start at {times.min()}, before the simulation start "
                         f"{reference} (SIMULATION_START_DATE); the file is not of this run.")
    return RawRainfall(
        values=total[None],
        step_end=times,
        x=x,
        y=y,
        crs=crs,
        units=str(units if units is not None else next(iter(stated.values()))),
        variable="+".join(components),
        source=str(path),
        accumulation="since_start",
        reference_time=reference,
        members=_member(attrs, name),
        attrs={"wrf_map_proj": int(attrs["MAP_PROJ"]), "wrf_bucket_mm": bucket_mm,
               "title": str(attrs.get("TITLE", ""))},
    )
