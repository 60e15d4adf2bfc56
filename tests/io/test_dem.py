"""Reading DEMs: formats, reprojection, and every kind of bad input gets a clear error."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine

from floodwarn.errors import CRSError, DataFileError, InputError
from floodwarn.io.dem import read_dem, sensible_cellsize_m, utm_crs_for


def _write_tif(path, array, *, crs="EPSG:32616", transform=None, nodata=None):
    transform = transform or Affine(90, 0, 200_000, 0, -90, 1_600_000)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=array.shape[1],
        height=array.shape[0],
        count=1,
        dtype=array.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
    ) as dst:
        dst.write(array, 1)
    return path


def test_srtm_hgt_is_reprojected_to_utm_with_a_sensible_cell(srtm_tile):
    dem = read_dem(srtm_tile, target_crs="auto")
    assert dem.grid.epsg() == 32619  # 72-71 W lies in UTM zone 19
    # 3" at 44.5 N: 66 m east-west x 92 m north-south -> square cell of the same area.
    assert dem.grid.cellsize_m == pytest.approx(78, abs=1)
    valid = dem.elevation[~np.isnan(dem.elevation)]
    assert 100 < valid.min() < 200 and 1800 < valid.max() < 1950  # tile spans 115-1908 m
    assert dem.metadata["reprojected"] and not dem.metadata["synthetic"]


def test_projected_dem_keeps_its_grid_cell_for_cell(tmp_path):
    z = np.arange(20, dtype=np.float32).reshape(4, 5)
    dem = read_dem(_write_tif(tmp_path / "p.tif", z, nodata=-9999))
    np.testing.assert_array_equal(dem.elevation, z)
    assert dem.grid.transform == Affine(90, 0, 200_000, 0, -90, 1_600_000)


def test_esri_ascii_grid(tmp_path):
    asc = tmp_path / "dem.asc"
    asc.write_text(
        "ncols 4\nnrows 3\nxllcorner 500000\nyllcorner 1500000\ncellsize 30\n"
        "NODATA_value -9999\n1 2 3 4\n5 -9999 7 8\n9 10 11 12\n"
    )
    (tmp_path / "dem.prj").write_text(rasterio.crs.CRS.from_epsg(32616).to_wkt())
    dem = read_dem(asc)
    assert dem.grid.shape == (3, 4) and dem.grid.cellsize_m == 30
    assert np.isnan(dem.elevation[1, 1]) and dem.elevation[2, 3] == 12


def test_nodata_cells_become_nan(tmp_path):
    z = np.full((4, 4), 10, np.int16)
    z[0, 0] = -32768
    dem = read_dem(_write_tif(tmp_path / "n.tif", z, nodata=-32768))
    assert np.isnan(dem.elevation[0, 0]) and dem.elevation[1, 1] == 10


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataFileError, match="no such DEM file"):
        read_dem(tmp_path / "nope.tif")


def test_corrupt_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "corrupt.tif"
    bad.write_bytes(b"II*\x00" + b"\x00garbage" * 20)
    with pytest.raises(DataFileError, match="corrupt, truncated"):
        read_dem(bad)


def test_truncated_hgt_is_a_clear_error(tmp_path, srtm_tile):
    cut = tmp_path / "N44W072.hgt"
    cut.write_bytes(srtm_tile.read_bytes()[:100_000])
    with pytest.raises(DataFileError, match=r"N44W072\.hgt"):
        read_dem(cut)


def test_missing_crs_is_refused(tmp_path):
    z = np.ones((4, 4), np.float32)
    with pytest.raises(CRSError, match="has no CRS"):
        read_dem(_write_tif(tmp_path / "nocrs.tif", z, crs=None))


def test_missing_nodata_with_sentinel_values_is_refused(tmp_path):
    z = np.full((4, 4), 100, np.int16)
    z[2, 3] = -32768
    with pytest.raises(InputError, match=r"declares no nodata.*-32768.*row 2, col 3"):
        read_dem(_write_tif(tmp_path / "nonodata.tif", z))


def test_missing_nodata_can_be_supplied(tmp_path):
    z = np.full((4, 4), 100, np.int16)
    z[2, 3] = -32768
    dem = read_dem(_write_tif(tmp_path / "nonodata.tif", z), nodata=-32768)
    assert np.isnan(dem.elevation[2, 3])


def test_nan_holes_are_refused_unless_filled(tmp_path):
    r, c = np.mgrid[0:20, 0:20]
    z = (r + c).astype(np.float32)
    z[8:10, 8:10] = np.nan
    path = _write_tif(tmp_path / "holes.tif", z, nodata=-9999)
    with pytest.raises(InputError, match=r"NaN holes \(first at row 8, col 8\)"):
        read_dem(path)
    filled = read_dem(path, fill_voids=True).elevation
    assert not np.isnan(filled).any()
    assert 12 <= filled[8, 8] <= 22  # interpolated from the plane around it


def test_all_nodata_is_refused(tmp_path):
    z = np.full((5, 5), -9999, np.float32)
    with pytest.raises(InputError, match="every cell is nodata"):
        read_dem(_write_tif(tmp_path / "empty.tif", z, nodata=-9999))


def test_two_by_two_is_refused(tmp_path):
    z = np.ones((2, 2), np.float32)
    with pytest.raises(InputError, match=r"2×2 cells.*at least 3×3"):
        read_dem(_write_tif(tmp_path / "tiny.tif", z, nodata=-9999))


def test_non_square_cells_are_refused(tmp_path):
    z = np.ones((4, 4), np.float32)
    path = _write_tif(
        tmp_path / "rect.tif", z, nodata=-9999, transform=Affine(30, 0, 200_000, 0, -90, 1_600_000)
    )
    with pytest.raises(InputError, match=r"not square \(30 m × 90 m\)"):
        read_dem(path)


def test_wrong_units_are_refused(tmp_path):
    z = np.full((4, 4), 150_000, np.float32)  # centimetres
    with pytest.raises(InputError, match="outside the plausible range"):
        read_dem(_write_tif(tmp_path / "cm.tif", z, nodata=-9999))


def test_non_metric_projected_crs_is_refused(tmp_path):
    z = np.ones((4, 4), np.float32)
    with pytest.raises(CRSError, match="axis unit"):
        read_dem(_write_tif(tmp_path / "ft.tif", z, nodata=-9999, crs="EPSG:2229"))


def test_geographic_target_crs_is_refused(srtm_tile):
    with pytest.raises(CRSError, match="not projected"):
        read_dem(srtm_tile, target_crs="EPSG:4326")


def test_utm_zone_and_cell_size_helpers():
    assert utm_crs_for(-89.2, 13.7) == "EPSG:32616"  # San Salvador
    assert utm_crs_for(-71.5, 44.5) == "EPSG:32619"
    assert utm_crs_for(-70.0, -33.0) == "EPSG:32719"
    assert sensible_cellsize_m(1 / 1200, 1 / 1200, 0.0) == 92
