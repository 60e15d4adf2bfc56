"""Map tiles of a run's flood layers and of the terrain's hillshade, and their legend."""

import warnings
from datetime import UTC, datetime
from types import SimpleNamespace

import morecantile
import numpy as np
import pytest
import rasterio
import rasterio.vrt
from fastapi.testclient import TestClient
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile
from rasterio.warp import transform

from api import tiles as tiles_module
from api.app import create_app
from api.deps import MUNICIPALITY_IDS
from api.settings import Settings
from api.store.access import create_api_key
from api.tiles import DEPTH_CLASSES, FIRST_FLOODING_CLASSES, RenderedTile, TileCache
from api.worker import execute_next
from floodwarn.io.forecast_outputs import (
    DEPTH_FILE,
    DEPTH_WEB_MERCATOR_FILE,
    FIRST_FLOODING_FILE,
    FIRST_FLOODING_WEB_MERCATOR_FILE,
)
from tests.api.test_runs import _rain
from tests.test_forecast_cli import salvadoran_terrain  # noqa: F401  (fixture)

TMS = morecantile.tms.get("WebMercatorQuad")


@pytest.fixture(scope="module")
def served(salvadoran_terrain, tmp_path_factory):  # noqa: F811
    """The service with one succeeded run of a storm on the small Salvadoran terrain, and an
    analyst's and a committee's key."""
    terrain_dir, _ = salvadoran_terrain
    settings = Settings(data_dir=tmp_path_factory.mktemp("tiles") / "data",
                        terrain_dir=terrain_dir, run_worker=False)
    app = create_app(settings)
    now = datetime.now(UTC)
    with app.state.sessions.begin() as session:
        _, analyst = create_api_key(session, role="analyst", name="analista", now=now)
        _, committee = create_api_key(session, role="committee", name="comité", now=now,
                                      municipality_id=MUNICIPALITY_IDS[0])
    client = TestClient(app, headers={"X-API-Key": analyst})
    settings.inbox_dir.mkdir(parents=True)
    _rain(settings.inbox_dir / "storm.nc", mm_per_hour=30.0)
    run_id = client.post("/runs", json={"inbox_file": "storm.nc"}).json()["id"]
    assert execute_next(app.state.sessions, settings) == run_id
    out_dir = settings.data_dir / "runs" / str(run_id)
    assert (out_dir / DEPTH_FILE).exists() and (out_dir / DEPTH_WEB_MERCATOR_FILE).exists()
    return SimpleNamespace(app=app, settings=settings, client=client, run_id=run_id,
                           out_dir=out_dir, committee=committee,
                           cache=app.state.service.tiles.cache)


def _rgba(png: bytes) -> np.ndarray:
    """(256, 256, 4) RGBA of a PNG tile, whatever its layout (palette, grey + alpha, RGBA)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with warnings.catch_warnings():  # a tile image carries no georeference
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return _decoded(png)


def _decoded(png: bytes) -> np.ndarray:
    with MemoryFile(png) as memory, memory.open() as image:
        bands = image.read()
        if image.count == 1 and image.colorinterp[0].name == "palette":
            lookup = np.zeros((256, 4), np.uint8)
            for index, colour in image.colormap(1).items():
                lookup[index] = colour
            return lookup[bands[0]]
        if image.count == 2:  # grey and alpha
            return np.dstack([bands[0], bands[0], bands[0], bands[1]])
        return np.dstack(list(bands))


def _cell_tile(raster, row: int, col: int, z: int):
    """The tile holding the centre of cell (row, col) of ``raster`` and that centre's pixel
    (row, col) in it."""
    with rasterio.open(raster) as src:
        x, y = src.transform @ (col + 0.5, row + 0.5)
        (lon,), (lat,) = transform(src.crs, "EPSG:4326", [x], [y])
    tile = TMS.tile(lon, lat, z)
    bounds = TMS.xy_bounds(tile)
    mx, my = TMS.xy(lon, lat)
    pixel = (int((bounds.top - my) / (bounds.top - bounds.bottom) * 256),
             int((mx - bounds.left) / (bounds.right - bounds.left) * 256))
    return tile, pixel


def _domain_tiles(raster, z: int) -> list[morecantile.Tile]:
    with rasterio.open(raster) as src:
        west, south, east, north = rasterio.warp.transform_bounds(src.crs, "EPSG:4326",
                                                                  *src.bounds)
    return list(TMS.tiles(west, south, east, north, zooms=[z]))


def test_a_flooded_cell_is_drawn_in_the_colour_of_its_depth_class(served):
    with rasterio.open(served.out_dir / DEPTH_FILE) as src:
        depth = src.read(1)
    flooded = np.argwhere(depth >= DEPTH_CLASSES[0].lower)
    assert len(flooded), "the storm flooded no cell; the test needs a wetter storm"
    checked = set()
    # The deepest cell and a shallow one: two classes (when the flood has two).
    for row, col in (flooded[np.argmax(depth[tuple(flooded.T)])],
                     flooded[np.argmin(depth[tuple(flooded.T)])]):
        expected = next(c for c in reversed(DEPTH_CLASSES) if depth[row, col] >= c.lower)
        # Zoom 15: 4.6 m pixels, so a 90 m cell's centre pixel is well inside the cell.
        tile, (py, px) = _cell_tile(served.out_dir / DEPTH_FILE, row, col, 15)
        answer = served.client.get(
            f"/runs/{served.run_id}/tiles/depth/{tile.z}/{tile.x}/{tile.y}.png")
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
        image = _rgba(answer.content)
        assert image.shape == (256, 256, 4)
        assert tuple(image[py, px]) == expected.rgba, (depth[row, col], expected)
        checked.add(expected.hex)
        # Every drawn pixel has a colour of the map, and dry/nodata pixels are transparent.
        colours = {tuple(c) for c in image.reshape(-1, 4)}
        assert colours <= {c.rgba for c in DEPTH_CLASSES} | {(0, 0, 0, 0)}
    assert checked


def test_tiles_outside_the_run_are_not_found_and_malformed_ones_refused(served):
    base = f"/runs/{served.run_id}/tiles/depth"
    outside = served.client.get(f"{base}/10/0/0.png")  # the Bering Sea
    assert outside.status_code == 404
    body = outside.json()
    assert body["error"] == "NotFoundError"
    assert "outside run" in body["detail"] and "longitude" in body["detail"]
    for url, reason in ((f"{base}/3/8/0.png", "x and y run from 0 to 7"),
                        (f"{base}/23/0/0.png", "less than or equal to 22"),
                        (f"{base}/2/-1/0.png", "greater than or equal to 0"),
                        (f"/runs/{served.run_id}/tiles/velocity/2/1/1.png", "'depth'"),
                        (f"/runs/{served.run_id}/tiles/first_flooding/2/1/1.png?hour=-1",
                         "greater than or equal to 0")):
        answer = served.client.get(url)
        assert answer.status_code == 422, url
        assert reason in answer.json()["detail"], (url, answer.json())
    assert served.client.get("/runs/999/tiles/depth/12/1000/1000.png").status_code == 404


def test_run_tiles_need_a_key_and_any_role_may_read_them(served):
    tile = _domain_tiles(served.out_dir / DEPTH_FILE, 12)[0]
    url = f"/runs/{served.run_id}/tiles/depth/{tile.z}/{tile.x}/{tile.y}.png"
    anonymous = TestClient(served.app)
    answer = anonymous.get(url)
    assert answer.status_code == 401 and answer.json()["error"] == "UnauthorizedError"
    committee = anonymous.get(url, headers={"X-API-Key": served.committee})
    assert committee.status_code == 200 and committee.content[1:4] == b"PNG"
    assert committee.headers["cache-control"].startswith("private, max-age=")


def _drawn_pixels(served, z: int, hour: float | None) -> int:
    query = "" if hour is None else f"?hour={hour}"
    total = 0
    for tile in _domain_tiles(served.out_dir / FIRST_FLOODING_FILE, z):
        answer = served.client.get(f"/runs/{served.run_id}/tiles/first_flooding/{tile.z}/"
                                   f"{tile.x}/{tile.y}.png{query}")
        if answer.status_code == 404:  # the corner tiles of the domain's lon/lat box
            continue
        assert answer.status_code == 200
        total += int((_rgba(answer.content)[..., 3] > 0).sum())
    return total


def test_first_flooding_draws_only_cells_flooded_by_the_chosen_hour(served):
    with rasterio.open(served.out_dir / FIRST_FLOODING_FILE) as src:
        hours = np.unique(src.read(1)[np.isfinite(src.read(1))])
    assert len(hours) >= 2, "the storm flooded every cell at once; the test needs a spread"
    earliest, latest = float(hours[0]), float(hours[-1])
    counts = [_drawn_pixels(served, 12, hour) for hour in (
        earliest - 0.5, earliest, float(hours[len(hours) // 2]), latest, None)]
    assert counts[0] == 0  # before anything floods: nothing drawn
    assert 0 < counts[1] < counts[3]  # later hours draw strictly more
    assert counts == sorted(counts)  # and never fewer
    assert counts[3] == counts[4]  # by the last flooding hour, every flooded cell
    # The colour of a cell is its class of hours.
    image = _rgba(served.client.get(
        f"/runs/{served.run_id}/tiles/first_flooding/12/"
        f"{_domain_tiles(served.out_dir / FIRST_FLOODING_FILE, 12)[0].x}/"
        f"{_domain_tiles(served.out_dir / FIRST_FLOODING_FILE, 12)[0].y}.png").content)
    assert {tuple(c) for c in image.reshape(-1, 4)} <= \
        {c.rgba for c in FIRST_FLOODING_CLASSES} | {(0, 0, 0, 0)}


def test_a_tile_is_rendered_once_then_served_from_memory(served, monkeypatch):
    opened = []
    real_reader = tiles_module.Reader

    def counting_reader(*args, **kwargs):
        opened.append(args)
        return real_reader(*args, **kwargs)

    monkeypatch.setattr(tiles_module, "Reader", counting_reader)
    tile = _domain_tiles(served.out_dir / DEPTH_FILE, 13)[1]
    url = f"/runs/{served.run_id}/tiles/depth/{tile.z}/{tile.x}/{tile.y}.png"
    hits = served.cache.hits
    first = served.client.get(url)
    assert first.status_code == 200 and len(opened) == 1
    second = served.client.get(url)
    assert len(opened) == 1 and served.cache.hits == hits + 1
    assert second.content == first.content and second.headers["etag"] == first.headers["etag"]
    # The browser's copy is still good: 304, no body.
    revalidated = served.client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert revalidated.status_code == 304 and revalidated.content == b""
    # ``hour`` does not change a depth tile, so it does not split the cache either.
    served.client.get(url + "?hour=3")
    assert len(opened) == 1


def test_the_tile_cache_is_bounded_by_bytes_and_drops_the_least_recently_used():
    cache = TileCache(max_bytes=10)
    for name in "abc":
        cache.put((name,), RenderedTile.of(name.encode() * 4))  # 4 bytes each
    assert cache.get(("a",)) is None and cache.bytes == 8  # a was dropped to stay ≤ 10
    assert cache.get(("b",)) is not None  # b is now the most recent
    cache.put(("d",), RenderedTile.of(b"dddd"))
    assert cache.get(("c",)) is None and cache.get(("b",)) is not None
    cache.put(("huge",), RenderedTile.of(b"x" * 11))  # larger than the whole cache
    assert cache.get(("huge",)) is None and cache.bytes == 8


def test_the_hillshade_is_public_grey_and_computed_once(served, monkeypatch):
    tile = _domain_tiles(served.out_dir / DEPTH_FILE, 12)[0]
    anonymous = TestClient(served.app)
    answer = anonymous.get(f"/terrain/tiles/hillshade/{tile.z}/{tile.x}/{tile.y}.png")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert answer.headers["cache-control"].startswith("public, max-age=")
    image = _rgba(answer.content)
    opaque = image[image[..., 3] > 0]
    assert len(opaque) > 1000
    assert (opaque[:, 0] == opaque[:, 1]).all() and (opaque[:, 1] == opaque[:, 2]).all()
    assert opaque[:, 0].min() >= 1 and opaque[:, 0].std() > 3  # relief, not a flat grey
    files = list((served.settings.data_dir / "tiles").iterdir())
    assert [f.name for f in files if f.name.startswith("hillshade_")] == [files[0].name]
    with rasterio.open(files[0]) as hillshade:
        assert hillshade.dtypes[0] == "uint8" and hillshade.nodata == 0
        assert hillshade.profile["blockxsize"] == 512  # tiled (COG)
    # Another tile of the same terrain: the hillshade file is not computed again.
    monkeypatch.setattr(tiles_module, "hillshade_file",
                        lambda *_: pytest.fail("the hillshade was computed twice"))
    other = _domain_tiles(served.out_dir / DEPTH_FILE, 12)[-1]
    assert anonymous.get(f"/terrain/tiles/hillshade/12/{other.x}/{other.y}.png"
                         ).status_code in (200, 404)
    assert anonymous.get("/terrain/tiles/hillshade/12/0/0.png").status_code == 404


def test_without_a_terrain_model_the_hillshade_is_unavailable(tmp_path):
    app = create_app(Settings(data_dir=tmp_path / "data", terrain_dir=tmp_path / "none",
                              run_worker=False))
    answer = TestClient(app).get("/terrain/tiles/hillshade/12/1043/1886.png")
    assert answer.status_code == 404 and "no terrain model" in answer.json()["detail"]


def test_the_legend_lists_every_layer_s_stops(served):
    legend = TestClient(served.app).get("/tiles/legend.json")  # public
    assert legend.status_code == 200
    layers = legend.json()
    assert set(layers) == {"depth", "first_flooding", "hillshade"}
    depth = layers["depth"]
    assert [s["value"] for s in depth["stops"]] == [0.05, 0.15, 0.5, 1.0, 2.0, 3.0]
    assert [s["color"] for s in depth["stops"]] == [c.hex for c in DEPTH_CLASSES]
    assert depth["stops"][0]["color"] == "#c6dbefff" and depth["units"] == "m"
    assert [s["value"] for s in layers["first_flooding"]["stops"]][:2] == [0.0, 3.0]
    for layer in layers.values():
        assert layer["title"]["es"] and layer["title"]["en"] and layer["not_drawn"]["es"]
        for stop in layer["stops"]:
            assert stop["label"]["es"] and stop["label"]["en"]
            assert len(stop["color"]) == 9 and stop["color"].startswith("#")


@pytest.mark.parametrize(("z", "expected_cell_m"), [(8, 360.0), (9, 180.0), (10, 90.0),
                                                    (12, 90.0)])
def test_low_zoom_tiles_read_an_overview_not_the_full_grid(tmp_path, z, expected_cell_m):
    """A 90 m grid: a zoom-8 pixel is ~590 m on the ground at 14° N, so the 360 m overview
    (the coarsest not coarser than the pixel) is read; from zoom 10 (~150 m) the full grid."""
    from floodwarn.io.raster import write_cog
    from tests.conftest import utm_grid

    path = tmp_path / DEPTH_FILE
    write_cog(path, np.ones((1200, 1200), np.float32), utm_grid((1200, 1200)), nodata=np.nan)
    with rasterio.open(path) as src:
        (lon,), (lat,) = transform(src.crs, "EPSG:4326", [src.bounds.left + 5000],
                                   [src.bounds.top - 5000])
    tile = TMS.tile(lon, lat, z)
    source = tiles_module._source_for_tile(path, tile.z, tile.y)
    assert source.res[0] == pytest.approx(expected_cell_m, rel=0.01)
    image = _rgba(tiles_module.render_run_layer(path, "depth", tile.z, tile.x, tile.y,
                                                hour=None, what="the test raster"))
    assert (image[..., 3] > 0).any()  # 1 m everywhere: drawn


_HALF_WORLD_M = 20037508.342789244  # Web Mercator x (and y) of the antimeridian


def test_a_run_writes_web_mercator_copies_on_the_map_s_tile_grid(served):
    """Every succeeded run has GoogleMapsCompatible copies of its depth and first-flooding
    rasters: pixels of a zoom level's size, whose blocks (and overviews' blocks) are the
    map's tiles."""
    for utm_name, name in ((DEPTH_FILE, DEPTH_WEB_MERCATOR_FILE),
                           (FIRST_FLOODING_FILE, FIRST_FLOODING_WEB_MERCATOR_FILE)):
        with rasterio.open(served.out_dir / name) as copy, \
                rasterio.open(served.out_dir / utm_name) as utm:
            assert copy.crs.to_epsg() == 3857 and np.isnan(copy.nodata)
            assert copy.tags()["units"] == utm.tags()["units"]
            assert copy.block_shapes == [(256, 256)]
            zoom = np.log2(2 * _HALF_WORLD_M / 256 / copy.res[0])
            # The zoom just finer than the 90 m cells (92.6 m in Mercator at 14° N): 11.
            assert zoom == pytest.approx(round(zoom), abs=1e-9) and round(zoom) == 11
            assert copy.res[0] == pytest.approx(copy.res[1])
            tile_m = 256 * copy.res[0]
            left, top = copy.transform.c, copy.transform.f
            for tiles in ((left + _HALF_WORLD_M) / tile_m, (_HALF_WORLD_M - top) / tile_m):
                assert tiles == pytest.approx(round(tiles), abs=1e-6)  # on a tile edge
            assert copy.overviews(1)[:3] == [2, 4, 8]  # zooms 10, 9, 8
            # The UTM raster is inside the copy.
            west, south, east, north = rasterio.warp.transform_bounds(utm.crs, copy.crs,
                                                                      *utm.bounds)
            assert copy.bounds.left <= west and copy.bounds.right >= east
            assert copy.bounds.bottom <= south and copy.bounds.top >= north
    # First-flooding overviews take a cell's hour (nearest), never a mean of two hours.
    with rasterio.open(served.out_dir / FIRST_FLOODING_WEB_MERCATOR_FILE) as full:
        hours = set(np.unique(full.read(1)[np.isfinite(full.read(1))]).tolist())
    with rasterio.open(served.out_dir / FIRST_FLOODING_WEB_MERCATOR_FILE,
                       overview_level=1) as overview:
        coarse = overview.read(1)
    assert np.isfinite(coarse).any()
    assert set(np.unique(coarse[np.isfinite(coarse)]).tolist()) <= hours


def _classes_of(png: bytes) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with MemoryFile(png) as memory, memory.open() as image:
            return image.read(1)


@pytest.mark.parametrize(("layer", "utm_name", "name"), [
    ("depth", DEPTH_FILE, DEPTH_WEB_MERCATOR_FILE),
    ("first_flooding", FIRST_FLOODING_FILE, FIRST_FLOODING_WEB_MERCATOR_FILE)])
def test_tiles_from_the_web_mercator_copy_match_tiles_from_the_utm_raster(served, layer,
                                                                          utm_name, name):
    """Same classes but at the edges of cells. At zoom 11, the copy's own resolution, both
    are the nearest 90 m cell to each pixel's centre: identical. Past it, the copy's 76 m
    pixels are magnified, so a cell's edge moves by up to half a pixel (38 m); at zoom 10
    and coarser both average, over different grids."""
    compared = 0
    for z in (10, 11, 12):
        for tile in _domain_tiles(served.out_dir / utm_name, z):
            try:
                from_utm = _classes_of(tiles_module.render_run_layer(
                    served.out_dir / utm_name, layer, z, tile.x, tile.y, hour=None, what="utm"))
            except tiles_module.NotFoundError:
                continue
            if not from_utm.any():
                continue
            from_copy = _classes_of(tiles_module.render_run_layer(
                served.out_dir / name, layer, z, tile.x, tile.y, hour=None, what="copy"))
            assert (from_copy == from_utm).mean() >= 0.95, (z, tile)
            if z == 11:
                wet = (from_utm > 0) | (from_copy > 0)
                assert (from_copy[wet] == from_utm[wet]).mean() >= 0.99, tile
            compared += 1
    assert compared >= 3, "the storm flooded too few tiles to compare"


def test_tiles_are_read_from_the_web_mercator_copy_and_from_the_utm_raster_of_older_runs(
        served, tmp_path):
    state = tiles_module.MapTiles()
    assert state.run_layer_file(1, "depth", lambda: served.out_dir)[0] == \
        served.out_dir / DEPTH_WEB_MERCATOR_FILE
    # A run made before the copies existed: its UTM raster, the same answer by URL.
    (tmp_path / DEPTH_FILE).symlink_to(served.out_dir / DEPTH_FILE)
    assert state.run_layer_file(2, "depth", lambda: tmp_path)[0] == tmp_path / DEPTH_FILE
    with pytest.raises(tiles_module.NotFoundError, match="no first_flooding raster"):
        state.run_layer_file(2, "first_flooding", lambda: tmp_path)
    tile = _domain_tiles(served.out_dir / DEPTH_FILE, 12)[0]
    old = _classes_of(state.render_run_tile(2, "depth", 12, tile.x, tile.y, None,
                                            lambda: tmp_path).png)
    new = _classes_of(state.render_run_tile(1, "depth", 12, tile.x, tile.y, None,
                                            lambda: served.out_dir).png)
    assert (old == new).mean() >= 0.95
    # Outside the run's raster: 404 from either, naming the UTM raster's extent, also where
    # the copy is padded to whole tiles (empty there).
    with rasterio.open(served.out_dir / DEPTH_FILE) as utm:
        west, south, east, north = rasterio.warp.transform_bounds(utm.crs, "EPSG:4326",
                                                                  *utm.bounds, densify_pts=21)
    with rasterio.open(served.out_dir / DEPTH_WEB_MERCATOR_FILE) as copy:
        padded_west = rasterio.warp.transform_bounds(copy.crs, "EPSG:4326", *copy.bounds)[0]
    assert padded_west < west - 0.05
    beyond = TMS.tile((padded_west + west) / 2, (south + north) / 2, 12)
    assert TMS.bounds(beyond).right < west  # inside the copy, outside the run
    for run_id, out_dir in ((1, served.out_dir), (2, tmp_path)):
        for z, x, y in ((10, 0, 0), (12, beyond.x, beyond.y)):
            with pytest.raises(tiles_module.NotFoundError,
                               match=f"outside run {run_id}'s depth raster, which covers "
                                     f"longitude {west:.3f} to {east:.3f}"):
                state.render_run_tile(run_id, "depth", z, x, y, None, lambda d=out_dir: d)


def test_a_tile_of_the_copy_is_one_window_of_the_overview_for_its_zoom(served, monkeypatch):
    """Zoom 11 reads the full resolution, zoom 9 the ×4 overview; no WarpedVRT."""
    path = served.out_dir / DEPTH_WEB_MERCATOR_FILE
    for z, factor in ((11, 1), (10, 2), (9, 4), (8, 8)):
        tile = _domain_tiles(path, z)[0]
        source = tiles_module._source_for_tile(path, z, tile.y)
        assert source.res[0] == pytest.approx(2 * _HALF_WORLD_M / 256 / 2**z, rel=1e-9)
        assert source.res[0] == pytest.approx(76.437 * factor, rel=1e-4)

    class NoWarp(rasterio.vrt.WarpedVRT):
        def __init__(self, *args, **kwargs):
            raise AssertionError("a Web Mercator copy was warped")

    monkeypatch.setattr("rio_tiler.reader.WarpedVRT", NoWarp)
    for z in (8, 11, 14):
        tile = _domain_tiles(path, z)[0]
        tiles_module.read_tile(path, z, tile.x, tile.y, what="the copy")


def test_palette_png_is_a_valid_png_with_the_palette_and_transparency():
    indices = np.arange(256 * 256, dtype=np.uint32).reshape(256, 256) % 7
    palette = tiles_module.layer_palette(DEPTH_CLASSES)
    png = tiles_module.palette_png(indices.astype(np.uint8), palette)
    rgba = _rgba(png)
    expected = np.array(palette, np.uint8)[indices]
    np.testing.assert_array_equal(rgba, expected)
