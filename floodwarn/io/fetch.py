"""Download public DEM tiles (Copernicus GLO-30, SRTM) and mosaic them.

Both products are 1°×1° tiles named by their south-west corner. Tiles that the server does not
have (HTTP 404: open ocean) are skipped and reported; any other failure is an error. Downloaded
tiles are kept in a cache directory so a second run does not fetch them again.
"""

from __future__ import annotations

import gzip
import math
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.merge import merge

from floodwarn import __version__
from floodwarn.errors import DownloadError, InputError
from floodwarn.logs import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class TileSource:
    """Where the tiles of one DEM product live and how they are named."""

    description: str
    base_url: str
    path_template: str
    gzipped: bool
    nodata: float

    def tile_url(self, lat: int, lon: int, base_url: str | None = None) -> str:
        ns = "N" if lat >= 0 else "S"
        ew = "E" if lon >= 0 else "W"
        names = {
            "lat_band": f"{ns}{abs(lat):02d}",
            "hgt_name": f"{ns}{abs(lat):02d}{ew}{abs(lon):03d}",
            "cop_name": f"Copernicus_DSM_COG_10_{ns}{abs(lat):02d}_00_{ew}{abs(lon):03d}_00_DEM",
        }
        return (base_url or self.base_url).rstrip("/") + "/" + self.path_template.format(**names)


#: Public open-data endpoints (no account needed).
TILE_SOURCES: dict[str, TileSource] = {
    "copernicus-glo30": TileSource(
        description="Copernicus DEM GLO-30 (ESA, 1 arc-second), AWS open data",
        base_url="https://copernicus-dem-30m.s3.amazonaws.com",
        path_template="{cop_name}/{cop_name}.tif",
        gzipped=False,
        nodata=-32767.0,
    ),
    "srtm": TileSource(
        description="SRTM (NASA/USGS, 1 arc-second void-filled), Terrain Tiles 'skadi' layout",
        base_url="https://elevation-tiles-prod.s3.amazonaws.com/skadi",
        path_template="{lat_band}/{hgt_name}.hgt.gz",
        gzipped=True,
        nodata=-32768.0,
    ),
}


@dataclass
class FetchReport:
    """What :func:`fetch_dem` did."""

    out_path: Path
    source: str
    tiles_downloaded: list[str] = field(default_factory=list)
    tiles_cached: list[str] = field(default_factory=list)
    tiles_missing: list[str] = field(default_factory=list)


def tiles_for_bbox(west: float, south: float, east: float, north: float) -> list[tuple[int, int]]:
    """(lat, lon) of the south-west corners of the 1° tiles covering the box."""
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise InputError(
            f"bbox W={west} S={south} E={east} N={north} is not a valid lon/lat box: need "
            "-180 ≤ W < E ≤ 180 and -90 ≤ S < N ≤ 90 (degrees, west and south negative)."
        )
    lats = range(math.floor(south), math.ceil(north))
    lons = range(math.floor(west), math.ceil(east))
    tiles = [(lat, lon) for lat in lats for lon in lons]
    if len(tiles) > 64:
        raise InputError(f"bbox covers {len(tiles)} tiles; fetch at most 64 at a time.")
    return tiles


def _download(url: str, dest: Path, *, retries: int = 3, timeout_s: float = 60.0) -> bool:
    """Download ``url`` to ``dest``; False on HTTP 404, DownloadError on other failures."""
    last: Exception | None = None
    for attempt in range(1, retries + 1):
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                tmp = dest.with_name(dest.name + ".partial")
                with open(tmp, "wb") as fh:
                    shutil.copyfileobj(response, fh)
                tmp.replace(dest)
                return True
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return False
            last = exc
            if exc.code < 500:
                break
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            last = exc
        time.sleep(min(2.0**attempt * 0.25, 4.0))
    raise DownloadError(
        f"{url}: download failed after {retries} attempts ({last}). Check the network or the "
        "--base-url, or download the tile by hand into the cache directory."
    )


def _tile_to_raster(raw: Path, source: TileSource, name: str) -> Path:
    """Make the downloaded file readable by GDAL under its own name; check it opens."""
    if source.gzipped:
        target = raw.with_name(name + ".hgt")
        try:
            with gzip.open(raw, "rb") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
        except (OSError, EOFError) as exc:
            raw.unlink(missing_ok=True)
            raise DownloadError(
                f"{raw}: not a valid gzip file ({exc}); the download is corrupt."
            ) from exc
    else:
        target = raw
    try:
        with rasterio.open(target) as ds:
            ds.read(1, window=((0, 1), (0, 1)))
    except RasterioIOError as exc:
        target.unlink(missing_ok=True)
        raise DownloadError(
            f"{target}: the downloaded tile is not a readable raster ({exc})."
        ) from exc
    return target


def _opens(path: Path) -> bool:
    try:
        with rasterio.open(path):
            return True
    except RasterioIOError:
        log.warning("dem_tile_cache_corrupt", extra={"path": str(path)})
        path.unlink(missing_ok=True)
        return False


def fetch_dem(
    bbox: tuple[float, float, float, float],
    out_path: str | Path,
    *,
    source: str = "copernicus-glo30",
    base_url: str | None = None,
    cache_dir: str | Path | None = None,
) -> FetchReport:
    """Download the tiles covering ``bbox`` (W, S, E, N degrees) and mosaic them to a GeoTIFF.

    The mosaic is clipped to ``bbox``, keeps the tiles' lon/lat grid and nodata, and records the
    source and tiles in its metadata. ``base_url`` points to a mirror of the same layout.
    """
    if source not in TILE_SOURCES:
        raise InputError(f"unknown DEM source {source!r}; choose one of {sorted(TILE_SOURCES)}.")
    spec = TILE_SOURCES[source]
    out_path = Path(out_path)
    cache = Path(cache_dir) if cache_dir else out_path.parent / ".dem_tiles" / source
    cache.mkdir(parents=True, exist_ok=True)
    report = FetchReport(out_path=out_path, source=source)
    rasters: list[Path] = []
    for lat, lon in tiles_for_bbox(*bbox):
        url = spec.tile_url(lat, lon, base_url)
        name = url.rsplit("/", 1)[1].removesuffix(".gz").removesuffix(".hgt").removesuffix(".tif")
        final = cache / (name + (".hgt" if spec.gzipped else ".tif"))
        if final.exists() and _opens(final):
            report.tiles_cached.append(name)
            rasters.append(final)
            continue
        raw = cache / url.rsplit("/", 1)[1]
        if not _download(url, raw):
            report.tiles_missing.append(name)
            log.warning("dem_tile_missing", extra={"tile": name, "url": url})
            continue
        rasters.append(_tile_to_raster(raw, spec, name))
        if spec.gzipped:
            raw.unlink(missing_ok=True)
        report.tiles_downloaded.append(name)
        log.info("dem_tile_downloaded", extra={"tile": name, "url": url})
    if not rasters:
        raise DownloadError(
            f"none of the {len(report.tiles_missing)} tiles covering {bbox} exists at "
            f"{base_url or spec.base_url} (all HTTP 404): the box may be open ocean."
        )
    datasets = [rasterio.open(p) for p in rasters]
    try:
        # Bounds on the tiles' own pixel edges, widened to cover the box: merging then copies
        # pixels without resampling, and missing tiles stay nodata.
        ref = datasets[0].transform
        west, south, east, north = bbox
        bounds = (
            ref.c + np.floor((west - ref.c) / ref.a + 1e-9) * ref.a,
            ref.f + np.ceil((south - ref.f) / ref.e - 1e-9) * ref.e,
            ref.c + np.ceil((east - ref.c) / ref.a - 1e-9) * ref.a,
            ref.f + np.floor((north - ref.f) / ref.e + 1e-9) * ref.e,
        )
        mosaic, transform = merge(datasets, bounds=bounds, nodata=spec.nodata)
        profile = datasets[0].profile
    finally:
        for ds in datasets:
            ds.close()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".partial")
    with rasterio.open(
        tmp,
        "w",
        driver="COG",
        width=mosaic.shape[2],
        height=mosaic.shape[1],
        count=1,
        dtype=mosaic.dtype,
        crs=profile["crs"],
        transform=transform,
        nodata=spec.nodata,
        compress="ZSTD",
        predictor=2 if np.issubdtype(mosaic.dtype, np.integer) else 3,
    ) as dst:
        dst.write(mosaic[0], 1)
        dst.update_tags(
            floodwarn_synthetic="false",
            floodwarn_version=__version__,
            floodwarn_source=spec.description,
            floodwarn_tiles=",".join(report.tiles_downloaded + report.tiles_cached),
            floodwarn_tiles_missing=",".join(report.tiles_missing),
        )
    tmp.replace(out_path)
    return report
