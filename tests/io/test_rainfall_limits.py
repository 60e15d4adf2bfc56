"""Rain readers against hostile or mistaken files, each made for real in the test: declared
sizes over the cell budget (refused before any data is read), corrupt and truncated GRIB,
NetCDF and GeoTIFF (always a DataFileError naming the file, never its folder), file names that
look like patterns, the suffix table, and unit mistakes by a factor of 1000 either way."""

from __future__ import annotations

import gc
import resource
import subprocess
import sys
import tracemalloc
import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine

from floodwarn.errors import DataFileError, InputError
from floodwarn.io import rainfall as rainfall_io
from floodwarn.io.rain_limits import MAX_RAIN_CELLS
from floodwarn.io.rainfall import (
    RAIN_FILE_SUFFIXES,
    RAIN_READERS,
    read_grib,
    read_netcdf,
    read_rainfall,
    write_rainfall_netcdf,
)
from floodwarn.rainfall.storm import AMANDA_2020, storm_forecast

DATA = Path(__file__).parents[1] / "data" / "rainfall"
GFS_DRY = DATA / "gfs_20110110_12z_f114-120_precip.grib2"
#: Every file is written in a folder of this name; no message may show it.
FOLDER = "carpeta_privada"
HOURS = np.datetime64("2020-05-31T00:00") + np.arange(1, 5) * np.timedelta64(1, "h")
LAT = np.array([14.5, 13.5, 12.5])
LON = np.array([-90.5, -89.5, -88.5, -87.5])


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / FOLDER
    path.mkdir()
    return path


def _names_only_the_file(message: str, name: str, folder: Path) -> None:
    assert name in message, message
    assert FOLDER not in message and str(folder) not in message, message


# ------------------------------------------------------------------------------ file makers


def _netcdf(path: Path, values: np.ndarray, *, units: str = "mm", name: str = "pr",
            times: np.ndarray = HOURS, fmt: str = "NETCDF4") -> Path:
    """A CF forecast (time, lat, lon), depth per step."""
    ds = xr.Dataset({name: (("time", "lat", "lon"), values,
                            {"units": units, "floodwarn_accumulation": "step"})},
                    coords={"time": times, "lat": LAT[: values.shape[1]],
                            "lon": LON[: values.shape[2]]})
    ds.to_netcdf(path, format=fmt)
    return path


def _declared_only(path: Path, dims: dict[str, int]) -> Path:
    """A NetCDF-4 file declaring a rain variable over ``dims`` without writing any of it."""
    import netCDF4

    with netCDF4.Dataset(path, "w") as ds:
        for name, size in dims.items():
            ds.createDimension(name, size)
        ds.createVariable("time", "f8", ("time",)).units = "hours since 2020-05-31 00:00"
        ds.createVariable("lat", "f4", ("lat",))
        ds.createVariable("lon", "f4", ("lon",))
        rain = ds.createVariable("pr", "f4", tuple(dims))
        rain.units = "mm"
    return path


def _grib2_tp(path: Path, totals: list[float] | None = None, *, n_messages: int = 1,
              packing: str | None = None, grid: tuple[int, int] | None = None) -> Path:
    """GRIB2 total precipitation (kg m-2) on the 16 × 31 sample grid, accumulated from hour 0
    in 6-h steps: message k holds ``totals[k]`` everywhere (or a smooth field of 0-20 mm).
    ``grid`` (Ni, Nj) re-declares the grid of a constant field without encoding its points."""
    import eccodes

    n_messages = len(totals) if totals is not None else n_messages
    with open(path, "wb") as fh:
        for k in range(n_messages):
            gid = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib2")
            eccodes.codes_set(gid, "productDefinitionTemplateNumber", 8)
            eccodes.codes_set(gid, "paramId", 228228)  # tp, kg m-2
            eccodes.codes_set(gid, "dataDate", 20200531)
            eccodes.codes_set(gid, "dataTime", 0)
            eccodes.codes_set(gid, "stepType", "accum")
            eccodes.codes_set(gid, "startStep", 0)
            eccodes.codes_set(gid, "endStep", 6 * (k + 1))
            n = eccodes.codes_get(gid, "numberOfPoints")
            if grid is not None or totals is not None:
                eccodes.codes_set(gid, "bitsPerValue", 0 if grid is not None else 24)
                value = 0.0 if totals is None else totals[k]
                eccodes.codes_set_values(gid, np.full(n, value))
            else:
                eccodes.codes_set(gid, "bitsPerValue", 16)
                eccodes.codes_set_values(gid, np.round(np.abs(np.sin(np.arange(n) / 7)) * 20, 1)
                                         * (k + 1))
            if packing:
                eccodes.codes_set(gid, "packingType", packing)
            if grid is not None:  # a constant field: section 7 holds no values at all
                ni, nj = grid
                for key, value in (("Ni", ni), ("Nj", nj), ("numberOfDataPoints", ni * nj),
                                   ("numberOfValues", ni * nj)):
                    eccodes.codes_set(gid, key, value)
            eccodes.codes_write(gid, fh)
            eccodes.codes_release(gid)
    return path


def _grib_offsets(path: Path) -> dict[str, int]:
    import eccodes

    with open(path, "rb") as fh:
        gid = eccodes.codes_grib_new_from_file(fh)
        offsets = {key: int(eccodes.codes_get(gid, key))
                   for key in ("offsetSection3", "offsetSection5", "offsetSection7")}
        eccodes.codes_release(gid)
    return offsets


def _geotiff(path: Path, values: np.ndarray, *, units: str | None = "mm",
             **profile: object) -> Path:
    with rasterio.open(path, "w", driver="GTiff", height=values.shape[-2],
                       width=values.shape[-1], count=values.shape[0], dtype="float32",
                       crs="EPSG:4326", transform=Affine(1.0, 0, -91.0, 0, -1.0, 15.0),
                       **profile) as ds:
        ds.write(values.astype(np.float32))
        if units:
            ds.update_tags(units=units, step_start="2020-05-31T00:00:00")
    return path


def _flip(path: Path, offsets: range | list[int], out: Path) -> Path:
    data = bytearray(path.read_bytes())
    for i in offsets:
        data[i] ^= 0xFF
    out.write_bytes(bytes(data))
    return out


# ----------------------------------------------------------------------- the cell budget


def _refused_without_allocating(read: Callable[[], object], match: str) -> str:
    """Run ``read`` (already warmed up) expecting the budget refusal; numpy allocations
    (tracemalloc) and the process's peak resident memory must both grow by < 100 MB."""
    gc.collect()
    peak_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match=match) as info:
            read()
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_rss_kib) / 1024
    assert peak_bytes < 100 * 2**20, f"{peak_bytes / 2**20:.0f} MB allocated"
    assert grown_mb < 100, f"peak memory grew {grown_mb:.0f} MB"
    return str(info.value)


@pytest.mark.parametrize(
    ("dims", "declared"),
    [
        ({"time": 16, "lat": 4000, "lon": 4000}, "16 × 4,000 × 4,000 (variable 'pr': time, "
                                                 "lat, lon) = 256,000,000 cells"),
        ({"time": 1000, "lat": 100_000, "lon": 100_000},
         "1,000 × 100,000 × 100,000 (variable 'pr': time, lat, lon) = 10,000,000,000,000 cells"),
        ({"number": 51, "time": 40, "lat": 200, "lon": 200},
         "51 × 40 × 200 × 200 (variable 'pr': number, time, lat, lon) = 81,600,000 cells"),
    ],
    ids=["16x4000x4000", "1e13-cells", "ensemble"],
)
def test_netcdf_declaring_more_than_the_budget_is_refused_before_reading(folder, dims,
                                                                          declared):
    warm = _netcdf(folder / "warm.nc", np.ones((4, 3, 4)))
    read_rainfall(warm)
    path = _declared_only(folder / "huge.nc", dims)
    assert path.stat().st_size < 100_000
    message = _refused_without_allocating(lambda: read_rainfall(path), "cells")
    _names_only_the_file(message, "huge.nc", folder)
    assert declared in message
    assert f"budget of {MAX_RAIN_CELLS:,} cells" in message
    assert "Crop the forecast to El Salvador" in message and "max_cells" in message


def test_max_cells_overrides_the_budget_and_must_be_a_positive_count(folder):
    path = _netcdf(folder / "small.nc", np.full((4, 3, 4), 2.0))  # 48 cells
    with pytest.raises(InputError, match=r"small\.nc: declares 4 × 3 × 4 .* = 48 cells.*"
                                         r"budget of 47 cells"):
        read_rainfall(path, max_cells=47)
    with pytest.raises(InputError, match="budget of 47 cells"):
        read_netcdf(path, max_cells=47)
    assert read_rainfall(path, max_cells=48).rain_mm.shape == (1, 4, 3, 4)
    for bad in (0, -5, 2.5, True):
        with pytest.raises(InputError, match="max_cells must be a positive whole number"):
            read_rainfall(path, max_cells=bad)  # type: ignore[arg-type]


def test_a_dimension_longer_than_the_budget_is_refused(folder):
    # xarray loads every 1-D coordinate when it opens a file: a dimension alone may be huge.
    path = folder / "stations.nc"
    ds = xr.Dataset({"pr": (("time", "lat", "lon"), np.ones((4, 3, 4)), {"units": "mm"}),
                     "station_id": (("station",), np.arange(100))},
                    coords={"time": HOURS, "lat": LAT, "lon": LON, "station": np.arange(100)})
    ds.to_netcdf(path)
    with pytest.raises(InputError, match=r"stations\.nc: declares 100 \(dimension 'station'\)"):
        read_rainfall(path, max_cells=60)


@pytest.mark.parametrize(
    ("n_messages", "grid", "declared"),
    [(1, (20_000, 20_000), "1 × 20,000 × 20,000 (tp messages × Nj × Ni) = 400,000,000 cells"),
     (16, (4000, 4000), "16 × 4,000 × 4,000 (tp messages × Nj × Ni) = 256,000,000 cells")],
    ids=["one-huge-grid", "16x4000x4000"],
)
def test_grib_declaring_more_than_the_budget_is_refused_before_decoding(folder, n_messages,
                                                                         grid, declared):
    read_rainfall(_grib2_tp(folder / "warm.grib2"))
    # Constant fields: a few hundred bytes per message, whatever grid they declare.
    path = _grib2_tp(folder / "huge.grib2", n_messages=n_messages, grid=grid)
    assert path.stat().st_size < 300 * n_messages
    message = _refused_without_allocating(lambda: read_rainfall(path), "cells")
    _names_only_the_file(message, "huge.grib2", folder)
    assert declared in message and "wgrib2" in message


def test_grib_budget_counts_messages_from_headers_only(folder, monkeypatch):
    import eccodes

    path = _grib2_tp(folder / "three.grib2", n_messages=3)  # 3 × 31 × 16 = 1,488 cells
    assert read_rainfall(path, max_cells=1488).rain_mm.shape == (1, 3, 31, 16)

    def no_decoding(*_args: object) -> None:
        raise AssertionError("values decoded before the budget was checked")

    monkeypatch.setattr(eccodes, "codes_get_values", no_decoding)
    with pytest.raises(InputError, match=r"three\.grib2: declares 3 × 31 × 16 .* = 1,488 cells"):
        read_grib(path, max_cells=1487)


def test_geotiff_declaring_more_than_the_budget_is_refused_before_reading(folder):
    read_rainfall(_geotiff(folder / "rain_20200531T0100.tif", np.ones((1, 3, 4))))
    path = folder / "rain_20200531T0200.tif"
    with rasterio.open(path, "w", driver="GTiff", height=8000, width=8000, count=1,
                       dtype="float32", crs="EPSG:4326", tiled=True, compress="deflate",
                       sparse_ok=True, transform=Affine(0.0005, 0, -91, 0, -0.0005, 15)) as ds:
        ds.update_tags(units="mm")  # no tile written: an 8000 × 8000 raster in a few KB
    assert path.stat().st_size < 100_000
    message = _refused_without_allocating(lambda: read_rainfall(path), "cells")
    _names_only_the_file(message, path.name, folder)
    assert "1 × 1 × 8,000 × 8,000 (bands × files × rows × columns) = 64,000,000" in message


def test_geotiff_stack_budget_counts_every_file(folder):
    for hour in (1, 2, 3):
        _geotiff(folder / f"rain_20200531T0{hour}00.tif", np.full((2, 3, 4), 1.0))
    with pytest.raises(InputError, match=rf"{FOLDER}: declares 2 × 3 × 3 × 4 .* = 72 cells"):
        read_rainfall(folder, max_cells=71)
    assert read_rainfall(folder, max_cells=72).rain_mm.shape == (2, 3, 3, 4)


# -------------------------------------------------------------------- corrupt or truncated


@pytest.mark.parametrize(
    ("corrupt", "match"),
    [
        # ecCodes DecodingError ("Decoding invalid"): section 7 says it is 255 bytes longer.
        (lambda o, n: [o["offsetSection7"] + 3], "GRIB message 1 cannot be decoded"),
        # ecCodes KeyValueNotFoundError: section 7's length is garbage.
        (lambda o, n: [o["offsetSection7"]], "GRIB message 1 cannot be decoded"),
        # Section 5 claims 4,278,190,576 coded values for a 496-point grid (a 32 GB array).
        (lambda o, n: [o["offsetSection5"] + 5], "GRIB message 1 has a corrupt header"),
        # Section 3 claims 4,278,190,576 grid points for Ni × Nj = 496.
        (lambda o, n: [o["offsetSection3"] + 6], "GRIB message 1 has a corrupt header"),
        (lambda o, n: range(4), "holds no GRIB message"),  # no "GRIB" at the start
    ],
    ids=["decoding-error", "section-7-length", "coded-values", "grid-points", "not-grib"],
)
def test_corrupt_grib2_is_a_data_file_error_naming_the_file(folder, corrupt, match):
    good = _grib2_tp(folder / "good.grib2")
    assert read_rainfall(good).rain_mm.max() == pytest.approx(20.0)
    bad = _flip(good, corrupt(_grib_offsets(good), good.stat().st_size), folder / "daño.grib2")
    with pytest.raises(DataFileError, match=match) as info:
        read_rainfall(bad)
    _names_only_the_file(str(info.value), "daño.grib2", folder)


def test_truncated_and_empty_grib_are_data_file_errors(folder):
    good = _grib2_tp(folder / "good.grib2", n_messages=2)
    cut = folder / "cut.grib2"
    for size in (good.stat().st_size // 4, good.stat().st_size - 4, 0):
        cut.write_bytes(good.read_bytes()[:size])
        with pytest.raises(DataFileError, match=r"cut\.grib2: (GRIB message \d is corrupt or "
                                                r"truncated|holds no GRIB message)") as info:
            read_rainfall(cut)
        _names_only_the_file(str(info.value), "cut.grib2", folder)


def test_gfs_grib2_with_flipped_bits_never_escapes_as_a_decoder_error(folder):
    # 400 random bytes flipped past the headers, ten times: what ecCodes decodes is refused by
    # the value checks (InputError), what it cannot decode is a DataFileError.
    rng = np.random.default_rng(7)
    outcomes = set()
    for attempt in range(10):
        bad = _flip(GFS_DRY, sorted(set(rng.integers(200, GFS_DRY.stat().st_size - 10, 400))),
                    folder / f"gfs_{attempt}.grib2")
        with pytest.raises((DataFileError, InputError)) as info:
            read_rainfall(bad)
        _names_only_the_file(str(info.value), bad.name, folder)
        outcomes.add(type(info.value))
    assert DataFileError in outcomes


def test_netcdf4_with_a_corrupt_compressed_chunk_is_a_data_file_error(folder):
    import netCDF4

    values = np.arange(4 * 3 * 4, dtype="<f4").reshape(4, 3, 4) % 7
    path = folder / "chunk.nc"
    with netCDF4.Dataset(path, "w") as ds:
        for name, size in (("time", 4), ("lat", 3), ("lon", 4)):
            ds.createDimension(name, size)
        ds.createVariable("time", "f8", ("time",), fill_value=False)[:] = [1, 2, 3, 4]
        ds["time"].units = "hours since 2020-05-31 00:00"
        ds.createVariable("lat", "f8", ("lat",), fill_value=False)[:] = LAT
        ds.createVariable("lon", "f8", ("lon",), fill_value=False)[:] = LON
        rain = ds.createVariable("pr", "f4", ("time", "lat", "lon"), zlib=True, complevel=4,
                                 shuffle=False, chunksizes=(4, 3, 4))
        rain.units = "mm"
        rain[:] = values
    np.testing.assert_array_equal(read_rainfall(path).rain_mm[0], values)
    # HDF5's deflate filter is zlib: find the chunk by compressing the same bytes.
    chunk = zlib.compress(values.tobytes(), 4)
    start = path.read_bytes().find(chunk)
    assert start > 0
    bad = _flip(path, range(start + 4, start + 12), folder / "chunk_bad.nc")
    with pytest.raises(DataFileError, match="its data cannot be decoded") as info:
        read_rainfall(bad)
    _names_only_the_file(str(info.value), "chunk_bad.nc", folder)


@pytest.mark.parametrize("fmt", ["NETCDF4", "NETCDF3_CLASSIC", "NETCDF3_64BIT"])
def test_truncated_netcdf_is_a_data_file_error_at_any_length(folder, fmt):
    good = _netcdf(folder / "good.nc", np.full((4, 3, 4), 2.5), fmt=fmt)
    data = good.read_bytes()
    cut = folder / "cut.nc"
    # Classic files: netCDF-C reads missing bytes as zeros (no rain); the header says where
    # each variable ends. Every cut of the last 100 bytes, then coarser ones.
    for size in [*range(len(data) - 100, len(data)), *range(0, len(data), 97)]:
        cut.write_bytes(data[:size])
        try:
            read_rainfall(cut)
        except DataFileError as exc:
            _names_only_the_file(str(exc), "cut.nc", folder)
        except InputError as exc:  # a header cut before the rain variable's units
            assert "cut.nc" in str(exc) and size < len(data) // 2, (size, exc)
        else:
            pytest.fail(f"{fmt} cut to {size} of {len(data)} bytes was read")


def test_corrupt_classic_netcdf_header_is_refused_before_netcdf_c_crashes(folder):
    # The classic header's dimension count is bytes 12-15 (after "CDF\x01", numrecs and the
    # NC_DIMENSION tag); 0x5F000003 dimensions crash netCDF-C 4.9/4.10 with a segmentation
    # fault. The read runs in a child process so that a regression fails this test only.
    good = _netcdf(folder / "good.nc", np.full((4, 3, 4), 2.5), fmt="NETCDF3_CLASSIC")
    bad = folder / "dims.nc"
    data = bytearray(good.read_bytes())
    assert data[:4] == b"CDF\x01" and data[12:16] == b"\x00\x00\x00\x03"
    data[12] = 0x5F
    bad.write_bytes(bytes(data))
    code = ("import sys\nfrom floodwarn.errors import DataFileError\n"
            "from floodwarn.io.rainfall import read_rainfall\n"
            "try:\n    read_rainfall(sys.argv[1])\n"
            "except DataFileError as exc:\n    print(exc)\n")
    run = subprocess.run([sys.executable, "-c", code, str(bad)], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith("dims.nc: is truncated or corrupt"), run.stdout
    assert FOLDER not in run.stdout


def test_empty_and_non_netcdf_files_are_data_file_errors(folder):
    for name, content in (("empty.nc", b""), ("text.nc", b"precipitation,mm\n1,2\n"),
                          ("png.nc4", b"\x89PNG\r\n\x1a\n" + bytes(200))):
        path = folder / name
        path.write_bytes(content)
        with pytest.raises(DataFileError, match="cannot be read as NetCDF") as info:
            read_rainfall(path)
        _names_only_the_file(str(info.value), name, folder)


def test_broken_geotiffs_are_data_file_errors(folder):
    good = _geotiff(folder / "rain_20200531T0100.tif", np.arange(12.0).reshape(1, 3, 4) / 2,
                    compress="deflate")
    np.testing.assert_allclose(read_rainfall(good).rain_mm[0, 0], np.arange(12).reshape(3, 4) / 2)
    data = good.read_bytes()
    cut = folder / "rain_20200531T0200.tif"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(DataFileError, match="cannot be read as GeoTIFF") as info:
        read_rainfall(cut)
    _names_only_the_file(str(info.value), cut.name, folder)
    # The deflated strip (where GDAL says it is), with bytes flipped.
    with rasterio.open(good) as ds:
        start = int(ds.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1))
        assert int(ds.get_tag_item("BLOCK_SIZE_0_0", "TIFF", bidx=1)) > 12
    bad = _flip(good, range(start + 2, start + 10), folder / "rain_20200531T0300.tif")
    with pytest.raises(DataFileError, match="cannot be read as GeoTIFF") as info:
        read_rainfall(bad)
    _names_only_the_file(str(info.value), bad.name, folder)


# ------------------------------------------------------------------ names, patterns, suffixes


def test_a_file_named_like_a_pattern_is_read_as_that_file(folder):
    _netcdf(folder / "x1.nc", np.full((4, 3, 4), 9.0))  # what "x[1].nc" matches as a pattern
    path = _netcdf(folder / "x[1].nc", np.full((4, 3, 4), 2.0))
    for given in (path, str(path)):
        fc = read_rainfall(given)
        np.testing.assert_array_equal(fc.rain_mm, 2.0)
    star = _netcdf(folder / "rain*?.nc", np.full((4, 3, 4), 3.0))
    np.testing.assert_array_equal(read_rainfall(star).rain_mm, 3.0)


def test_a_missing_file_is_no_such_file_not_a_pattern(folder):
    for name in ("missing.nc", "missing.grib2", "missing.tif"):
        with pytest.raises(DataFileError, match=rf"^{name}: no such file\.$"):
            read_rainfall(folder / name)
    with pytest.raises(DataFileError, match=r"^y\[1\]\.nc: no such file, and as a pattern it "
                                            r"matches no file\.$"):
        read_rainfall(str(folder / "y[1].nc"))


def test_patterns_select_geotiff_stacks_only(folder):
    for hour, depth in ((1, 2.0), (2, 4.0)):
        _geotiff(folder / f"rain_20200531T0{hour}00.tif", np.full((1, 3, 4), depth), units=None)
    fc = read_rainfall(str(folder / "rain_*.tif"), units="mm")
    np.testing.assert_allclose(fc.rain_mm[0, :, 0, 0], [2.0, 4.0])
    _netcdf(folder / "rain_a.nc", np.ones((4, 3, 4)))
    with pytest.raises(InputError, match=r"rain_\*: as a pattern it matches files that are not "
                                         r"GeoTIFFs \(\['rain_a.nc'\]\)"):
        read_rainfall(str(folder / "rain_*"), units="mm")
    with pytest.raises(InputError, match="GeoTIFF rain has no variables"):
        read_rainfall(folder, variable="pr", units="mm")


def test_one_suffix_table_dispatches_every_format(folder):
    assert RAIN_FILE_SUFFIXES == tuple(RAIN_READERS) == (
        ".nc", ".nc4", ".netcdf", ".grib", ".grib1", ".grib2", ".grb", ".grb2", ".tif", ".tiff")
    nc = _netcdf(folder / "src.nc", np.full((4, 3, 4), 1.5))
    grib = _grib2_tp(folder / "src.grib2", [1.5])
    tif = _geotiff(folder / "src_20200531T0100.tif", np.full((1, 3, 4), 1.5))
    sources = {rainfall_io.read_netcdf: nc, rainfall_io.read_grib: grib,
               rainfall_io.read_geotiff_stack: tif}
    for suffix, reader in RAIN_READERS.items():
        for spelled in (suffix, suffix.upper()):
            path = folder / f"rain_20200531T0100{spelled}"
            path.write_bytes(sources[reader].read_bytes())
            assert read_rainfall(path).rain_mm.max() == pytest.approx(1.5), spelled
            path.unlink()
    other = folder / "rain.csv"
    other.write_text("x")
    with pytest.raises(InputError, match=r"^rain\.csv: unknown rain forecast format '\.csv'; "
                                         r"floodwarn reads NetCDF \(\.nc, \.nc4, \.netcdf\); "
                                         r"GRIB \(\.grib, \.grib1, \.grib2, \.grb, \.grb2\); "
                                         r"GeoTIFF \(\.tif, \.tiff\)"):
        read_rainfall(other)


# ------------------------------------------------------------------------------ unit mistakes

#: Depth per step in metres: 2 mm everywhere each hour, and a 100 mm burst at one cell.
METRES = np.full((4, 3, 4), 0.002)
METRES[1, 1, 2] += 0.1


def test_metres_labelled_mm_are_refused_with_the_right_hint(folder):
    path = _netcdf(folder / "ecmwf_as_mm.nc", METRES, units="mm")
    with pytest.raises(InputError) as info:
        read_rainfall(path)
    # By hand: wettest cell 4 × 0.002 + 0.1 = 0.108; every one of the 12 cells gets 0.008+.
    assert str(info.value) == (
        "ecmwf_as_mm.nc: the wettest cell gets only 0.108 mm over the whole forecast (4 h), "
        "yet 100% of the cells get rain (≥ 0.001 mm): the values look like metres labelled "
        "'mm' — 0.108 m would be 108 mm. If they are metres, set the units to 'm' (fix the "
        "file's units attribute, or units='m' / --units 'm'). If the forecast really is this "
        "dry, confirm its units explicitly: units='mm' / --units 'mm'."
    )
    as_metres = read_rainfall(path, units="m")
    assert as_metres.rain_mm.sum(axis=1).max() == pytest.approx(108.0, rel=1e-5)
    confirmed = read_rainfall(path, units="mm")  # the caller says: it really is that dry
    assert confirmed.rain_mm.sum(axis=1).max() == pytest.approx(0.108, rel=1e-5)
    assert confirmed.metadata["units_confirmed"] is True


def test_metres_in_a_grib_kg_m2_field_are_refused_too(folder):
    path = _grib2_tp(folder / "tp_in_m.grib2", [0.004, 0.009])  # 4 mm, then 5 mm, as metres
    with pytest.raises(InputError, match=r"tp_in_m\.grib2: the wettest cell gets only 0\.009 mm "
                                         r".*100% of the cells.*labelled 'kg m\*\*-2' — 0\.009 m "
                                         r"would be 9 mm"):
        read_rainfall(path)
    np.testing.assert_allclose(read_rainfall(path, units="m").rain_mm[0, :, 0, 0], [4.0, 5.0],
                               rtol=1e-4)


@pytest.mark.parametrize(
    "depth",
    [np.zeros((4, 3, 4)),  # a dry-season forecast: nothing anywhere
     np.where(np.arange(48).reshape(4, 3, 4) % 12 < 2, 0.2, 0.0),  # 0.8 mm on 2 of 12 cells
     np.full((4, 3, 4), 0.25)],  # 1.0 mm everywhere: the wettest total reaches 1 mm
    ids=["all-zero", "drizzle-on-17%-of-cells", "wettest-reaches-1mm"],
)
def test_genuinely_dry_forecasts_in_mm_are_read(folder, depth):
    fc = read_rainfall(_netcdf(folder / "seca.nc", depth))
    np.testing.assert_allclose(fc.rain_mm[0], depth, rtol=1e-6)
    assert fc.metadata["units_confirmed"] is False


def test_real_forecasts_pass_the_magnitude_checks(folder):
    # The dry-season GFS sample cropped to El Salvador and its neighbours (2.5°): 2.1 mm at
    # most in 6 h, rain in 7 of 16 cells; and the demo storm, through its NetCDF.
    gfs = read_rainfall(GFS_DRY)
    rows = np.flatnonzero((gfs.y >= 10) & (gfs.y <= 17.5))
    cols = np.flatnonzero((gfs.x >= -92.5) & (gfs.x <= -85))
    crop = replace(gfs, rain_mm=gfs.rain_mm[:, :, rows][:, :, :, cols], y=gfs.y[rows],
                   x=gfs.x[cols])
    back = read_rainfall(write_rainfall_netcdf(crop, folder / "gfs_es.nc"))
    assert back.rain_mm.max() == pytest.approx(2.1, abs=0.01)
    assert np.count_nonzero(back.rain_mm[0, 0] >= 0.001) == 7
    storm = read_rainfall(write_rainfall_netcdf(storm_forecast(AMANDA_2020),
                                                folder / "amanda.nc"))
    assert storm.rain_mm.sum(axis=1).max() > 100.0


def test_mm_labelled_metres_are_refused_whatever_the_caller_says(folder):
    path = _netcdf(folder / "mm_as_m.nc", np.full((4, 3, 4), 3.0), units="m")  # 3 mm/h
    hint = "the values look like millimetres labelled as metres (×1000)"
    with pytest.raises(InputError, match=r"^mm_as_m\.nc: 3,000 mm in the 1-h step ending "
                                         r"2020-05-31T01:00:00 \(3,000 mm/h\) at member 0, row 0, "
                                         r"col 0 is beyond any recorded rain") as info:
        read_rainfall(path)
    assert hint in str(info.value) and "caller" not in str(info.value)
    with pytest.raises(InputError, match="beyond any recorded rain") as info:
        read_rainfall(path, units="m")  # an explicit unit never bypasses the upper bound
    assert hint in str(info.value) and "(the units 'm' were given by the caller)" in str(
        info.value)
    assert read_rainfall(path, units="mm").rain_mm.max() == pytest.approx(3.0)


def test_a_forecast_total_beyond_the_24_hour_record_is_refused(folder):
    # 0.5 "m" per 6-h step (really 0.5 mm): 500 mm per step is 83 mm/h, under the hourly
    # bound, but 4 steps make 2,000 mm in 24 h, above the 1,825 mm world record.
    times = np.datetime64("2020-05-31T00:00") + np.arange(1, 5) * np.timedelta64(6, "h")
    path = _netcdf(folder / "gfs_as_m.nc", np.full((4, 3, 4), 0.5), units="m", times=times)
    with pytest.raises(InputError, match=r"^gfs_as_m\.nc: 2,000 mm in total over the "
                                         r"forecast's 24 h at member 0, row 0, col 0 is beyond "
                                         r"any recorded rain \(world record 1,825 mm in 24 h; "
                                         r"limit 1,825 mm\): the values look like millimetres "
                                         r"labelled as metres \(×1000\)"):
        read_rainfall(path)
    # 400 mm per 12-h step over two days is 1,600 mm, within 2 × 1,825 mm: read.
    days = np.datetime64("2020-05-31T00:00") + np.arange(1, 5) * np.timedelta64(12, "h")
    two_days = _netcdf(folder / "two_days.nc", np.full((4, 3, 4), 0.4), units="m", times=days)
    assert read_rainfall(two_days).rain_mm.sum(axis=1).max() == pytest.approx(1600.0)


def test_mm_per_hour_labelled_per_second_get_their_own_hint(folder):
    path = _netcdf(folder / "rate.nc", np.full((4, 3, 4), 5.0), units="kg m-2 s-1")
    with pytest.raises(InputError, match=r"^rate\.nc: 18,000 mm in the 1-h step .* "
                                         r"\(18,000 mm/h\).*mm per hour labelled per second "
                                         r"\(×3600\): set the units to 'mm h-1'"):
        read_rainfall(path)
    assert read_rainfall(path, units="mm h-1").rain_mm.max() == pytest.approx(5.0)


def test_negative_and_missing_rain_are_still_refused(folder):
    negative = _netcdf(folder / "neg.nc", np.full((4, 3, 4), -2.0))
    with pytest.raises(InputError, match=r"^neg\.nc: rainfall of -2 mm .* cannot be negative"):
        read_rainfall(negative, units="mm")
    gaps = np.full((4, 3, 4), 2.0)
    gaps[1] = np.nan
    with pytest.raises(InputError, match=r"^gaps\.nc: 12 values .* whole time steps are empty"):
        read_rainfall(_netcdf(folder / "gaps.nc", gaps))

