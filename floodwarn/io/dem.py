"""Reading DEMs (GeoTIFF/COG, SRTM .hgt, ESRI ASCII grid) onto a projected metric grid."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from pyproj import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.warp import calculate_default_transform, reproject
from scipy import ndimage

from floodwarn.errors import CRSError, DataFileError, InputError
from floodwarn.logs import get_logger
from floodwarn.terrain.conditioning import validate_dem_array
from floodwarn.terrain.grid import Grid, validate_grid

log = get_logger(__name__)

#: The CRS floodwarn works in by default: UTM zone 16 N, which holds all of El Salvador.
DEFAULT_CRS = "EPSG:32616"
#: Metres per degree of latitude (mean, WGS 84) for choosing a cell size.
_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LON_EQUATOR = 111_320.0
#: Values that DEM producers use as nodata; finding one in a DEM without nodata is an error.
_NODATA_SENTINELS = (-32768.0, -32767.0, -9999.0, -3.4028234663852886e38)


@dataclass(frozen=True, eq=False)
class Dem:
    """Elevation in m (float32, NaN = nodata) on a projected grid, with where it came from."""

    elevation: np.ndarray
    grid: Grid
    metadata: dict[str, Any] = field(default_factory=dict)


def utm_crs_for(lon: float, lat: float) -> str:
    """The WGS 84 UTM zone CRS (EPSG:326xx / 327xx) containing ``lon``, ``lat``."""
    zone = math.floor((lon + 180.0) / 6.0) % 60 + 1
    return f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"


def sensible_cellsize_m(res_x_deg: float, res_y_deg: float, lat: float) -> float:
    """Square cell size (m, whole metres) with the area of a geographic cell at ``lat``."""
    dx = abs(res_x_deg) * _M_PER_DEG_LON_EQUATOR * math.cos(math.radians(lat))
    dy = abs(res_y_deg) * _M_PER_DEG_LAT
    return float(max(1, round(math.sqrt(dx * dy))))


def read_dem(
    path: str | Path,
    *,
    target_crs: str = DEFAULT_CRS,
    cellsize_m: float | None = None,
    nodata: float | None = None,
    fill_voids: bool = False,
) -> Dem:
    """Read a DEM and return it on a projected grid in metres with NaN as nodata.

    - Formats: anything GDAL reads; tested with GeoTIFF/COG, SRTM ``.hgt`` and ESRI ASCII grid.
    - A DEM already in a projected metric CRS keeps its grid, cell for cell (cells must be
      square). A geographic DEM is reprojected (bilinear) to ``target_crs`` (``"auto"``: the UTM
      zone of its centre) with ``cellsize_m`` or, by default, a square cell of the same area as
      the source cell at the DEM's centre.
    - ``nodata`` overrides or supplies the nodata value. A DEM with no nodata that contains a
      typical sentinel (−32768, −9999) or NaN is refused, since those cells would be taken as
      terrain.
    - ``fill_voids`` interpolates nodata holes enclosed by valid cells (SRTM voids) instead of
      treating them as outlets (rasterio's inverse-distance ``fillnodata``).
    """
    path = Path(path)
    if not path.exists():
        raise DataFileError(
            f"{path}: no such DEM file. Check the path, or download tiles with "
            "`floodwarn data fetch-dem`."
        )
    try:
        with rasterio.open(path) as src:
            if src.count < 1:
                raise DataFileError(f"{path}: the file has no raster band.")
            raw = src.read(1)
            src_crs = src.crs
            src_transform = src.transform
            declared_nodata = src.nodata
            tags = src.tags()
            driver = src.driver
            bounds = src.bounds
    except RasterioIOError as exc:
        raise DataFileError(
            f"{path}: cannot be read as a DEM ({exc}). The file is corrupt, truncated or not a "
            "raster format GDAL knows (GeoTIFF, .hgt, .asc)."
        ) from exc
    except Exception as exc:  # GDAL raises its own errors on corrupt blocks during read
        if isinstance(exc, DataFileError):
            raise
        raise DataFileError(
            f"{path}: reading the elevation failed ({type(exc).__name__}: {exc}); the file is "
            "probably truncated or corrupt. Download or export it again."
        ) from exc
    where = str(path)
    if src_crs is None:
        raise CRSError(
            f"{where}: the DEM has no CRS. Assign the right one, e.g. "
            "`gdal_edit.py -a_srs EPSG:4326 FILE` for SRTM/Copernicus lon/lat tiles."
        )

    elevation = _elevation_with_nan(
        raw, declared_nodata, nodata, where=where, nan_is_void=fill_voids
    )
    if fill_voids:
        elevation = _fill_enclosed_voids(elevation)

    crs = CRS.from_user_input(src_crs)
    metadata: dict[str, Any] = {
        "path": str(path),
        "name": path.name,
        "driver": driver,
        "source_crs": crs.to_string(),
        "source_nodata": declared_nodata if nodata is None else nodata,
        "synthetic": tags.get("floodwarn_synthetic", "false").lower() == "true",
        "description": tags.get("floodwarn_description", ""),
        "voids_filled": bool(fill_voids),
    }
    if "floodwarn_water_bodies" in tags:
        # Where a synthetic DEM burned its lakes (see floodwarn.standin_dem).
        try:
            metadata["water_bodies"] = json.loads(tags["floodwarn_water_bodies"])
        except ValueError as exc:
            raise DataFileError(f"{path}: tag floodwarn_water_bodies is not JSON ({exc}); "
                                "regenerate the DEM.") from exc
    if crs.is_geographic:
        lon_c = (bounds.left + bounds.right) / 2
        lat_c = (bounds.bottom + bounds.top) / 2
        dst_crs = utm_crs_for(lon_c, lat_c) if target_crs == "auto" else target_crs
        size = cellsize_m or sensible_cellsize_m(src_transform.a, src_transform.e, lat_c)
        dem, grid = _reproject(elevation, src_crs, src_transform, dst_crs, size)
        _warn_far_from_zone(dst_crs, lon_c, where)
        metadata.update(reprojected=True, resampling="bilinear")
    else:
        grid = Grid(shape=elevation.shape, transform=src_transform, crs=crs.to_wkt())
        dem = elevation
        metadata.update(reprojected=False)
        if cellsize_m is not None and not math.isclose(cellsize_m, abs(src_transform.a)):
            log.warning(
                "cellsize_ignored",
                extra={"path": where, "requested_m": cellsize_m, "kept_m": abs(src_transform.a)},
            )
    validate_grid(grid, where=where)
    dem = validate_dem_array(dem, where=where)
    metadata["cellsize_m"] = grid.cellsize_m
    metadata["crs"] = CRS.from_user_input(grid.crs).to_string()
    return Dem(elevation=dem, grid=grid, metadata=metadata)


def _elevation_with_nan(
    raw: np.ndarray,
    declared: float | None,
    override: float | None,
    *,
    where: str,
    nan_is_void: bool,
) -> np.ndarray:
    elevation = raw.astype(np.float32, copy=True)
    nodata = override if override is not None else declared
    has_nan = bool(np.isnan(elevation).any())
    if nodata is None:
        if has_nan and not nan_is_void:
            r, c = np.argwhere(np.isnan(elevation))[0]
            raise InputError(
                f"{where}: the DEM declares no nodata value but has NaN cells (first at row {r}, "
                f"col {c}). Declare NaN as nodata (`--nodata nan`) or fill the holes first."
            )
        for sentinel in _NODATA_SENTINELS:
            hits = elevation == np.float32(sentinel)
            if hits.any():
                r, c = np.argwhere(hits)[0]
                raise InputError(
                    f"{where}: the DEM declares no nodata value but has {int(hits.sum())} cells "
                    f"equal to {sentinel:g} (first at row {r}, col {c}), a usual nodata sentinel. "
                    f"Declare it (`--nodata {sentinel:g}` or "
                    f"`gdal_edit.py -a_nodata {sentinel:g}`)."
                )
        return elevation
    if math.isnan(nodata):
        return elevation
    if has_nan and not nan_is_void:
        r, c = np.argwhere(np.isnan(elevation))[0]
        raise InputError(
            f"{where}: the DEM has NaN holes (first at row {r}, col {c}) besides its nodata "
            f"value {nodata:g}. Fill them (`--fill-voids`) or declare NaN as nodata."
        )
    elevation[raw == nodata] = np.nan
    return elevation


def _fill_enclosed_voids(elevation: np.ndarray) -> np.ndarray:
    """Interpolate nodata regions that do not touch the raster border (voids, not the sea)."""
    from rasterio.fill import fillnodata

    void = np.isnan(elevation)
    if not void.any():
        return elevation
    labels, n = ndimage.label(void, structure=np.ones((3, 3), bool))
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    enclosed = void & ~np.isin(labels, border)
    if not enclosed.any():
        return elevation
    mask = (~enclosed).astype(np.uint8)  # fillnodata: 0 = to fill
    filled = fillnodata(
        np.where(enclosed, 0, elevation).astype(np.float32),
        mask=mask,
        max_search_distance=max(elevation.shape),
        smoothing_iterations=0,
    )
    out = elevation.copy()
    out[enclosed] = filled[enclosed]
    log.info("voids_filled", extra={"cells": int(enclosed.sum()), "regions": n})
    return out


def _reproject(
    elevation: np.ndarray, src_crs: Any, src_transform: Any, dst_crs: str, cellsize_m: float
) -> tuple[np.ndarray, Grid]:
    try:
        dst = CRS.from_user_input(dst_crs)
    except Exception as exc:
        raise CRSError(f"target CRS {dst_crs!r} is not understood ({exc}).") from exc
    if not dst.is_projected:
        raise CRSError(
            f"target CRS {dst_crs!r} is not projected; use a metric CRS such as "
            f"{DEFAULT_CRS} or 'auto' (UTM zone of the DEM)."
        )
    rows, cols = elevation.shape
    left, top = src_transform @ (0, 0)
    right, bottom = src_transform @ (cols, rows)
    transform, width, height = calculate_default_transform(
        src_crs,
        dst,
        cols,
        rows,
        left=left,
        bottom=bottom,
        right=right,
        top=top,
        resolution=cellsize_m,
    )
    out = np.full((height, width), np.nan, np.float32)
    reproject(
        source=elevation,
        destination=out,
        src_transform=src_transform,
        src_crs=src_crs,
        src_nodata=np.nan,
        dst_transform=transform,
        dst_crs=dst,
        dst_nodata=np.nan,
        resampling=Resampling.bilinear,
        num_threads=2,
    )
    return out, Grid(shape=(height, width), transform=transform, crs=dst.to_wkt())


def _warn_far_from_zone(dst_crs: str, lon: float, where: str) -> None:
    epsg = CRS.from_user_input(dst_crs).to_epsg()
    if epsg is not None and 32601 <= epsg <= 32760:
        zone = epsg % 100
        central = -183 + 6 * zone
        if abs(lon - central) > 6:
            log.warning(
                "dem_far_from_utm_zone",
                extra={
                    "path": where,
                    "crs": dst_crs,
                    "dem_centre_lon": round(lon, 3),
                    "hint": "distances are distorted; pass --crs auto for the DEM's own zone",
                },
            )

