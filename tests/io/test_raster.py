"""Run rasters are Cloud Optimized GeoTIFFs whose overviews let a map read a country at low
zoom without touching the full-resolution cells."""

import numpy as np
import pytest
import rasterio

from floodwarn.io.forecast_outputs import DEPTH_FILE
from floodwarn.io.raster import write_cog
from tests.conftest import utm_grid


def test_a_run_sized_raster_is_a_tiled_cog_with_averaged_overviews(tmp_path):
    rows, cols = 1100, 1800  # half the demo grid each way
    depth = np.zeros((rows, cols), np.float32)
    depth[:, ::2] = 2.0  # flooded every other column: a 2×2 overview cell averages to 1 m
    depth[:4, :4] = np.nan  # nodata (a lake) is left out of the average
    path = tmp_path / DEPTH_FILE
    write_cog(path, depth, utm_grid((rows, cols)), nodata=np.nan)
    with rasterio.open(path) as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.block_shapes == [(512, 512)]
        assert src.overviews(1) == [2, 4]  # down to under one 512 block
    with rasterio.open(path, overview_level=0) as half:
        overview = half.read(1)
    assert np.isnan(overview[:2, :2]).all()
    # "average": the mean depth of the area (dry cells count as 0), never the deepest cell.
    np.testing.assert_allclose(overview[10:20, 10:20], 1.0)


def test_a_web_mercator_copy_is_on_the_google_maps_compatible_grid(tmp_path):
    from floodwarn.io.raster import write_web_mercator_cog

    depth = np.zeros((600, 500), np.float32)
    depth[100:300, 50:400] = 1.5
    depth[:3, :3] = np.nan
    source = tmp_path / DEPTH_FILE
    write_cog(source, depth, utm_grid(depth.shape), nodata=np.nan, tags={"units": "m"},
              description="depth")
    target = tmp_path / "depth_3857.tif"
    write_web_mercator_cog(source, target)
    assert not list(tmp_path.glob("*.partial"))
    half_world = 20037508.342789244
    with rasterio.open(target) as copy:
        assert copy.crs.to_epsg() == 3857 and copy.block_shapes == [(256, 256)]
        assert copy.tags()["units"] == "m" and copy.descriptions == ("depth",)
        assert copy.count == 1 and np.isnan(copy.nodata)  # no alpha band: nodata masks
        assert copy.res[0] == 2 * half_world / 256 / 2**11  # just finer than 90 m
        for edge in (copy.transform.c + half_world, half_world - copy.transform.f):
            assert edge / (256 * copy.res[0]) == pytest.approx(
                round(edge / (256 * copy.res[0])), abs=1e-6)
        values = copy.read(1)
    # Nearest neighbour: only the source's values, no blended edge.
    assert set(np.unique(values[np.isfinite(values)]).tolist()) == {0.0, 1.5}


def test_a_web_mercator_copy_refuses_an_unknown_kind_and_an_unreadable_source(tmp_path):
    from floodwarn.errors import DataFileError
    from floodwarn.io.raster import write_web_mercator_cog

    with pytest.raises(ValueError, match="kind must be one of"):
        write_web_mercator_cog(tmp_path / "a.tif", tmp_path / "b.tif", kind="max")
    (tmp_path / "a.tif").write_bytes(b"not a tiff")
    with pytest.raises(DataFileError, match="cannot be copied to Web Mercator"):
        write_web_mercator_cog(tmp_path / "a.tif", tmp_path / "b.tif")
    assert not (tmp_path / "b.tif").exists() and not (tmp_path / "b.tif.partial").exists()
