"""The SYNTHETIC stand-in DEM: drainage without striped flats, valleys scaled by drainage area,
flat water bodies where the tags say, determinism."""

import json

import numpy as np
import pytest
import rasterio
from affine import Affine
from scipy import ndimage

from floodwarn.errors import InputError
from floodwarn.parameters import WaterBodies, load_parameters
from floodwarn.standin_dem import (
    STANDIN_CRS,
    STANDIN_VERSION,
    StandinParameters,
    bankfull_depth_m,
    bankfull_width_m,
    build_standin_dem,
    erode_surface,
    standin_is_current,
    synthetic_eroded_terrain,
    valley_floor_width_m,
    write_standin_dem,
)
from floodwarn.terrain import Grid, build_terrain_model
from floodwarn.terrain.conditioning import fill_depressions, flow_directions

#: A small box around Lago de Ilopango at 180 m: quick to generate.
SMALL = StandinParameters(bbox_lonlat=(-89.2, 13.55, -88.85, 13.85), cellsize_m=180.0)


def _grid(n: int, cellsize: float) -> Grid:
    return Grid(
        shape=(n, n),
        transform=Affine(cellsize, 0, 200_000, 0, -cellsize, 1_600_000),
        crs=rasterio.crs.CRS.from_user_input(STANDIN_CRS).to_wkt(),
    )


def _straight_run_share(flowdir: np.ndarray, paths: list[np.ndarray], min_run: int) -> float:
    """Share of stream cells in runs of at least ``min_run`` cells in one D8 direction."""
    codes = flowdir.reshape(-1)
    in_long = 0
    total = 0
    for path in paths:
        d = codes[path]
        bounds = np.concatenate([[0], np.flatnonzero(np.diff(d) != 0) + 1, [d.size]])
        runs = np.diff(bounds)
        in_long += int(runs[runs >= min_run].sum())
        total += d.size
    return in_long / total


def _reach_paths(model) -> list[np.ndarray]:
    return [model.reaches.path(i) for i in range(1, len(model.reaches) + 1)]


def _basin_base(n: int = 160, cellsize: float = 90.0) -> np.ndarray:
    """Rough terrain tilted south with a wide closed basin 80 m deep in the middle."""
    rng = np.random.default_rng(7)
    rough = ndimage.gaussian_filter(rng.normal(size=(n, n)), 3.0)
    rough *= 30.0 / rough.std()
    rows, cols = np.mgrid[0:n, 0:n]
    tilt = 300.0 - 0.01 * cellsize * rows
    basin = 80.0 * np.exp(-(((rows - n / 2) ** 2 + (cols - n / 2) ** 2) / (2 * (n / 6) ** 2)))
    return tilt + rough - basin


def test_a_closed_basin_drains_without_straight_parallel_streams():
    base = _basin_base()
    grid = _grid(base.shape[0], 90.0)
    # The cause of the stripes: filled, the basin is a flat that D8 drains in straight lines.
    filled, n_raised = fill_depressions(base.astype(np.float32))
    assert n_raised > 1500
    flowdir, _ = flow_directions(filled)
    from floodwarn.terrain.accumulation import flow_accumulation
    from floodwarn.terrain.network import extract_stream_network

    acc = flow_accumulation(flowdir)
    _, reaches = extract_stream_network(filled, flowdir, acc, grid, stream_area_km2=0.5)
    old_paths = [reaches.path(i) for i in range(1, len(reaches) + 1)]
    assert _straight_run_share(flowdir, old_paths, 15) > 0.03
    # Eroded instead, the basin drains through its lowest pass along its lowest ground.
    z = erode_surface(base, grid)
    model = build_terrain_model(z, grid, stream_area_km2=0.5)
    assert _straight_run_share(model.flowdir, _reach_paths(model), 15) < 0.01
    assert model.metadata["statistics"]["flat_cells"] < 0.01 * z.size


@pytest.fixture(scope="module")
def eroded():
    z, grid = synthetic_eroded_terrain(384, 384, cellsize_m=90.0, relief_m=600.0, seed=3)
    return z, grid, build_terrain_model(z, grid, stream_area_km2=0.5)


def test_synthetic_eroded_terrain_is_deterministic(eroded):
    z = eroded[0]
    again, _ = synthetic_eroded_terrain(384, 384, cellsize_m=90.0, relief_m=600.0, seed=3)
    np.testing.assert_array_equal(z, again)
    other, _ = synthetic_eroded_terrain(384, 384, cellsize_m=90.0, relief_m=600.0, seed=4)
    assert not np.array_equal(z, other)
    assert z.dtype == np.float32 and np.isfinite(z).all() and z.min() > 0


def test_streams_are_not_straight_or_aligned(eroded):
    model = eroded[2]
    assert _straight_run_share(model.flowdir, _reach_paths(model), 15) < 0.005
    codes = model.flowdir[model.reach_id > 0]
    shares = np.array([(codes == c).mean() for c in (1, 2, 4, 8, 16, 32, 64, 128)])
    assert shares.max() < 0.3  # no dominant direction


def test_valley_floor_widens_with_drainage_area(eroded):
    _z, grid, model = eroded
    reaches = model.reaches
    low = (model.hand < 5.0) & (model.catchment_id > 0)
    cells = np.bincount(model.catchment_id[low], minlength=len(reaches) + 1)[1:]
    width_m = cells * grid.cellsize_m**2 / np.maximum(reaches.length_m, 1.0)
    area = reaches.upstream_area_km2
    long_enough = reaches.length_m > 300
    small = np.median(width_m[(area < 5) & long_enough])
    large = np.median(width_m[(area > 50) & long_enough])
    assert large > 2.5 * small


def test_large_rivers_sit_in_floodplains_not_canyons(eroded):
    _z, grid, model = eroded
    reaches = model.reaches
    big = reaches.upstream_area_km2 > 50
    path = np.concatenate([reaches.path(int(i)) for i in reaches.id[big]])
    beside = ndimage.binary_dilation(np.isin(np.arange(model.hand.size), path).reshape(grid.shape))
    beside &= model.reach_id == 0
    # Banks stand about a bankfull depth above the river (< 1 m here), never tens of metres.
    assert np.nanmedian(model.hand[beside]) < 3.0
    slope = reaches.slope
    assert (slope[big] > 0).all() and np.median(slope[big]) < 0.005
    assert np.median(slope[reaches.upstream_area_km2 < 2]) > 5 * np.median(slope[big])


def test_hydraulic_geometry_of_bieger_and_valley_width():
    area = np.array([1.0, 18_000.0])
    np.testing.assert_allclose(bankfull_width_m(area), [2.70, 2.70 * 18_000**0.352])
    np.testing.assert_allclose(bankfull_depth_m(area), [0.30, 0.30 * 18_000**0.213])
    lower_lempa = valley_floor_width_m(np.array([18_000.0]), StandinParameters())[0]
    assert 4_000 < lower_lempa < 6_000  # several km on the lower Lempa


def _bodies(*entries: dict) -> WaterBodies:
    """Water bodies like the shipped ones, at the given places and sizes."""
    shipped = load_parameters(WaterBodies)
    template = shipped.water_bodies[0]
    bodies = [template.model_copy(update={"name": e["id"].title(), **e}) for e in entries]
    return shipped.model_copy(update={"water_bodies": bodies})


LAKE = {
    "id": "crater",
    "kind": "lake",
    "point_lonlat": (-89.05, 13.67),
    "outlet_lonlat": (-88.98, 13.66),
    "surface_area_km2": 40.0,
}
DAM = {
    "id": "dam",
    "kind": "reservoir",
    "point_lonlat": (-88.95, 13.75),
    "outlet_lonlat": (-88.93, 13.72),
    "surface_area_km2": 6.0,
}


def _water(dem, lonlat, level):
    """The flat region at ``level`` holding ``lonlat``, as a mask."""
    from pyproj import Transformer

    x, y = Transformer.from_crs("EPSG:4326", STANDIN_CRS, always_xy=True).transform(*lonlat)
    rows, cols = dem.grid.cells_at(np.array([x]), np.array([y]))
    labels, _ = ndimage.label(dem.elevation == np.float32(level), structure=np.ones((3, 3)))
    label = labels[rows[0], cols[0]]
    assert label > 0, "the recorded surface cell is not on the water surface"
    return labels == label, (int(rows[0]), int(cols[0]))


def test_water_bodies_are_flat_with_their_area_and_drain_at_their_outlet():
    dem = build_standin_dem(SMALL, water_bodies=_bodies(LAKE, DAM))
    assert [b.id for b in dem.water_bodies] == ["crater", "dam"]
    cell_km2 = dem.grid.cell_area_km2
    model = build_terrain_model(dem.elevation, dem.grid, stream_area_km2=1.0)
    for body, requested in zip(dem.water_bodies, (40.0, 6.0), strict=True):
        water, _ = _water(dem, body.surface_lonlat, body.level_m)
        assert abs(water.sum() * cell_km2 - requested) <= max(0.03 * requested, 2 * cell_km2)
        assert body.area_km2 == pytest.approx(water.sum() * cell_km2)
        # The lake stays a lake in the terrain model and leaves it only at the outlet cell.
        assert (model.conditioned[water] == np.float32(body.level_m)).all()
        outlet, (orow, ocol) = _water(dem, body.outlet_lonlat, body.level_m)
        assert outlet[orow, ocol] and (outlet == water).all()
        steps = {
            1: (0, 1),
            2: (1, 1),
            4: (1, 0),
            8: (1, -1),
            16: (0, -1),
            32: (-1, -1),
            64: (-1, 0),
            128: (-1, 1),
        }
        exits = [
            (r, c)
            for r, c in np.argwhere(water)
            if not water[r + steps[model.flowdir[r, c]][0], c + steps[model.flowdir[r, c]][1]]
        ]
        assert exits == [(orow, ocol)]
    # The dam stands on the largest river near its outlet point.
    dam = dem.water_bodies[1]
    _, (orow, ocol) = _water(dem, dam.outlet_lonlat, dam.level_m)
    assert model.accumulation[orow, ocol] * cell_km2 > 20.0


def test_a_lake_without_outlet_is_closed():
    closed = {**LAKE, "id": "closed", "outlet_lonlat": None}
    dem = build_standin_dem(SMALL, water_bodies=_bodies(closed))
    (body,) = dem.water_bodies
    assert body.outlet_lonlat is None
    water, _ = _water(dem, body.surface_lonlat, body.level_m)
    rim = ndimage.binary_dilation(water, np.ones((3, 3))) & ~water
    assert (dem.elevation[rim] > body.level_m).all()


def test_a_reservoir_needs_its_dam():
    no_dam = {**DAM, "outlet_lonlat": None}
    with pytest.raises(InputError, match="reservoir needs outlet_lonlat"):
        build_standin_dem(SMALL, water_bodies=_bodies(no_dam))


def test_written_dem_is_tagged_synthetic_with_its_water_bodies(tmp_path):
    path = write_standin_dem(tmp_path / "dem.tif", SMALL, water_bodies=_bodies(LAKE, DAM))
    assert standin_is_current(path)
    with rasterio.open(path) as src:
        tags = src.tags()
        z = src.read(1)
        assert "SYNTHETIC" in src.descriptions[0]
    assert tags["floodwarn_synthetic"] == "true"
    assert tags["floodwarn_standin_version"] == STANDIN_VERSION
    bodies = json.loads(tags["floodwarn_water_bodies"])
    assert set(bodies) == {"crater", "dam"}
    for entry in bodies.values():
        assert set(entry) == {"surface_lonlat", "outlet_lonlat", "level_m", "area_km2"}
        assert (z == np.float32(entry["level_m"])).sum() * 0.0324 >= entry["area_km2"] - 1e-6
    dem = build_standin_dem(SMALL, water_bodies=_bodies(LAKE, DAM))
    np.testing.assert_array_equal(z, dem.elevation)  # deterministic
