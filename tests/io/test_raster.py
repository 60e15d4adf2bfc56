"""Run rasters are Cloud Optimized GeoTIFFs whose overviews let a map read a country at low
zoom without touching the full-resolution cells."""

import numpy as np
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
