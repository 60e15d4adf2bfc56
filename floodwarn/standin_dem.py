"""A reproducible SYNTHETIC stand-in DEM for the El Salvador demo domain.

No 30–90 m DEM of El Salvador can be downloaded where floodwarn is developed, so the demo runs
on a stand-in made from real coarse data plus synthetic detail, shaped by rules of fluvial
geomorphology so that a terrain model built on it has believable rivers, valleys and lakes:

1. **Base surface.** The real coarse relief (5 arc-min ≈ 9 km global altitude grid shipped in
   ``gis_data/dem``, sea set to 0 m) interpolated bicubically to the 90 m grid, plus multiscale
   fractal detail: a Gaussian random field with power spectrum ∝ k^-β (spectral synthesis,
   Saupe 1988), restricted to wavelengths shorter than twice the coarse cell, with an
   amplitude growing with elevation. Cells outside every country of the real coastline and
   borders (``gis_data/admin/Central_America.json``) are sea (nodata). A coastal-plain ramp
   (``coastal_rise_m`` over ``coastal_rise_length_m`` from the shore) is added so that rivers
   run to the sea, and ground below ``min_land_elevation_m`` is floored smoothly, keeping the
   order of its elevations: no clamped flats, no planes.
2. **Drainage through depressions, not across filled flats** — the cause of the striped
   "rivers" of stand-in version 2. The base surface is full of closed depressions (the 9 km
   relief closes valleys, the fractal detail adds pits): a quarter of the land, up to 930 km²
   and 180 m deep in one piece (the middle Lempa valley). Version 2 filled them and incised
   the D8 network of the filled surface; D8 drains a filled flat along shortest paths to its
   outlet, i.e. in parallel straight lines, which became parallel straight valleys. Here the
   drainage tree is the least-cost path of Metz et al. (2011) — Priority-Flood on the cells'
   own elevations (Barnes et al. 2014), so that each cell drains along the lowest ground and
   out of a depression through its lowest pass — and the surface is carved along it (Soille
   2004) so that elevation falls along every path. Nothing is filled.
3. **Graded river profiles.** Channels start at ``channel_area_km2``. Their bed is the carved
   surface smoothed along the network (zero-phase exponential smoothing, Gustafsson 1996, over
   a length growing with drainage area), then graded downstream-first so that the bed slope
   stays within k·A^-θ bounds of the slope–area relation (Flint 1974; θ = 0.45, steepness
   bounds after Wobus et al. 2006): concave profiles, ~10⁻² in headwaters, 10⁻⁴–10⁻³ on the
   lowland rivers, no flats, no waterfalls on large rivers. Hillslopes follow the bed they
   drain to, the change fading out uphill.
4. **Channels, floodplains and valley walls that scale with the river.** Bankfull width
   W = 2.70·A^0.352 m and depth D = 0.30·A^0.213 m (A in km²; Bieger et al. 2015, all-US
   relations). The valley floor is W_v = k·A^d wide: the valley width–drainage area scaling
   W_v = k_c·A^d of the geomorphology literature (d typically about 0.5 in global
   compilations, lower in some settings, Harel et al. 2022; valley floor = the flat ground
   little above the channel, as measured by Clubb et al. 2022). Used here: d = 0.4 and
   k = 100 m, chosen to give about 100 m for a 1 km² creek, 1.6 km at 1,000 km² and 5 km on
   the lower Lempa (~18,000 km²). Valley floors narrow where the river is steep (W_v ∝ S^c,
   c < 0, Harel et al. 2022): the floodplain must rise across the valley at least
   ``floodplain_cross_slope_ratio`` times as fast as the river falls, so steep creeks keep
   V-shaped valleys. The channel is cut one bankfull depth into a floodplain that rises by
   another bankfull depth to the valley walls, so HAND grows slowly across it; the walls rise
   at ``valley_wall_slope`` (threshold hillslopes, Montgomery 2001). The valley surface is
   the lower envelope of these cross-sections around every channel cell (Dijkstra
   propagation of the nearest channel cell, Danielsson 1980), and the terrain is lowered to
   it; tributaries crossing a larger river's floodplain are cut one bankfull depth into it
   and the valleys shaped again.
5. **Speckle** like the noise of radar DEMs (Rodríguez et al. 2006), growing with the local
   slope as SRTM's errors do (Falorni et al. 2005), so that floodplains keep only the small
   pits real DEMs have; channel cells keep their graded bed.
6. **Water bodies** of ``models/reservoirs.yaml``, read at run time, burned as flat water
   surfaces as SRTM shows lakes (Slater et al. 2006). A reservoir floods the valley behind a
   dam put on the river of largest drainage area within ``water_body_search_m`` of its
   ``outlet_lonlat`` (at that river's cell nearest the point) up to the level that gives its
   published area (Priority-Flood from the dam through the dam's catchment), with an
   embankment where the lake would spill sideways. A natural lake is a basin of its published
   area around ``point_lonlat``; its level is that of an outlet on the shore facing
   ``outlet_lonlat`` from which the ground falls away (so the water runs on downhill to the
   nearest river), its other shores raised into a ``lake_rim_m`` rim; a lake without outlet
   is closed by the rim all round (a terrain model that fills depressions raises it to its
   rim). Where each ended up is recorded in the GeoTIFF tag ``floodwarn_water_bodies``: JSON
   ``{id: {surface_lonlat, outlet_lonlat, level_m, area_km2}}``, ``level_m`` being exactly the
   float32 elevation of every water cell.

Everything is deterministic for a given seed. The result is NOT real terrain: the GeoTIFF carries
``floodwarn_synthetic=true`` and every product built from it says so.

References
----------
Saupe, D. (1988) Algorithms for random fractals. In: Peitgen & Saupe (eds.), The Science of
Fractal Images, Springer, 71-136.
Metz, M., Mitasova, H., Harmon, R.S. (2011) Efficient extraction of drainage networks from
massive, radar-based elevation models with least cost path search. HESS 15, 667-678.
Barnes, R., Lehman, C., Mulla, D. (2014) Priority-Flood: An optimal depression-filling and
watershed-labeling algorithm for digital elevation models. Computers & Geosciences 62, 117-127.
Soille, P. (2004) Optimal removal of spurious pits in grid digital elevation models. Water
Resources Research 40, W12509.
Gustafsson, F. (1996) Determining the initial states in forward-backward filtering. IEEE
Transactions on Signal Processing 44(4), 988-992.
Flint, J.J. (1974) Stream gradient as a function of order, magnitude, and discharge. Water
Resources Research 10(5), 969-973.
Wobus, C., Whipple, K.X., Kirby, E. et al. (2006) Tectonics from topography: procedures, promise,
and pitfalls. GSA Special Paper 398, 55-74.
Bieger, K., Rathjens, H., Allen, P.M., Arnold, J.G. (2015) Development and evaluation of bankfull
hydraulic geometry relationships for the physiographic regions of the United States. JAWRA
51(3), 842-858.
Harel, E., Goren, L., Crouvi, O., Ginat, H., Shelef, E. (2022) Drainage reorganization induces
deviations in the scaling between valley width and drainage area. Earth Surface Dynamics 10,
875-894.
Clubb, F.J., Weir, E.F., Mudd, S.M. (2022) Continuous measurements of valley floor width in
mountainous landscapes. Earth Surface Dynamics 10, 437-456.
Montgomery, D.R. (2001) Slope distributions, threshold hillslopes, and steady-state topography.
American Journal of Science 301, 432-454.
Danielsson, P.-E. (1980) Euclidean distance mapping. Computer Graphics and Image Processing 14,
227-248.
Rodríguez, E., Morris, C.S., Belz, J.E. (2006) A global assessment of the SRTM performance.
Photogrammetric Engineering & Remote Sensing 72(3), 249-260.
Falorni, G., Teles, V., Vivoni, E.R., Bras, R.L., Amaratunga, K.S. (2005) Analysis and
characterization of the vertical accuracy of digital elevation models from the Shuttle Radar
Topography Mission. Journal of Geophysical Research 110, F02005.
Slater, J.A., Garvey, G., Johnston, C. et al. (2006) The SRTM data "finishing" process and
products. Photogrammetric Engineering & Remote Sensing 72(3), 237-247.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from pyproj import Transformer
from rasterio.features import rasterize
from rasterio.warp import transform_bounds
from scipy import ndimage

from floodwarn import __version__
from floodwarn.errors import InputError
from floodwarn.io.gis_data import DEMO_DOMAIN_BBOX, layer_path, load_countries
from floodwarn.io.raster import write_cog
from floodwarn.kernels.valleys import (
    accumulate_tree,
    carve_descending,
    carve_outflow,
    flood_from,
    graded_profile,
    hillslopes_on_beds,
    least_cost_drainage,
    settle_channels,
    upstream_cells,
    valley_envelope,
)
from floodwarn.logs import get_logger, timed_step
from floodwarn.parameters import WaterBodies, WaterBody, load_parameters
from floodwarn.terrain.grid import Grid

log = get_logger(__name__)

STANDIN_VERSION = "3"
STANDIN_CRS = "EPSG:32616"

#: Bankfull hydraulic geometry, all-US relations of Bieger et al. (2015), A in km², out in m.
BANKFULL_WIDTH_M = (2.70, 0.352)
BANKFULL_DEPTH_M = (0.30, 0.213)


@dataclass(frozen=True)
class StandinParameters:
    """Parameters of the stand-in DEM (all recorded in the file's metadata).

    Areas in km², lengths and heights in m, slopes in m/m; ``*_coef`` of a slope–area law
    ``k·A^-concavity`` with A in km².
    """

    bbox_lonlat: tuple[float, float, float, float] = DEMO_DOMAIN_BBOX
    cellsize_m: float = 90.0
    seed: int = 20200531  # Tropical Storm Amanda made landfall on 31 May 2020
    # base surface
    spectral_exponent: float = 3.0
    detail_cutoff_m: float = 18_000.0
    amplitude_base_m: float = 4.0
    amplitude_per_m: float = 0.08
    min_land_elevation_m: float = 0.5
    coastal_rise_m: float = 10.0
    coastal_rise_length_m: float = 10_000.0
    # drainage and river profiles
    channel_area_km2: float = 0.25
    carve_min_slope: float = 1e-5
    profile_smoothing_coef_m: float = 300.0
    profile_smoothing_exponent: float = 0.3
    profile_smoothing_max_m: float = 5_000.0
    slope_min_coef: float = 0.008
    slope_max_coef: float = 0.4
    concavity: float = 0.45
    hillslope_taper_factor: float = 2.0
    hillslope_taper_min_m: float = 20.0
    # channels and valleys
    valley_width_coef_m: float = 100.0
    valley_width_exponent: float = 0.4
    floodplain_rise_per_depth: float = 1.0
    floodplain_cross_slope_ratio: float = 1.5
    valley_wall_slope: float = 0.35
    valley_max_above_m: float = 30.0
    # radar-like speckle
    speckle_m: float = 1.0
    speckle_cutoff_m: float = 400.0
    speckle_flat_fraction: float = 0.2
    speckle_full_slope: float = 0.1
    # water bodies
    water_bodies: bool = True
    water_body_search_m: float = 10_000.0
    lake_rim_m: float = 2.0


@dataclass(frozen=True)
class BurnedWaterBody:
    """Where a reservoir or lake ended up on the stand-in DEM (lon/lat in degrees, m, km²)."""

    id: str
    kind: str
    surface_lonlat: tuple[float, float]
    outlet_lonlat: tuple[float, float] | None
    level_m: float
    area_km2: float

    def tag(self) -> dict[str, Any]:
        """The entry of the ``floodwarn_water_bodies`` tag."""
        return {
            "surface_lonlat": [round(v, 6) for v in self.surface_lonlat],
            "outlet_lonlat": (
                [round(v, 6) for v in self.outlet_lonlat] if self.outlet_lonlat else None
            ),
            "level_m": self.level_m,  # exactly the burned float32 value: z == level_m on water
            "area_km2": round(self.area_km2, 3),
        }


@dataclass(frozen=True, eq=False)
class StandinDem:
    """The stand-in DEM (float32 m, NaN = sea) on its grid, and the water bodies burned in."""

    elevation: np.ndarray
    grid: Grid
    water_bodies: list[BurnedWaterBody] = field(default_factory=list)


@dataclass(frozen=True, eq=False)
class _Drainage:
    """The drainage tree the valleys were carved along (flat arrays, see kernels.valleys)."""

    receiver: np.ndarray
    order: np.ndarray
    area_km2: np.ndarray
    channel: np.ndarray
    bed_m: np.ndarray


def bankfull_width_m(area_km2: np.ndarray) -> np.ndarray:
    """Bankfull channel width, m, for a drainage area in km² (Bieger et al. 2015)."""
    a, b = BANKFULL_WIDTH_M
    return a * np.asarray(area_km2, np.float64) ** b


def bankfull_depth_m(area_km2: np.ndarray) -> np.ndarray:
    """Bankfull channel depth, m, for a drainage area in km² (Bieger et al. 2015)."""
    a, b = BANKFULL_DEPTH_M
    return a * np.asarray(area_km2, np.float64) ** b


def valley_floor_width_m(area_km2: np.ndarray, params: StandinParameters) -> np.ndarray:
    """Valley floor width, m: ``k·A^d`` (Harel et al. 2022), A in km²."""
    return params.valley_width_coef_m * np.asarray(area_km2, np.float64) ** (
        params.valley_width_exponent
    )


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


def _soft_floor(z: np.ndarray, floor_m: float) -> np.ndarray:
    """``z`` above ``floor_m`` kept; below, mapped to ``floor_m² / (2·floor_m - z)``.

    Smooth (C¹) and strictly increasing, never reaching 0 nor underflowing: low ground stays
    positive without clamped flats, and keeps the order of its elevations (so drainage across
    it still follows its detail). NaN stays NaN."""
    with np.errstate(invalid="ignore"):
        low = floor_m**2 / (2.0 * floor_m - np.minimum(z, floor_m))
        return np.where(z < floor_m, low, z)


def build_standin_dem(
    params: StandinParameters | None = None, *, water_bodies: WaterBodies | None = None
) -> StandinDem:
    """Build the stand-in DEM in memory, with the water bodies burned in.

    ``water_bodies`` defaults to the shipped ``models/reservoirs.yaml`` (when
    ``params.water_bodies``); those outside the grid are skipped.
    """
    params = params or StandinParameters()
    grid = standin_grid(params)
    with timed_step(log, "standin_relief", cells=grid.n_cells):
        relief = _coarse_relief(grid)
    with timed_step(log, "standin_detail"):
        detail = _fractal_detail(
            grid.shape, params, cutoff_m=params.detail_cutoff_m, seed=params.seed
        )
    relief = np.maximum(relief, 0.0)  # no bicubic undershoot below the sea near the coast
    z = relief + (params.amplitude_base_m + params.amplitude_per_m * relief) * detail
    del detail, relief
    with timed_step(log, "standin_coastline"):
        countries = load_countries().to_crs(STANDIN_CRS)
        land = rasterize(
            ((geom, 1) for geom in countries.geometry),
            out_shape=grid.shape,
            transform=grid.transform,
            fill=0,
            dtype="uint8",
        ).astype(bool)
    # Land rises from the shore (a coastal plain ramp added to the relief, detail kept), so
    # that rivers run to the sea instead of wandering along a floored coastal strip.
    shore_m = ndimage.distance_transform_edt(land) * grid.cellsize_m
    z += params.coastal_rise_m * -np.expm1(-shore_m / params.coastal_rise_length_m)
    z = _soft_floor(z, params.min_land_elevation_m)
    z[~land] = np.nan
    del land, shore_m
    with timed_step(log, "standin_valleys"):
        z, drainage = _river_valleys(z.astype(np.float32), grid, params)
    with timed_step(log, "standin_speckle"):
        z = _speckle(z, drainage.channel, drainage.bed_m, grid, params)
    burned: list[BurnedWaterBody] = []
    if params.water_bodies:
        with timed_step(log, "standin_water_bodies"):
            bodies = water_bodies or load_parameters(WaterBodies)
            burned = _burn_water_bodies(z, drainage, grid, params, bodies.water_bodies)
    return StandinDem(elevation=z, grid=grid, water_bodies=burned)


def make_standin_dem(params: StandinParameters | None = None) -> tuple[np.ndarray, Grid]:
    """Build the stand-in DEM in memory: float32 m, NaN = sea, on :func:`standin_grid`."""
    dem = build_standin_dem(params)
    return dem.elevation, dem.grid


def _river_valleys(
    base: np.ndarray, grid: Grid, params: StandinParameters
) -> tuple[np.ndarray, _Drainage]:
    """Drainage tree, graded beds, hillslopes and valleys (steps 2–4 of the module docstring).

    ``base`` is float32 (rows, cols), NaN = nodata. Returns float64 elevations and the tree.
    """
    nr, nc = base.shape
    cell = grid.cellsize_m
    receiver, order = least_cost_drainage(np.ascontiguousarray(base, np.float32))
    valid = ~np.isnan(base.reshape(-1))
    area = accumulate_tree(receiver, order, np.where(valid, grid.cell_area_km2, 0.0))
    channel = valid & (area >= params.channel_area_km2)
    carved = carve_descending(
        base.reshape(-1).astype(np.float64), receiver, order, nc, cell, params.carve_min_slope
    )
    bed = graded_profile(
        carved,
        receiver,
        order,
        nc,
        cell,
        area,
        channel,
        params.profile_smoothing_coef_m,
        params.profile_smoothing_exponent,
        params.profile_smoothing_max_m,
        params.slope_min_coef,
        params.slope_max_coef,
        params.concavity,
    )
    terrain = hillslopes_on_beds(
        carved,
        bed,
        receiver,
        order,
        channel,
        params.hillslope_taper_factor,
        params.hillslope_taper_min_m,
    )
    del carved
    seeds = np.flatnonzero(channel)
    a = area[seeds]
    depth = bankfull_depth_m(a)
    channel_half = 0.5 * bankfull_width_m(a)
    # Valley floors narrow where the river is steep (W ∝ A^b·S^c with c < 0, Harel et al.
    # 2022): the floodplain rises across the valley at least `floodplain_cross_slope_ratio`
    # times as fast as the river falls along it, so every floodplain cell belongs to the
    # river cell beside it, not to one downstream.
    fall_slope = _bed_slope(bed, receiver, seeds, nc, cell)
    floor_half = np.minimum(
        0.5 * valley_floor_width_m(a, params) - channel_half,
        params.floodplain_rise_per_depth
        * depth
        / (params.floodplain_cross_slope_ratio * np.maximum(fall_slope, 1e-9)),
    )
    floor_half = np.maximum(floor_half, 1e-3)

    def valleys(beds: np.ndarray) -> np.ndarray:
        terrain[seeds] = beds[seeds]
        return valley_envelope(
            terrain.reshape(nr, nc),
            seeds,
            beds[seeds],
            depth,
            channel_half,
            floor_half,
            params.floodplain_rise_per_depth * depth,
            params.valley_wall_slope,
            cell,
            params.valley_max_above_m,
        )

    # Tributaries that cross a larger river's floodplain are cut into it, then the valleys
    # are shaped again around the settled beds.
    z = valleys(bed)
    bed = settle_channels(
        bed,
        z.reshape(-1),
        receiver,
        order,
        nc,
        cell,
        area,
        channel,
        *BANKFULL_DEPTH_M,
        params.slope_min_coef,
        params.concavity,
    )
    z = valleys(bed)
    bed[seeds] = z.reshape(-1)[seeds]
    return z, _Drainage(receiver=receiver, order=order, area_km2=area, channel=channel, bed_m=bed)


def _bed_slope(
    bed: np.ndarray,
    receiver: np.ndarray,
    cells: np.ndarray,
    nc: int,
    cellsize: float,
    steps: int = 5,
) -> np.ndarray:
    """Mean bed slope (m/m) from each of ``cells`` down ``steps`` cells of the tree."""
    here = cells
    length = np.zeros(cells.size)
    for _ in range(steps):
        nxt = receiver[here]
        going = nxt >= 0
        diagonal = (here // nc != nxt // nc) & (here % nc != nxt % nc)
        length += np.where(going, np.where(diagonal, np.sqrt(2.0), 1.0) * cellsize, 0.0)
        here = np.where(going, nxt, here)
    drop = bed[cells] - bed[here]
    return np.divide(drop, length, out=np.zeros(cells.size), where=length > 0)


def _speckle(
    z: np.ndarray, channel: np.ndarray, bed: np.ndarray, grid: Grid, params: StandinParameters
) -> np.ndarray:
    """Add radar-like speckle growing with slope; channel cells keep ``bed``. float32 out."""
    gy, gx = np.gradient(np.nan_to_num(z).astype(np.float32), grid.cellsize_m)
    noise = np.hypot(gx, gy)  # the slope, then the speckle
    del gx, gy
    noise /= params.speckle_full_slope
    np.clip(noise, params.speckle_flat_fraction, 1.0, out=noise)
    noise *= params.speckle_m
    noise *= _fractal_detail(
        z.shape, params, cutoff_m=params.speckle_cutoff_m, seed=params.seed + 1
    ).astype(np.float32)
    floor = 0.5 * params.min_land_elevation_m
    out = _soft_floor(z + noise, floor).astype(np.float32)
    # Channels keep their graded bed (floored alike): no speckle pits along the rivers.
    out.reshape(-1)[channel] = _soft_floor(bed[channel], floor)
    return out


# ------------------------------------------------------------------------------ water bodies


@dataclass(frozen=True, eq=False)
class _Canvas:
    """What burning a water body works on: the DEM (float32, changed in place), its drainage
    tree, the cells already under water, and the lon/lat → grid transformer."""

    z: np.ndarray
    drainage: _Drainage
    grid: Grid
    params: StandinParameters
    taken: np.ndarray
    to_xy: Transformer

    def cell(self, lonlat: tuple[float, float]) -> int | None:
        """Flat index of the cell holding a lon/lat point, None off the grid."""
        x, y = self.to_xy.transform(*lonlat)
        rows, cols = self.grid.cells_at(np.array([x]), np.array([y]))
        return None if rows[0] < 0 else int(rows[0] * self.grid.shape[1] + cols[0])

    def lonlat(self, cell: int) -> tuple[float, float]:
        x, y = self.grid.cell_centres(np.array([cell]))
        to_lonlat = Transformer.from_crs(STANDIN_CRS, "EPSG:4326", always_xy=True)
        lon, lat = to_lonlat.transform(x, y)
        return float(lon[0]), float(lat[0])

    def distance(self, cells: np.ndarray, cell: int) -> np.ndarray:
        """Distance from ``cells`` to ``cell``, in cells."""
        r, c = np.divmod(cells, self.grid.shape[1])
        return np.hypot(r - cell // self.grid.shape[1], c - cell % self.grid.shape[1])

    def disc(self, cell: int, radius: int) -> np.ndarray:
        """Flat indices of the cells within ``radius`` cells of ``cell``, row-major."""
        nr, nc = self.grid.shape
        r, c = divmod(cell, nc)
        rr, cc = np.mgrid[
            max(r - radius, 0) : min(r + radius + 1, nr),
            max(c - radius, 0) : min(c + radius + 1, nc),
        ]
        cells = (rr * nc + cc).reshape(-1)
        return cells[self.distance(cells, cell) <= radius]

    def neighbours(self, cells: np.ndarray) -> np.ndarray:
        """(8, n) flat indices of the 8 neighbours of ``cells``, -1 off the grid."""
        nr, nc = self.grid.shape
        r, c = np.divmod(cells, nc)
        out = np.full((8, cells.size), -1, np.int64)
        for k, (dr, dc) in enumerate(_STEPS):
            ok = (r + dr >= 0) & (r + dr < nr) & (c + dc >= 0) & (c + dc < nc)
            out[k, ok] = (r[ok] + dr) * nc + c[ok] + dc
        return out

    def ring(self, cells: np.ndarray) -> np.ndarray:
        """Boolean mask (flat) of the land cells next to ``cells`` but not among them."""
        mask = np.zeros(self.z.size, bool)
        nb = self.neighbours(cells)
        mask[nb[nb >= 0]] = True
        mask[cells] = False
        return mask & ~np.isnan(self.z.reshape(-1))


_STEPS = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if dr or dc]


def _burn_water_bodies(
    z: np.ndarray,
    drainage: _Drainage,
    grid: Grid,
    params: StandinParameters,
    bodies: list[WaterBody],
) -> list[BurnedWaterBody]:
    """Burn reservoirs and lakes into ``z`` (float32, in place) as flat water surfaces."""
    to_xy = Transformer.from_crs("EPSG:4326", STANDIN_CRS, always_xy=True)
    canvas = _Canvas(z, drainage, grid, params, np.zeros(z.size, bool), to_xy)
    burned = []
    for body in bodies:
        result = _BURNERS[body.kind](canvas, body)
        if result is None:
            log.info("standin_water_body_outside", extra={"water_body": body.id})
        else:
            burned.append(result)
            log.info("standin_water_body", extra=result.tag() | {"water_body": body.id})
    return burned


def _target_cells(body: WaterBody, grid: Grid) -> int:
    return max(1, round(body.surface_area_km2 / grid.cell_area_km2))


def _burn_reservoir(canvas: _Canvas, body: WaterBody) -> BurnedWaterBody | None:
    """A dam on the largest river near the outlet, the valley behind it flooded to the area."""
    if body.outlet_lonlat is None:
        raise InputError(f"water body {body.id!r}: a reservoir needs outlet_lonlat (its dam).")
    point, target = canvas.cell(body.point_lonlat), canvas.cell(body.outlet_lonlat)
    if point is None or target is None:
        return None
    grid, drainage, taken = canvas.grid, canvas.drainage, canvas.taken
    near = canvas.disc(target, int(np.ceil(canvas.params.water_body_search_m / grid.cellsize_m)))
    near = near[drainage.channel[near] & ~taken[near]]
    if near.size == 0:
        return None
    # The largest river near the outlet (its cells within a factor 2 of the largest area
    # there), dammed at its cell nearest the outlet: the cell of largest area would be
    # wherever the river leaves the search circle.
    areas = drainage.area_km2[near]
    river = near[areas >= 0.5 * areas.max()]
    dam = int(river[np.argmin(canvas.distance(river, target))])
    allowed = upstream_cells(drainage.receiver, drainage.order, dam) & ~taken
    flat = canvas.z.reshape(-1)
    lake, level = flood_from(canvas.z, dam, _target_cells(body, grid), allowed)
    flat[lake] = np.float32(level)
    taken[lake] = True
    # An embankment wherever the lake touches lower ground outside the dam's catchment.
    low = canvas.ring(lake) & ~allowed & ~taken & (flat <= level)
    if drainage.receiver[dam] >= 0:
        low[drainage.receiver[dam]] = False  # the spillway
    flat[low] = np.float32(level + canvas.params.lake_rim_m)
    surface = int(lake[np.argmin(canvas.distance(lake, point))])
    return BurnedWaterBody(
        id=body.id,
        kind=body.kind,
        surface_lonlat=canvas.lonlat(surface),
        outlet_lonlat=canvas.lonlat(dam),
        level_m=float(np.float32(level)),
        area_km2=lake.size * grid.cell_area_km2,
    )


def _burn_lake(canvas: _Canvas, body: WaterBody) -> BurnedWaterBody | None:
    """A basin of the published area around the point, spilling over its outlet shore."""
    point = canvas.cell(body.point_lonlat)
    if point is None or np.isnan(canvas.z.reshape(-1)[point]):
        return None
    n = _target_cells(body, canvas.grid)
    window = canvas.disc(point, int(np.ceil(2.0 * np.sqrt(n / np.pi))) + 3)
    flat = canvas.z.reshape(-1)
    # An irregular shore: the distance is stretched by a smooth, seeded function of the angle.
    rng = np.random.default_rng([canvas.params.seed, zlib.crc32(body.id.encode())])
    nc = canvas.grid.shape[1]
    angle = np.arctan2(window // nc - point // nc, window % nc - point % nc)
    harmonics = np.arange(1, 4)[:, None]
    phase = rng.uniform(0.0, 2 * np.pi, (3, 1))
    wobble = (rng.normal(0.0, 0.08, (3, 1)) * np.cos(harmonics * angle + phase)).sum(0)
    dist = canvas.distance(window, point) * (1.0 + wobble)
    usable = ~np.isnan(flat[window]) & ~canvas.taken[window]
    ranked = np.argsort(np.where(usable, dist, np.inf), kind="stable")[:n]
    lake = window[ranked[usable[ranked]]]
    shore = np.flatnonzero(canvas.ring(lake))
    outlet = None
    if body.outlet_lonlat is not None:
        outlet = _lake_outlet(canvas, lake, shore, point, body.outlet_lonlat)
    level = float(flat[shore].min()) if outlet is None else float(flat[outlet])
    flat[lake] = np.float32(level)
    rim = shore[(flat[shore] < level + canvas.params.lake_rim_m) & (shore != outlet)]
    flat[rim] = np.float32(level + canvas.params.lake_rim_m)
    if outlet is not None:  # the outlet lies on the water surface, at the lake's edge
        flat[outlet] = np.float32(level)
        lake = np.append(lake, outlet)
    canvas.taken[lake] = True
    return BurnedWaterBody(
        id=body.id,
        kind=body.kind,
        surface_lonlat=canvas.lonlat(point),
        outlet_lonlat=canvas.lonlat(outlet) if outlet is not None else None,
        level_m=float(np.float32(level)),
        area_km2=lake.size * canvas.grid.cell_area_km2,
    )


def _lake_outlet(
    canvas: _Canvas,
    lake: np.ndarray,
    shore: np.ndarray,
    point: int,
    outlet_lonlat: tuple[float, float],
) -> int | None:
    """The shore cell the lake spills over, its outflow cut down to the nearest river.

    The lowest shore cell on the side facing ``outlet_lonlat`` (any side if none fits) whose
    path down the drainage tree leaves the lake and its shore behind; that path is carved to
    fall from the lake's level until it meets a channel low enough (see
    :func:`floodwarn.kernels.valleys.carve_outflow`).
    """
    flat = canvas.z.reshape(-1)
    avoid = np.zeros(flat.size, bool)
    avoid[lake] = avoid[shore] = True
    x, y = canvas.to_xy.transform(*outlet_lonlat)
    px, py = canvas.grid.cell_centres(np.array([point]))
    cx, cy = canvas.grid.cell_centres(shore)
    facing = np.cos(np.arctan2(cy - py, cx - px) - np.arctan2(y - py, x - px)) > 0.5
    ranked = np.lexsort((flat[shore], ~facing))  # facing first, then lowest
    drainage, cell = canvas.drainage, canvas.grid.cellsize_m
    slope = canvas.params.carve_min_slope
    for outlet in shore[ranked].tolist():
        level = float(flat[outlet])
        args = (drainage.receiver, outlet, level, slope, cell, drainage.channel, avoid)
        if carve_outflow(canvas.z, *args, False) >= 0:
            carve_outflow(canvas.z, *args, True)
            return int(outlet)
    return None


_BURNERS = {"reservoir": _burn_reservoir, "lake": _burn_lake}


# ------------------------------------------------------------------------------------ files


def write_standin_dem(
    path: str | Path,
    params: StandinParameters | None = None,
    *,
    water_bodies: WaterBodies | None = None,
) -> Path:
    """Generate the stand-in DEM and write it as a COG tagged as synthetic.

    The tag ``floodwarn_water_bodies`` records where each water body was burned (see the
    module docstring); ``water_bodies`` defaults to the shipped ``models/reservoirs.yaml``.
    """
    params = params or StandinParameters()
    dem = build_standin_dem(params, water_bodies=water_bodies)
    path = Path(path)
    write_cog(
        path,
        dem.elevation,
        dem.grid,
        nodata=float("nan"),
        kind="continuous",
        description="SYNTHETIC stand-in elevation, m (not real terrain)",
        tags={
            "floodwarn_synthetic": "true",
            "floodwarn_standin_version": STANDIN_VERSION,
            "floodwarn_description": (
                "SYNTHETIC stand-in DEM for the El Salvador demo domain: real 5' relief "
                "(pvlib altitude grid), real coastline (geoBoundaries/Natural Earth), "
                "synthetic fractal detail, least-cost drainage, graded rivers, valleys and "
                "floodplains scaled by drainage area, reservoirs and lakes of "
                "models/reservoirs.yaml burned flat. Not real terrain."
            ),
            "floodwarn_parameters": str(asdict(params)),
            "floodwarn_water_bodies": json.dumps(
                {b.id: b.tag() for b in dem.water_bodies}, sort_keys=True
            ),
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


def erode_surface(
    base: np.ndarray, grid: Grid, params: StandinParameters | None = None
) -> np.ndarray:
    """Steps 2–5 of this module on any base surface: drainage, graded rivers, valleys, speckle.

    ``base`` is elevation in m on ``grid`` (float, NaN = nodata), e.g. relief plus fractal
    detail; the result is float32 m. Closed depressions of ``base`` are drained through their
    lowest pass, never filled into flats. Deterministic for ``params.seed``.
    """
    params = params or StandinParameters(cellsize_m=grid.cellsize_m)
    z, drainage = _river_valleys(np.ascontiguousarray(base, np.float32), grid, params)
    channel, bed = drainage.channel, drainage.bed_m
    del drainage  # the tree is not needed for the speckle: memory for large grids
    return _speckle(z, channel, bed, grid, params)


def synthetic_eroded_terrain(
    n_rows: int, n_cols: int, *, cellsize_m: float = 30.0, relief_m: float = 1500.0, seed: int = 1
) -> tuple[np.ndarray, Grid]:
    """A SYNTHETIC eroded landscape for benchmarks: fractal relief, valleys, speckle.

    Same recipe as the stand-in DEM (steps 1–5 of this module, :func:`erode_surface`) on a
    rectangle with a regional slope towards the south edge (the coast); no nodata, no water
    bodies. Deterministic for a given seed.
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
    base = _soft_floor(z, params.min_land_elevation_m).astype(np.float32)
    del z
    return erode_surface(base, grid, params), grid
