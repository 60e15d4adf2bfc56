"""A reproducible SYNTHETIC stand-in DEM for the El Salvador demo domain.

No 30–90 m DEM of El Salvador can be downloaded where floodwarn is developed, so the demo runs
on a stand-in made from real coarse data plus synthetic detail:

1. the real coarse relief (5 arc-min ≈ 9 km global altitude grid shipped in ``gis_data/dem``),
   interpolated bicubically to the 90 m grid (sea set to 0 m first so the relief ramps down to
   the coast);
2. the real coastline and borders (``gis_data/admin/Central_America.json``): cells outside every
   country are sea, i.e. nodata;
3. multiscale fractal detail: a Gaussian random field with power spectrum ∝ k^-β (spectral
   synthesis, Saupe 1988), restricted to wavelengths shorter than twice the coarse cell so the
   real large-scale relief is kept, with an amplitude that grows with elevation (rugged
   mountains, gentle coastal plain);
4. one pass of fluvial incision, so that the surface drains like an eroded landscape instead of
   a field of closed basins: the detailed surface is depression-filled and every cell is lowered
   by k·√A along its drainage (A upstream area in km²; the square-root scaling of channel depth
   with drainage area of hydraulic geometry, Leopold & Maddock 1953), widened to a valley of
   three cells;
5. metre-scale speckle like the noise of radar DEMs (Rodríguez et al. 2006), which leaves the
   small pits real DEMs have.

Everything is deterministic for a given seed. The result is NOT real terrain: the GeoTIFF carries
``floodwarn_synthetic=true`` and every product built from it says so.

References
----------
Saupe, D. (1988) Algorithms for random fractals. In: Peitgen & Saupe (eds.), The Science of
Fractal Images, Springer, 71-136.
Leopold, L.B. & Maddock, T. (1953) The hydraulic geometry of stream channels and some
physiographic implications. USGS Professional Paper 252.
Rodríguez, E., Morris, C.S., Belz, J.E. (2006) A global assessment of the SRTM performance.
Photogrammetric Engineering & Remote Sensing 72(3), 249-260.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import Transformer
from rasterio.features import rasterize
from rasterio.warp import transform_bounds
from scipy import ndimage

from floodwarn import __version__
from floodwarn.io.gis_data import DEMO_DOMAIN_BBOX, layer_path, load_countries
from floodwarn.io.raster import write_cog
from floodwarn.logs import get_logger, timed_step
from floodwarn.terrain.accumulation import flow_accumulation
from floodwarn.terrain.conditioning import fill_depressions, flow_directions
from floodwarn.terrain.grid import Grid

log = get_logger(__name__)

STANDIN_VERSION = "2"
STANDIN_CRS = "EPSG:32616"


@dataclass(frozen=True)
class StandinParameters:
    """Parameters of the stand-in DEM (all recorded in the file's metadata)."""

    bbox_lonlat: tuple[float, float, float, float] = DEMO_DOMAIN_BBOX
    cellsize_m: float = 90.0
    seed: int = 20200531  # Tropical Storm Amanda made landfall on 31 May 2020
    spectral_exponent: float = 3.0
    detail_cutoff_m: float = 18_000.0
    amplitude_base_m: float = 4.0
    amplitude_per_m: float = 0.08
    incision_m_per_sqrt_km2: float = 4.0
    incision_min_area_km2: float = 0.05
    speckle_m: float = 1.0
    speckle_cutoff_m: float = 400.0
    min_land_elevation_m: float = 0.5


def standin_grid(params: StandinParameters) -> Grid:
    """The projected 90 m grid covering the demo domain."""
    west, south, east, north = transform_bounds("EPSG:4326", STANDIN_CRS, *params.bbox_lonlat)
    size = params.cellsize_m
    west, north = np.floor(west / size) * size, np.ceil(north / size) * size
    cols = int(np.ceil((east - west) / size))
    rows = int(np.ceil((north - south) / size))
    return Grid(
        shape=(rows, cols),
        transform=Affine(size, 0, west, 0, -size, north),
        crs=rasterio.crs.CRS.from_user_input(STANDIN_CRS).to_wkt(),
    )


def _coarse_relief(grid: Grid) -> np.ndarray:
    with rasterio.open(layer_path("coarse_dem")) as src:
        coarse = src.read(1).astype(np.float64)
        inverse = ~src.transform
        nodata = src.nodata
    coarse[coarse == nodata] = 0.0
    rows, cols = grid.shape
    x = grid.transform.c + (np.arange(cols) + 0.5) * grid.transform.a
    y = grid.transform.f + (np.arange(rows) + 0.5) * grid.transform.e
    to_lonlat = Transformer.from_crs(STANDIN_CRS, "EPSG:4326", always_xy=True)
    xx, yy = np.meshgrid(x, y)
    lon, lat = to_lonlat.transform(xx, yy)
    del xx, yy
    col_f, row_f = inverse @ (lon, lat)
    # map_coordinates samples at integer positions = pixel centres, hence the half-cell shift.
    return ndimage.map_coordinates(coarse, [row_f - 0.5, col_f - 0.5], order=3, mode="nearest")


def _fractal_detail(
    shape: tuple[int, int], params: StandinParameters, *, cutoff_m: float, seed: int
) -> np.ndarray:
    """Unit-variance fractal field with only wavelengths shorter than ``cutoff_m``."""
    rng = np.random.default_rng(seed)
    rows, cols = shape
    fy = np.fft.fftfreq(rows, d=params.cellsize_m)[:, None]
    fx = np.fft.rfftfreq(cols, d=params.cellsize_m)[None, :]
    k = np.hypot(fy, fx)
    k[0, 0] = 1.0
    amplitude = k ** (-params.spectral_exponent / 2)
    amplitude *= 1.0 - np.exp(-((k * cutoff_m) ** 2))  # keep the coarser relief
    amplitude[0, 0] = 0.0
    noise = rng.normal(size=k.shape) + 1j * rng.normal(size=k.shape)
    field = np.fft.irfft2(noise * amplitude, s=shape)
    field /= field.std()
    return field


def make_standin_dem(params: StandinParameters | None = None) -> tuple[np.ndarray, Grid]:
    """Build the stand-in DEM in memory: float32 m, NaN = sea, on :func:`standin_grid`."""
    params = params or StandinParameters()
    grid = standin_grid(params)
    with timed_step(log, "standin_relief", cells=grid.n_cells):
        relief = _coarse_relief(grid)
    with timed_step(log, "standin_detail"):
        detail = _fractal_detail(
            grid.shape, params, cutoff_m=params.detail_cutoff_m, seed=params.seed
        )
    amplitude = params.amplitude_base_m + params.amplitude_per_m * np.clip(relief, 0, None)
    z = relief + amplitude * detail
    del detail, amplitude, relief
    with timed_step(log, "standin_coastline"):
        countries = load_countries().to_crs(STANDIN_CRS)
        land = rasterize(
            ((geom, 1) for geom in countries.geometry),
            out_shape=grid.shape,
            transform=grid.transform,
            fill=0,
            dtype="uint8",
        ).astype(bool)
    z = np.maximum(z, params.min_land_elevation_m)
    z[~land] = np.nan
    with timed_step(log, "standin_incision"):
        z = _incise(z.astype(np.float32), grid, params)
    with timed_step(log, "standin_speckle"):
        speckle = _fractal_detail(
            grid.shape, params, cutoff_m=params.speckle_cutoff_m, seed=params.seed + 1
        )
        z = np.maximum(z + params.speckle_m * speckle, params.min_land_elevation_m)
    return z.astype(np.float32), grid


def _incise(z: np.ndarray, grid: Grid, params: StandinParameters) -> np.ndarray:
    """Lower every cell by k·√A along the drainage of the filled surface (valleys 3 cells wide)."""
    valid = ~np.isnan(z)
    filled, _ = fill_depressions(z)
    flowdir, _ = flow_directions(filled)
    area_km2 = flow_accumulation(flowdir).astype(np.float64) * grid.cell_area_km2
    depth = np.where(
        area_km2 >= params.incision_min_area_km2,
        params.incision_m_per_sqrt_km2 * np.sqrt(area_km2),
        0.0,
    )
    depth = np.maximum(depth, 0.5 * ndimage.grey_dilation(depth, size=3))
    return np.where(valid, np.maximum(filled - depth, params.min_land_elevation_m), np.nan)


def write_standin_dem(path: str | Path, params: StandinParameters | None = None) -> Path:
    """Generate the stand-in DEM and write it as a COG tagged as synthetic."""
    params = params or StandinParameters()
    z, grid = make_standin_dem(params)
    path = Path(path)
    write_cog(
        path,
        z,
        grid,
        nodata=float("nan"),
        kind="continuous",
        description="SYNTHETIC stand-in elevation, m (not real terrain)",
        tags={
            "floodwarn_synthetic": "true",
            "floodwarn_standin_version": STANDIN_VERSION,
            "floodwarn_description": (
                "SYNTHETIC stand-in DEM for the El Salvador demo domain: real 5' relief "
                "(pvlib altitude grid), real coastline (geoBoundaries/Natural Earth), "
                "synthetic fractal detail. Not real terrain."
            ),
            "floodwarn_parameters": str(asdict(params)),
            "floodwarn_software_version": __version__,
        },
    )
    return path


def standin_is_current(path: Path) -> bool:
    """True when ``path`` is a stand-in DEM of the current generator version."""
    if not path.exists():
        return False
    try:
        with rasterio.open(path) as src:
            tags = src.tags()
    except rasterio.errors.RasterioIOError:
        return False
    return (
        tags.get("floodwarn_synthetic") == "true"
        and tags.get("floodwarn_standin_version") == STANDIN_VERSION
    )


def synthetic_eroded_terrain(
    n_rows: int, n_cols: int, *, cellsize_m: float = 30.0, relief_m: float = 1500.0, seed: int = 1
) -> tuple[np.ndarray, Grid]:
    """A SYNTHETIC eroded landscape for benchmarks: fractal relief, fluvial incision, speckle.

    Same recipe as the stand-in DEM (steps 3–5 of this module) on a rectangle with a regional
    slope towards the south edge (the coast); no nodata. Deterministic for a given seed.
    """
    params = StandinParameters(cellsize_m=cellsize_m, seed=seed)
    shape = (n_rows, n_cols)
    field = _fractal_detail(shape, params, cutoff_m=1e12, seed=seed)
    rows = np.arange(n_rows, dtype=np.float64)[:, None]
    z = relief_m * (0.5 + 0.15 * field) * (1.0 - 0.6 * rows / n_rows)
    del field
    grid = Grid(
        shape=shape,
        transform=Affine(cellsize_m, 0, 200_000, 0, -cellsize_m, 1_600_000),
        crs=rasterio.crs.CRS.from_user_input(STANDIN_CRS).to_wkt(),
    )
    z = _incise(np.maximum(z, params.min_land_elevation_m).astype(np.float32), grid, params)
    speckle = _fractal_detail(shape, params, cutoff_m=params.speckle_cutoff_m, seed=seed + 1)
    z = np.maximum(z + params.speckle_m * speckle, params.min_land_elevation_m)
    return z.astype(np.float32), grid
