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
#: Overview resampling per kind of raster: categorical and direction rasters must not average.
OVERVIEW_RESAMPLING = {"continuous": "average", "categorical": "nearest"}


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
