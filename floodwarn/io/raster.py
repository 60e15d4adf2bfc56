"""Reading and writing single-band rasters; outputs are Cloud Optimized GeoTIFFs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError

from floodwarn import __version__
from floodwarn.errors import DataFileError
from floodwarn.terrain.grid import Grid

#: GDAL block cache while writing, MB.
GDAL_CACHE_MB = 256
#: Overview resampling per kind of raster: categorical and direction rasters must not average,
#: nor times of arrival ("arrival": an average of two cells' first-flooding hours is an hour at
#: which neither flooded; GDAL 3.10's overview builders have no "min", which would show the
#: earliest of them).
OVERVIEW_RESAMPLING = {"continuous": "average", "categorical": "nearest", "arrival": "nearest"}
#: Zoom levels of a Web Mercator copy whose tiles are whole blocks of the file, counted from its
#: full resolution down (GDAL COG driver's ALIGNED_LEVELS): for a 90 m grid, whose full
#: resolution is zoom 11 (76 m), zooms 11–8, the regional to street views; the extent is padded
#: to whole zoom-8 tiles (empty blocks are not written: SPARSE_OK).
WEB_MERCATOR_ALIGNED_LEVELS = 4


def write_cog(
    path: Path,
    array: np.ndarray,
    grid: Grid,
    *,
    nodata: float | int | None,
    kind: str = "continuous",
    tags: dict[str, Any] | None = None,
    description: str = "",
) -> None:
    """Write ``array`` on ``grid`` as a ZSTD-compressed Cloud Optimized GeoTIFF.

    ``kind`` selects the overview resampling (see :data:`OVERVIEW_RESAMPLING`). ``tags`` are
    stored as GDAL metadata (floodwarn's version is always added), so QGIS and ``gdalinfo``
    show where the file came from.
    """
    if kind not in OVERVIEW_RESAMPLING:
        raise ValueError(f"kind must be one of {sorted(OVERVIEW_RESAMPLING)}, got {kind!r}")
    floating = np.issubdtype(array.dtype, np.floating)
    profile = {
        "driver": "COG",
        "width": grid.shape[1],
        "height": grid.shape[0],
        "count": 1,
        "dtype": array.dtype.name,
        "crs": grid.crs,
        "transform": grid.transform,
        "nodata": nodata,
        "compress": "ZSTD",
        "level": 1,
        "predictor": 3 if floating else 2,
        "blocksize": 512,
        "num_threads": "ALL_CPUS",
        "overview_resampling": OVERVIEW_RESAMPLING[kind],
        "bigtiff": "IF_SAFER",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    # A bounded block cache: GDAL's default (5 % of RAM) would add up to a gigabyte at the peak.
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), rasterio.open(tmp, "w", **profile) as dst:
        dst.write(array, 1)
        dst.update_tags(
            floodwarn_version=__version__, **{k: str(v) for k, v in (tags or {}).items()}
        )
        if description:
            dst.set_band_description(1, description)
    tmp.replace(path)  # never leave a half-written raster under the final name


def write_web_mercator_cog(source: Path, target: Path, *, kind: str = "continuous") -> None:
    """Copy the raster at ``source`` (e.g. a run's UTM COG) to ``target`` as a Cloud Optimized
    GeoTIFF in Web Mercator (EPSG:3857) on the GoogleMapsCompatible tile matrix set (OGC
    Two Dimensional Tile Matrix Set, OGC 17-083r2, annex D.1), so that a map tile is one
    256 × 256 block of the file or of one of its overviews and is read without warping.

    GDAL's COG driver (gdal.org/drivers/raster/cog.html) does the reprojection:

    * full resolution at the zoom level just finer than the source's cells
      (``ZOOM_LEVEL_STRATEGY=UPPER``: a 90 m UTM cell, 92.6 m in Mercator at 14° N, goes to
      zoom 11's 76.4 m pixels), so no detail is lost;
    * warped by nearest neighbour: each pixel takes the value of the cell under its centre,
      the rule the tile renderer applies when it warps the UTM grid itself; a cubic kernel
      (the driver's default) would blend depths and overshoot at a flood's edge;
    * overviews, one per zoom level, resampled by ``kind`` (see
      :data:`OVERVIEW_RESAMPLING`), aligned to whole tiles for
      :data:`WEB_MERCATOR_ALIGNED_LEVELS` levels.

    Nodata, tags and the band description are kept; no alpha band is added (nodata masks).
    Written under a temporary name and renamed, like :func:`write_cog`.
    """
    from rasterio.shutil import copy

    if kind not in OVERVIEW_RESAMPLING:
        raise ValueError(f"kind must be one of {sorted(OVERVIEW_RESAMPLING)}, got {kind!r}")
    tmp = target.with_name(target.name + ".partial")
    try:
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), rasterio.open(source) as src:
            floating = np.issubdtype(np.dtype(src.dtypes[0]), np.floating)
            copy(src, tmp, driver="COG", TILING_SCHEME="GoogleMapsCompatible",
                 ZOOM_LEVEL_STRATEGY="UPPER", WARP_RESAMPLING="NEAREST",
                 OVERVIEW_RESAMPLING=OVERVIEW_RESAMPLING[kind].upper(),
                 ALIGNED_LEVELS=WEB_MERCATOR_ALIGNED_LEVELS, SPARSE_OK="TRUE",
                 ADD_ALPHA="NO", COMPRESS="ZSTD", LEVEL=1, PREDICTOR=3 if floating else 2,
                 NUM_THREADS="ALL_CPUS", BIGTIFF="IF_SAFER")
    except RasterioIOError as exc:
        tmp.unlink(missing_ok=True)
        raise DataFileError(f"{source}: cannot be copied to Web Mercator ({exc}).") from exc
    tmp.replace(target)


def read_band(path: Path) -> tuple[np.ndarray, Grid, float | None, dict[str, str]]:
    """First band of a raster with its grid, nodata value and tags."""
    try:
        with rasterio.open(path) as src:
            array = src.read(1)
            grid = Grid(
                shape=(src.height, src.width),
                transform=src.transform,
                crs=src.crs.to_wkt() if src.crs else "",
            )
            return array, grid, src.nodata, src.tags()
    except RasterioIOError as exc:
        raise DataFileError(
            f"{path}: cannot be read as a raster ({exc}); the file is missing, truncated or "
            "not a GDAL-readable format."
        ) from exc


def read_categorical_on_grid(path: Path, grid: Grid, *, what: str) -> np.ndarray:
    """A class raster (land cover, soil group) resampled by nearest neighbour onto ``grid``.

    Returns int32 codes with −1 where the source has nodata or does not reach. Raises
    DataFileError for an unreadable file and CRSError when the raster has no CRS.
    """
    from rasterio.warp import Resampling, reproject

    from floodwarn.errors import CRSError

    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise CRSError(f"{path}: the {what} raster has no CRS; set one (gdal_edit.py "
                               "-a_srs EPSG:…).")
            out = np.full(grid.shape, -1, np.int32)
            reproject(
                source=rasterio.band(src, 1),
                destination=out,
                src_nodata=src.nodata,
                dst_transform=grid.transform,
                dst_crs=grid.crs,
                dst_nodata=-1,
                resampling=Resampling.nearest,
            )
    except RasterioIOError as exc:
        raise DataFileError(f"{path}: cannot be read as the {what} raster ({exc}).") from exc
    return out
