"""Read a stack of GeoTIFFs (one file per time step) as rain, and the limits every rain reader
applies.

The stack reader only finds values, units, times and grid as the files state them and hands
them to :func:`floodwarn.rainfall.forecast.canonical_forecast` (through
:func:`floodwarn.io.rainfall.read_rainfall`, which dispatches on :data:`RAIN_READERS
<floodwarn.io.rainfall.RAIN_READERS>`); conversions and checks live there.

The limits every reader shares are in :mod:`floodwarn.io.rain_limits`.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path
from typing import Any

import numpy as np

from floodwarn.errors import CRSError, DataFileError, InputError
from floodwarn.io.rain_limits import (
    CROP_BOX,
    check_declared_cells,
    decoder_reason,
    file_name,
    is_pattern,
)
from floodwarn.rainfall.forecast import RawRainfall

# ------------------------------------------------------------------------------ GeoTIFF stack

GEOTIFF_SUFFIXES = (".tif", ".tiff")

_CROP_GEOTIFF = (f"gdal_translate -projwin {CROP_BOX[0]} {CROP_BOX[3]} {CROP_BOX[2]} "
                 f"{CROP_BOX[1]} in.tif out.tif")
_TIME_IN_NAME = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})[T_-]?(\d{2})(?::?(\d{2}))?")


def _time_from(tags: dict[str, str], name: str) -> tuple[np.datetime64, Any]:
    start = tags.get("step_start")
    for key in ("valid_time", "step_end", "TIFFTAG_DATETIME"):
        if key in tags:
            text = tags[key].replace(" ", "T").replace(":", "-", 2) if key == "TIFFTAG_DATETIME" \
                else tags[key]
            try:
                return np.datetime64(text.rstrip("Z"), "s"), start
            except ValueError as exc:
                raise InputError(f"{name}: tag {key}={tags[key]!r} is not an ISO time.") from exc
    match = _TIME_IN_NAME.search(name)
    if match is None:
        raise InputError(
            f"{name}: no time in the tags (valid_time) or in the file name; name "
            "files like rain_20200531T0600.tif (end of the step, UTC)."
        )
    y, mo, d, h, mi = match.groups()
    return np.datetime64(f"{y}-{mo}-{d}T{h}:{mi or '00'}", "s"), start


def _geotiff_files(path: str | Path) -> list[Path]:
    """The GeoTIFFs of a folder, a single file, or a pattern (a path that does not exist)."""
    p = Path(path)
    name = file_name(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir()
                       if f.suffix.lower() in GEOTIFF_SUFFIXES and f.is_file())
        if not files:
            raise DataFileError(f"{name}: the folder holds no GeoTIFF files "
                                f"({', '.join(GEOTIFF_SUFFIXES)}).")
        return files
    if p.is_file():
        return [p]
    if not is_pattern(path):
        raise DataFileError(f"{name}: no such file or folder.")
    matches = sorted(Path(m) for m in glob.glob(str(path)) if Path(m).is_file())
    if not matches:
        raise DataFileError(f"{name}: no such file, and as a pattern it matches no file.")
    others = [m.name for m in matches if m.suffix.lower() not in GEOTIFF_SUFFIXES]
    if others:
        raise InputError(
            f"{name}: as a pattern it matches files that are not GeoTIFFs ({others[:3]}); a "
            "pattern selects a stack of GeoTIFFs — give a NetCDF or GRIB file by its name."
        )
    return matches


def _unreadable_geotiff(path: Path, exc: BaseException) -> DataFileError:
    return DataFileError(f"{path.name}: cannot be read as GeoTIFF ({decoder_reason(exc, path)});"
                         " it may be truncated or corrupt — download it again.")


def _geotiff_errors() -> tuple[type[BaseException], ...]:
    """What rasterio/GDAL raise for a file they cannot read."""
    import rasterio.errors
    from rasterio._err import CPLE_BaseError

    return (rasterio.errors.RasterioError, CPLE_BaseError, OSError, ValueError)


def read_geotiff_stack(path: str | Path, *, variable: str | None = None, units: str | None = None,
                       max_cells: int | None = None) -> RawRainfall:
    """Read one GeoTIFF per time step (a folder, one file, or a pattern); times from tags or
    file names.

    Each file holds the rain of one step (bands = ensemble members). Its time is the end of the
    step, from the tag ``valid_time`` (or ``step_end``/``TIFFTAG_DATETIME``) or from the file
    name (``…20200531T0600…``); an optional ``step_start`` tag gives the start. Units come from
    the ``units`` tag; ``units`` replaces them. ``path`` is a pattern only when no file or
    folder has that name (:func:`_is_pattern`). Every file's header is read first: the stack's
    declared size — bands × files × height × width — is checked against ``max_cells`` (default
    :data:`MAX_RAIN_CELLS`) before any pixel is read. GDAL failures are a
    :class:`DataFileError` naming the file. A band has no variable name: ``variable`` must be
    None.
    """
    import rasterio

    name = file_name(path)
    if variable is not None:
        raise InputError(f"{name}: GeoTIFF rain has no variables (one band per member); drop "
                         f"the variable {variable!r} (--variable).")
    files = _geotiff_files(path)
    broken = _geotiff_errors()
    shapes = []
    for f in files:
        try:
            with rasterio.open(f) as ds:
                shapes.append((ds.count, ds.height, ds.width))
        except broken as exc:
            raise _unreadable_geotiff(f, exc) from exc
    if len(set(shapes)) == 1:
        bands, height, width = shapes[0]
        check_declared_cells(name, (bands, len(files), height, width),
                     "bands × files × rows × columns", max_cells, _CROP_GEOTIFF)
    else:
        check_declared_cells(name, (sum(b * h * w for b, h, w in shapes),),
                             "cells in all its files", max_cells, _CROP_GEOTIFF)
        counts = sorted({b for b, _, _ in shapes})
        if len(counts) > 1:
            raise InputError(f"{name}: its GeoTIFFs have different numbers of bands (members) "
                             f"{counts}; every step of a stack must hold the same members.")
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
        except broken as exc:
            raise _unreadable_geotiff(f, exc) from exc
        if this_grid[1] is None:
            raise CRSError(f"{f.name}: the GeoTIFF has no CRS; set one (gdal_edit.py -a_srs).")
        if grid is None:
            grid = this_grid
        elif grid != this_grid:
            raise InputError(f"{f.name}: its grid differs from {files[0].name}'s; every step of "
                             "a stack must share one grid.")
        end, start = _time_from(tags, f.name)
        ends.append(end)
        starts.append(start)
        file_units.add(units if units is not None else tags.get("units"))
        stack.append(arr)
    if None in file_units:
        raise InputError(f"{name}: the GeoTIFFs have no 'units' tag; tag them or pass --units "
                         "(mm for depth per step).")
    if len(file_units) != 1:
        raise InputError(f"{name}: files have different units {sorted(map(str, file_units))}.")
    assert grid is not None
    transform, crs, (nrow, ncol) = grid
    if transform.b != 0 or transform.d != 0:
        raise InputError(f"{name}: rotated GeoTIFF grids are not supported.")
    x = transform.c + transform.a * (np.arange(ncol) + 0.5)
    y = transform.f + transform.e * (np.arange(nrow) + 0.5)
    values = np.stack(stack, axis=1)  # (member, time, y, x)
    step_start = None
    if all(s is not None for s in starts):
        try:
            step_start = np.array([np.datetime64(str(s).rstrip("Z"), "s") for s in starts])
        except ValueError as exc:
            raise InputError(f"{name}: a step_start tag is not an ISO time ({exc}).") from exc
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
        source=str(path),
        accumulation="step",
    )
