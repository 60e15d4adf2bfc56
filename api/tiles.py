"""Web map tiles (Web Mercator XYZ, 256 px PNG) rendered with rio-tiler from a run's Cloud
Optimized GeoTIFFs and from a hillshade of the service's terrain model.

Colour maps — what the analysts' map draws and :func:`legend` (``GET /tiles/legend.json``)
explains; every class runs from its value up to the next class's value:

``depth`` (peak flood depth, m; ``depth.tif``)
    transparent below 0.05 m (dry land, and depths under the model's noise), then a
    sequential blue ramp (ColorBrewer *Blues*, Brewer & Harrower 2003, colorbrewer2.org,
    lightest class dropped so the shallowest water stays visible on the grey relief):

    ========  =========  ==========================================================
    from (m)  colour     reads as
    ========  =========  ==========================================================
    0.05      #c6dbef    up to the ankle
    0.15      #9ecae1    up to the knee
    0.5       #6baed6    up to the waist
    1         #4292c6    up to an adult's head
    2         #2171b5    over an adult's head, up to a one-storey house's eaves
    3         #084594    over a one-storey house's roof
    ========  =========  ==========================================================

    The class edges are body-height bands (ankle, knee, waist, an adult's head, a storey),
    the legend's labels, which a community committee reads without a depth scale. The
    first two edges also match the US National Weather Service's "Turn Around Don't Drown"
    figures: 15 cm (6 in) of moving water can knock an adult down, 30–60 cm carries away
    most cars.

``first_flooding`` (hours from the forecast start until a cell first floods;
``first_flooding_hours.tif``)
    red (soon) to yellow (late), ColorBrewer *YlOrRd* reversed, classes 0, 3, 6, 12, 24,
    48, 72 h (#b10026 #e31a1c #fc4e2a #fd8d3c #feb24c #fed976 #ffffb2): the first hours,
    when evacuating is urgent, get the most classes. Cells that never flood are
    transparent; with ``hour`` only cells first flooded at or before that hour are drawn.

``hillshade`` (the terrain model's conditioned DEM, Horn 1981; see
:mod:`floodwarn.terrain.hillshade`)
    greys: 1 = black (full shadow) … 255 = white (slope facing the north-west sun); flat
    ground is 181. Nodata (sea, outside the model) is transparent.

Sources: a run's tiles are read from the Web Mercator copies of its rasters
(``depth_3857.tif``, ``first_flooding_hours_3857.tif``: GoogleMapsCompatible COGs, see
:func:`floodwarn.io.raster.write_web_mercator_cog`), whose blocks are the map's tiles and whose
overviews are its zoom levels; runs made before those copies existed are read from their UTM
COGs. The hillshade is a UTM COG.

Rendering: rio-tiler's ``Reader.tile``. This module picks the overview a tile is read from
(as ``gdalwarp -ovr AUTO`` does: the coarsest whose cells are no larger than the tile's
pixels). From a Web Mercator copy that is the overview of the tile's own zoom, and rio-tiler,
seeing the tile's CRS is the file's, reads the tile's 256 × 256 window without warping (2.0 ms
a tile in-process, against 7.5 ms from the UTM COG). A UTM source is warped by rio-tiler
straight to the tile's grid (asked for as ``vrt_options``: rio-tiler otherwise warps the
native grid and then decimates, 3× slower at zoom 8–10). Tiles are written as palette PNGs
(a class index or grey level per pixel, the colour map as the palette, transparency in the
tRNS chunk) by :func:`palette_png`: 0.1 ms and ~2 kB for a flood tile, where rio-tiler's
``ImageData.render`` with an intervals colour map expands to RGBA first (4 ms; 12–19 ms for a
hillshade tile) and GDAL's PNG driver took 0.9 ms.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import struct
import tempfile
import threading
import warnings
import zlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
from morecantile import Tile
from rasterio.crs import CRS
from rasterio.io import DatasetReader
from rasterio.transform import from_bounds
from rasterio.warp import transform_bounds
from rio_tiler.constants import WEB_MERCATOR_TMS
from rio_tiler.errors import NoOverviewWarning, TileOutsideBounds
from rio_tiler.io import Reader
from rio_tiler.models import ImageData

from floodwarn.errors import NotFoundError
from floodwarn.io.forecast_outputs import (
    DEPTH_FILE,
    DEPTH_WEB_MERCATOR_FILE,
    FIRST_FLOODING_FILE,
    FIRST_FLOODING_WEB_MERCATOR_FILE,
)
from floodwarn.io.raster import read_band, write_cog
from floodwarn.io.terrain_files import METADATA_FILE
from floodwarn.logs import get_logger, timed_step
from floodwarn.terrain.hillshade import SUN_ALTITUDE_DEG, SUN_AZIMUTH_DEG, hillshade_bytes

log = get_logger(__name__)

TILE_SIZE = 256
#: Deepest zoom served (≈ 2 cm pixels): MapLibre over-zooms past what a 90 m grid shows.
MAX_ZOOM = 22
#: Rendered tiles kept in memory (bytes of PNG): the demo run's 576 flooded depth tiles at
#: zoom 8–12 take 0.5 MB, a hillshade tile 30–50 kB.
TILE_CACHE_BYTES = 64 * 2**20
#: Browsers keep a run's tiles this long (its files never change once it has succeeded; the
#: bound only matters when a store is reset and run ids are reused).
RUN_TILE_MAX_AGE_S = 3600
#: The hillshade changes only with the terrain model.
HILLSHADE_MAX_AGE_S = 86400
#: Threads that render tiles (a pool of their own, first come first served). Rendering is
#: CPU-bound — GDAL releases the interpreter lock while it warps, Python holds it for the
#: rest — so more threads than cores only contend: on 2 cores with 20 requests in flight,
#: Starlette's 40-thread pool raised the CPU time per tile from 8 to 13 ms and served late
#: arrivals before early ones.
RENDER_THREADS = os.cpu_count() or 2
#: Open raster handles kept per thread (path, overview level): opening a COG parses its
#: header (~1.5 ms, a sixth of a tile's cost).
HANDLES_PER_THREAD = 16
#: Opening a run's raster needs no listing of its folder (no sidecar .ovr/.aux.xml files).
GDAL_OPEN_OPTIONS = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}
#: Equatorial circumference of the Web Mercator sphere (m) over the pixels of zoom 0.
_ZOOM0_PIXEL_M = 2 * math.pi * 6378137.0 / TILE_SIZE
WEB_MERCATOR_EPSG = 3857
WGS84 = CRS.from_epsg(4326)
HILLSHADE_FILE_PREFIX = "hillshade_"

RunLayer = Literal["depth", "first_flooding"]
RUN_LAYER_FILES: dict[str, str] = {"depth": DEPTH_FILE, "first_flooding": FIRST_FLOODING_FILE}
#: Their Web Mercator copies, read in preference (runs made before them have none).
RUN_LAYER_WEB_MERCATOR_FILES: dict[str, str] = {
    "depth": DEPTH_WEB_MERCATOR_FILE, "first_flooding": FIRST_FLOODING_WEB_MERCATOR_FILE}
RGBA = tuple[int, int, int, int]


@dataclass(frozen=True)
class ColourClass:
    """Values from ``lower`` up to the next class's ``lower`` are drawn in ``rgba``."""

    lower: float
    rgba: RGBA
    label_es: str
    label_en: str

    @property
    def hex(self) -> str:
        """#rrggbbaa."""
        return "#" + "".join(f"{channel:02x}" for channel in self.rgba)


def _colour(hex_rgb: str) -> RGBA:
    return (int(hex_rgb[1:3], 16), int(hex_rgb[3:5], 16), int(hex_rgb[5:7], 16), 255)


def _classes(edges: Sequence[float], colours: Sequence[str],
             labels: Sequence[tuple[str, str]]) -> tuple[ColourClass, ...]:
    return tuple(ColourClass(lower, _colour(colour), es, en)
                 for lower, colour, (es, en) in zip(edges, colours, labels, strict=True))


DEPTH_CLASSES = _classes(
    (0.05, 0.15, 0.5, 1.0, 2.0, 3.0),
    ("#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#084594"),
    (("0.05–0.15 m: hasta el tobillo", "0.05–0.15 m: up to the ankle"),
     ("0.15–0.5 m: hasta la rodilla", "0.15–0.5 m: up to the knee"),
     ("0.5–1 m: hasta la cintura", "0.5–1 m: up to the waist"),
     ("1–2 m: hasta la cabeza de un adulto", "1–2 m: up to an adult's head"),
     ("2–3 m: sobre la cabeza, hasta el alero de una casa de un piso",
      "2–3 m: over an adult's head, up to a one-storey house's eaves"),
     ("más de 3 m: sobre el techo de una casa de un piso",
      "over 3 m: over a one-storey house's roof")))
FIRST_FLOODING_CLASSES = _classes(
    (0.0, 3.0, 6.0, 12.0, 24.0, 48.0, 72.0),
    ("#b10026", "#e31a1c", "#fc4e2a", "#fd8d3c", "#feb24c", "#fed976", "#ffffb2"),
    (("en menos de 3 h", "within 3 h"), ("en 3–6 h", "in 3–6 h"), ("en 6–12 h", "in 6–12 h"),
     ("en 12–24 h", "in 12–24 h"), ("en 24–48 h", "in 24–48 h"), ("en 48–72 h", "in 48–72 h"),
     ("después de 72 h", "after 72 h")))
RUN_LAYER_CLASSES: dict[str, tuple[ColourClass, ...]] = {
    "depth": DEPTH_CLASSES, "first_flooding": FIRST_FLOODING_CLASSES}
#: Grey levels of the hillshade raster, for the legend (the PNG is the raster's grey).
HILLSHADE_STOPS = tuple(ColourClass(value, (value, value, value, 255), es, en)
                        for value, es, en in (
    (1, "sombra", "shadow"),
    (181, "terreno plano", "flat ground"),
    (255, "ladera iluminada (luz del noroeste)", "slope facing the light (from the north-west)")))


def legend() -> dict[str, Any]:
    """The colour maps of every tile layer: title, units, URL template, what is left
    transparent, and the stops (class lower edge, #rrggbbaa, Spanish and English label)."""
    def stops(classes: Sequence[ColourClass]) -> list[dict[str, Any]]:
        return [{"value": c.lower, "color": c.hex, "label": {"es": c.label_es, "en": c.label_en}}
                for c in classes]

    return {
        "depth": {
            "title": {"es": "Profundidad máxima del agua", "en": "Peak flood depth"},
            "units": "m",
            "tiles": "/runs/{run_id}/tiles/depth/{z}/{x}/{y}.png",
            "not_drawn": {"es": "menos de 0.05 m (seco), cauces de ríos y lagos",
                          "en": "under 0.05 m (dry), river channels and lakes"},
            "stops": stops(DEPTH_CLASSES),
        },
        "first_flooding": {
            "title": {"es": "Horas hasta la primera inundación",
                      "en": "Hours until first flooding"},
            "units": "h",
            "tiles": "/runs/{run_id}/tiles/first_flooding/{z}/{x}/{y}.png?hour={hour}",
            "not_drawn": {"es": "lo que no se inunda, o se inunda después de la hora elegida",
                          "en": "land that does not flood, or floods after the chosen hour"},
            "stops": stops(FIRST_FLOODING_CLASSES),
        },
        "hillshade": {
            "title": {"es": "Relieve sombreado", "en": "Hillshade"},
            "units": "",
            "tiles": "/terrain/tiles/hillshade/{z}/{x}/{y}.png",
            "not_drawn": {"es": "mar y fuera del modelo de terreno",
                          "en": "sea and outside the terrain model"},
            "stops": stops(HILLSHADE_STOPS),
        },
    }


@dataclass(frozen=True)
class RenderedTile:
    png: bytes
    etag: str

    @classmethod
    def of(cls, png: bytes) -> RenderedTile:
        return cls(png, '"' + hashlib.blake2b(png, digest_size=12).hexdigest() + '"')


TileKey = tuple[Any, ...]


class TileCache:
    """Rendered tiles, least recently used dropped first once their PNG bytes pass
    ``max_bytes``. Thread-safe; ``hits`` and ``misses`` count lookups."""

    def __init__(self, max_bytes: int = TILE_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._tiles: OrderedDict[TileKey, RenderedTile] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._tiles)

    def get(self, key: TileKey) -> RenderedTile | None:
        with self._lock:
            tile = self._tiles.get(key)
            if tile is None:
                self.misses += 1
                return None
            self._tiles.move_to_end(key)
            self.hits += 1
            return tile

    def put(self, key: TileKey, tile: RenderedTile) -> None:
        if len(tile.png) > self.max_bytes:
            return
        with self._lock:
            old = self._tiles.pop(key, None)
            if old is not None:
                self.bytes -= len(old.png)
            self._tiles[key] = tile
            self.bytes += len(tile.png)
            while self.bytes > self.max_bytes:
                _, dropped = self._tiles.popitem(last=False)
                self.bytes -= len(dropped.png)


class _ThreadHandles(threading.local):
    """Open datasets of this thread: GDAL handles must not be shared between threads."""

    def __init__(self) -> None:
        self.open: OrderedDict[tuple[str, int | None], DatasetReader] = OrderedDict()


_HANDLES = _ThreadHandles()


def _dataset(path: Path, overview_level: int | None) -> DatasetReader:
    """This thread's open handle on ``path`` (at ``overview_level``; None: full resolution).
    Safe to keep: a run's rasters and a hillshade file never change once written."""
    key = (str(path), overview_level)
    handles = _HANDLES.open
    dataset = handles.get(key)
    if dataset is not None:
        handles.move_to_end(key)
        return dataset
    options = {} if overview_level is None else {"overview_level": overview_level}
    with rasterio.Env(**GDAL_OPEN_OPTIONS):
        dataset = rasterio.open(path, **options)
    handles[key] = dataset
    if len(handles) > HANDLES_PER_THREAD:
        handles.popitem(last=False)[1].close()
    return dataset


def tile_ground_resolution_m(z: int, y: int) -> float:
    """Ground size (m) of one pixel of tile row ``y`` at zoom ``z``, at the row's middle
    latitude: Web Mercator's pixel size shrinks by cos(latitude) on the ground (Snyder 1987,
    *Map Projections — A Working Manual*, USGS PP 1395, eq. 7-2: scale factor sec φ)."""
    latitude = math.atan(math.sinh(math.pi * (1 - 2 * (y + 0.5) / 2**z)))
    return _ZOOM0_PIXEL_M / 2**z * math.cos(latitude)


@dataclass(frozen=True)
class _GridFacts:
    """What picking a tile's overview needs to know of a raster, read once per file."""

    cell: float  # full-resolution cell size, in the CRS's units (metres)
    factors: tuple[int, ...]  # overview decimation factors, finest first
    web_mercator: bool  # EPSG:3857: a map tile is a block of the file (or of an overview)


_FACTS: dict[str, _GridFacts] = {}


def _grid_facts(path: Path) -> _GridFacts:
    facts = _FACTS.get(str(path))
    if facts is None:  # a race between threads computes the same facts twice
        full = _dataset(path, None)
        facts = _FACTS[str(path)] = _GridFacts(
            abs(full.res[0]), tuple(full.overviews(1)),
            full.crs is not None and full.crs.to_epsg() == WEB_MERCATOR_EPSG)
    return facts


def _source_for_tile(path: Path, z: int, y: int) -> DatasetReader:
    """The dataset a tile is read from: the coarsest overview whose cells are no larger than
    the tile's pixels (full resolution when none is), so a zoom-8 tile of a country-size
    90 m grid reads a 360 m overview, not 2 000 × 2 000 full-resolution cells.

    A Web Mercator (GoogleMapsCompatible) copy is compared in Mercator metres, so zoom z
    reads the overview made for zoom z, whose pixels are the tile's; a projected grid (UTM)
    with the tile's ground resolution (:func:`tile_ground_resolution_m`). Assumes the CRS
    is in metres (the terrain model's grids are projected).
    """
    facts = _grid_facts(path)
    if facts.web_mercator:  # a relative tolerance: the pixel sizes are equal but for rounding
        pixel = _ZOOM0_PIXEL_M / 2**z * (1 + 1e-9)
    else:
        pixel = tile_ground_resolution_m(z, y)
    level = None
    for index, factor in enumerate(facts.factors):
        if facts.cell * factor <= pixel:
            level = index
    return _dataset(path, level)


def read_tile(path: Path, z: int, x: int, y: int, *, reproject_method: str = "nearest",
              what: str) -> ImageData:
    """Tile z/x/y (Web Mercator, 256 px) of the raster at ``path``, NaN/masked outside it;
    ``reproject_method`` resamples. The raster may be in any projected CRS; a
    GoogleMapsCompatible Web Mercator COG (:func:`floodwarn.io.raster.write_web_mercator_cog`)
    is read without warping: rio-tiler sees the tile's CRS is the raster's and reads the
    tile's window of the overview made for its zoom (one 256 × 256 block; past the file's
    full-resolution zoom, a smaller window magnified by ``reproject_method``).

    NotFoundError when the tile is outside the raster, naming ``what`` and its extent.
    """
    source = _source_for_tile(path, z, y)
    with warnings.catch_warnings():  # an overview level has no overviews of its own
        warnings.simplefilter("ignore", NoOverviewWarning)
        reader = Reader(None, dataset=source)
    try:
        if _grid_facts(path).web_mercator:
            return reader.tile(x, y, z, tilesize=TILE_SIZE, resampling_method=reproject_method)
        bounds = WEB_MERCATOR_TMS.xy_bounds(Tile(x=x, y=y, z=z))
        # Warp straight to the tile's grid: rio-tiler would otherwise warp at the source's
        # resolution and decimate afterwards.
        tile_grid = {"transform": from_bounds(*bounds, TILE_SIZE, TILE_SIZE),
                     "width": TILE_SIZE, "height": TILE_SIZE}
        return reader.tile(x, y, z, tilesize=TILE_SIZE, reproject_method=reproject_method,
                           vrt_options=tile_grid)
    except TileOutsideBounds as exc:
        raise outside_error(z, x, y, what, lon_lat_bounds(source)) from exc


LonLatBounds = tuple[float, float, float, float]


def lon_lat_bounds(dataset: DatasetReader) -> LonLatBounds:
    """West, south, east, north (degrees) of ``dataset``, its edges densified (21 points a
    side) so that a projected raster's curved outline is enclosed, as rio-tiler does."""
    return transform_bounds(dataset.crs, WGS84, *dataset.bounds, densify_pts=21)


def tile_overlaps(bounds: LonLatBounds, z: int, x: int, y: int) -> bool:
    """Whether tile z/x/y overlaps ``bounds`` (an area, not an edge only)."""
    tile = WEB_MERCATOR_TMS.bounds(Tile(x=x, y=y, z=z))
    west, south, east, north = bounds
    return tile.left < east and tile.right > west and tile.bottom < north and tile.top > south


def outside_error(z: int, x: int, y: int, what: str, bounds: LonLatBounds) -> NotFoundError:
    west, south, east, north = bounds
    return NotFoundError(
        f"tile {z}/{x}/{y} is outside {what}, which covers longitude {west:.3f} to "
        f"{east:.3f}, latitude {south:.3f} to {north:.3f}.")


#: zlib level of the tiles' PNG data: level 1 encodes a flood tile in 0.1 ms, level 6 (GDAL's
#: and libpng's default) in 0.4 ms for a fifth fewer bytes (1.8 against 2.3 kB for a zoom-11
#: tile of the demo flood); the tiles are cached and small either way.
PNG_ZLIB_LEVEL = 1
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data)))


@lru_cache(maxsize=8)
def _palette_chunks(palette: tuple[RGBA, ...]) -> bytes:
    return (_png_chunk(b"PLTE", bytes(channel for rgba in palette for channel in rgba[:3]))
            + _png_chunk(b"tRNS", bytes(rgba[3] for rgba in palette)))


def palette_png(indices: np.ndarray, palette: Sequence[RGBA]) -> bytes:
    """A PNG whose pixel values (uint8) index ``palette`` (RGBA colours; alpha goes to the
    PNG's tRNS chunk).

    Written directly (PNG, W3C Recommendation, 2nd ed. 2003, §§ 5, 11.2, 12.8: IHDR of colour
    type 3, PLTE, tRNS, one zlib IDAT of the rows each led by filter type 0, "None", the
    filter the specification recommends for palette images; IEND): 0.1 ms for a tile, where
    GDAL's PNG driver through a rasterio MemoryFile took 0.9 ms.
    """
    rows, cols = indices.shape
    scanlines = np.zeros((rows, cols + 1), np.uint8)  # column 0: each row's filter byte
    scanlines[:, 1:] = indices
    return b"".join((
        _PNG_SIGNATURE,
        _png_chunk(b"IHDR", struct.pack(">IIBBBBB", cols, rows, 8, 3, 0, 0, 0)),
        _palette_chunks(tuple(palette)),
        _png_chunk(b"IDAT", zlib.compress(scanlines.tobytes(), PNG_ZLIB_LEVEL)),
        _png_chunk(b"IEND", b"")))


def layer_palette(classes: Sequence[ColourClass]) -> tuple[RGBA, ...]:
    """Index 0 transparent, index i the colour of ``classes[i − 1]``."""
    return ((0, 0, 0, 0), *(c.rgba for c in classes))


_EMPTY: list[bytes] = []


def empty_png() -> bytes:
    """A fully transparent tile (made once: many tiles of a country hold no water)."""
    if not _EMPTY:
        _EMPTY.append(palette_png(np.zeros((TILE_SIZE, TILE_SIZE), np.uint8), [(0, 0, 0, 0)]))
    return _EMPTY[0]


def render_run_layer(path: Path, layer: str, z: int, x: int, y: int, *, hour: float | None,
                     what: str) -> bytes:
    """PNG of tile z/x/y of a run's ``layer`` raster in its colour map; for
    ``first_flooding``, only cells first flooded at or before ``hour`` (all when None)."""
    image = read_tile(path, z, x, y, what=what)
    classes = RUN_LAYER_CLASSES[layer]
    values = image.array.data[0]  # float32, NaN at nodata and outside the raster
    # Class i + 1 holds lower[i] ≤ value < lower[i + 1]: the count of lower edges at or
    # below the value (0: not drawn; NaN compares false, so it is 0 too). Six comparisons
    # cost a seventh of np.digitize's sort-based search on a tile.
    indices = np.zeros(values.shape, np.uint8)
    for colour in classes:
        indices += values >= colour.lower
    indices[np.ma.getmaskarray(image.array)[0]] = 0
    if hour is not None and layer == "first_flooding":
        indices[values > hour] = 0
    if not indices.any():
        return empty_png()
    return palette_png(indices, layer_palette(classes))


#: Grey level v (1…255) of the hillshade drawn as grey v; 0, its nodata, transparent.
GREYS: tuple[RGBA, ...] = ((0, 0, 0, 0), *((v, v, v, 255) for v in range(1, 256)))


def render_hillshade(path: Path, z: int, x: int, y: int) -> bytes:
    """PNG of hillshade tile z/x/y in greys; bilinear, since past zoom 11 a 90 m grid is
    magnified and nearest neighbour would show its cells as blocks."""
    image = read_tile(path, z, x, y, reproject_method="bilinear",
                      what="the terrain model's hillshade")
    masked = np.ma.getmaskarray(image.array)[0]
    if masked.all():
        return empty_png()
    return palette_png(np.where(masked, 0, image.array.data[0]).astype(np.uint8), GREYS)


def hillshade_file(terrain_dir: Path, cache_dir: Path) -> Path:
    """The hillshade COG of the terrain model in ``terrain_dir``, made on first use under
    ``cache_dir`` and named by the hash of its ``terrain.json`` (a rebuilt terrain gets a new
    file). Written under a unique temporary name and renamed, so another process never opens
    a half-written file; two processes that race both compute it and the last rename wins
    with identical content.

    NotFoundError when there is no terrain model (so no hillshade; the map shows its other
    layers on a blank ground).
    """
    metadata = terrain_dir / METADATA_FILE
    if not metadata.exists():
        raise NotFoundError(
            f"the service has no terrain model at {terrain_dir} to draw a hillshade of: set "
            "FLOODWARN_TERRAIN_DIR to a folder made by `floodwarn terrain build`, or start "
            "`floodwarn serve` once without --no-demo to build the demo terrain.")
    digest = hashlib.sha256(metadata.read_bytes()).hexdigest()[:16]
    target = cache_dir / f"{HILLSHADE_FILE_PREFIX}{digest}.tif"
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with timed_step(log, "hillshade", cells=None) as figures:
        elevation, grid, nodata, _ = read_band(terrain_dir / "conditioned.tif")
        if nodata is not None and not math.isnan(nodata):
            elevation = np.where(elevation == nodata, np.nan, elevation.astype(np.float32))
        grey = hillshade_bytes(elevation, grid.cellsize_m, abs(grid.transform.e))
        figures["cells"] = grey.size
        handle, name = tempfile.mkstemp(dir=cache_dir, prefix=f".{target.stem}.", suffix=".tif")
        os.close(handle)
        temporary = Path(name)
        try:
            write_cog(temporary, grey, grid, nodata=0, kind="continuous",
                      tags={"terrain_json_sha256": digest, "sun_azimuth_deg": SUN_AZIMUTH_DEG,
                            "sun_altitude_deg": SUN_ALTITUDE_DEG},
                      description="hillshade of the conditioned DEM (Horn 1981), grey 1–255")
            temporary.replace(target)
        finally:
            temporary.unlink(missing_ok=True)
    return target


class MapTiles:
    """The service's tile state: the rendered-tile cache, the output folders of succeeded
    runs (they never move) and the hillshade file."""

    def __init__(self, cache_bytes: int = TILE_CACHE_BYTES) -> None:
        self.cache = TileCache(cache_bytes)
        self._run_dirs: dict[int, Path] = {}
        self._layer_files: dict[tuple[int, str], tuple[Path, LonLatBounds]] = {}
        self._hillshade: Path | None = None
        self._hillshade_lock = threading.Lock()

    def run_dir(self, run_id: int, lookup: Callable[[], Path]) -> Path:
        """The output folder of succeeded run ``run_id`` (``lookup`` asks the store once)."""
        out_dir = self._run_dirs.get(run_id)
        if out_dir is None:
            out_dir = self._run_dirs[run_id] = lookup()
        return out_dir

    def run_layer_file(self, run_id: int, layer: str, lookup: Callable[[], Path]
                       ) -> tuple[Path, LonLatBounds]:
        """The raster tiles of run ``run_id``'s ``layer`` are read from — its Web Mercator
        copy, or for a run made before those, its UTM COG — and the longitude/latitude
        bounds of the UTM COG, the run's own extent (the copy's is padded to whole tiles).
        Looked for once."""
        found = self._layer_files.get((run_id, layer))
        if found is None:
            out_dir = self.run_dir(run_id, lookup)
            utm = out_dir / RUN_LAYER_FILES[layer]
            if not utm.exists():
                raise NotFoundError(f"run {run_id} has no {layer} raster.")
            copy = out_dir / RUN_LAYER_WEB_MERCATOR_FILES[layer]
            found = self._layer_files[run_id, layer] = (
                copy if copy.exists() else utm, lon_lat_bounds(_dataset(utm, None)))
        return found

    def hillshade(self, terrain_dir: Path, cache_dir: Path) -> Path:
        """The hillshade file, computed at most once by this process."""
        if self._hillshade is None:
            with self._hillshade_lock:
                if self._hillshade is None:
                    self._hillshade = hillshade_file(terrain_dir, cache_dir)
        return self._hillshade

    def render_run_tile(self, run_id: int, layer: str, z: int, x: int, y: int,
                        hour: float | None, lookup: Callable[[], Path]) -> RenderedTile:
        """Render tile z/x/y of run ``run_id``'s ``layer`` and cache it (blocking: GDAL)."""
        path, bounds = self.run_layer_file(run_id, layer, lookup)
        what = f"run {run_id}'s {layer} raster"
        if not tile_overlaps(bounds, z, x, y):  # no read: a map asks for many such tiles
            raise outside_error(z, x, y, what, bounds)
        tile = RenderedTile.of(render_run_layer(path, layer, z, x, y, hour=hour, what=what))
        self.cache.put(run_tile_key(run_id, layer, z, x, y, hour), tile)
        return tile

    def render_hillshade_tile(self, path: Path, z: int, x: int, y: int) -> RenderedTile:
        """Render tile z/x/y of the hillshade file at ``path`` and cache it (blocking)."""
        tile = RenderedTile.of(render_hillshade(path, z, x, y))
        self.cache.put(hillshade_tile_key(z, x, y), tile)
        return tile


_POOL: list[ThreadPoolExecutor] = []
_POOL_LOCK = threading.Lock()


async def in_render_pool(render: Callable[..., RenderedTile], *args: Any) -> RenderedTile:
    """``render(*args)`` on the process's tile-rendering threads (see
    :data:`RENDER_THREADS`), awaited without blocking the event loop."""
    with _POOL_LOCK:
        if not _POOL:
            _POOL.append(ThreadPoolExecutor(RENDER_THREADS, thread_name_prefix="tiles"))
    return await asyncio.get_running_loop().run_in_executor(_POOL[0], partial(render, *args))


def run_tile_key(run_id: int, layer: str, z: int, x: int, y: int,
                 hour: float | None) -> TileKey:
    # ``hour`` changes only the first-flooding layer; for depth it must not split the cache.
    return ("run", run_id, layer, z, x, y, hour if layer == "first_flooding" else None)


def hillshade_tile_key(z: int, x: int, y: int) -> TileKey:
    return ("hillshade", z, x, y)
