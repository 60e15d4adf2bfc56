"""A forecast given as a folder, a pattern or a list of files: formats by suffix or by first
bytes, one format per forecast, NetCDF and GeoTIFF files joined by member and valid time, and
every missing or doubled member and step named."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine

from floodwarn.errors import DataFileError, InputError
from floodwarn.io.rainfall import describe_rain_source, read_rainfall
from floodwarn.io.rainfall_files import check_complete, rain_files

DATA = Path(__file__).parents[1] / "data" / "rainfall"
GFS_DRY = DATA / "gfs_20110110_12z_f114-120_precip.grib2"
REFERENCE = np.datetime64("2020-05-31T00:00", "ns")
#: Rain per 6-h step (mm) of members 0, 1, 2 over hours 0-6, 6-12, 12-18.
STEP_MM = np.array([[3.0, 0.0, 6.0], [1.0, 2.0, 0.5], [0.0, 4.0, 1.0]])


def _cfgrib(steps_h=(0, 6, 12, 18), members=(0, 1, 2)) -> xr.Dataset:
    """ECMWF ENS as cfgrib converts it: tp (number, step, latitude, longitude) in metres since
    the start, scalar ``time`` (the run), ``valid_time(step)``."""
    cumulative = np.concatenate([np.zeros((3, 1)), np.cumsum(STEP_MM, axis=1)], axis=1) / 1000
    values = cumulative[list(members)][:, [h // 6 for h in steps_h], None, None] * np.ones(
        (1, 1, 3, 4))
    steps = np.array(steps_h, "timedelta64[h]").astype("timedelta64[ns]")
    return xr.Dataset(
        {"tp": (("number", "step", "latitude", "longitude"), values,
                {"units": "m", "GRIB_stepType": "accum"})},
        coords={"number": list(members), "time": REFERENCE, "step": steps,
                "valid_time": ("step", REFERENCE + steps),
                "latitude": [14.2, 13.9, 13.6], "longitude": [-89.4, -89.1, -88.8, -88.5]})


def _per_step_files(folder: Path, ds: xr.Dataset | None = None) -> list[Path]:
    """One file per step, as cfgrib writes a per-step GRIB file: step, valid_time scalars."""
    ds = _cfgrib() if ds is None else ds
    files = []
    for k, hours in enumerate((ds.step.values // np.timedelta64(1, "h")).tolist()):
        path = folder / f"ens_{hours:03d}h.nc"
        ds.isel(step=k).to_netcdf(path)
        files.append(path)
    return files


def test_cfgrib_files_per_step_are_joined_by_valid_time(tmp_path):
    whole = tmp_path / "whole.nc"
    _cfgrib().to_netcdf(whole)
    (tmp_path / "steps").mkdir()
    files = _per_step_files(tmp_path / "steps")
    expected = read_rainfall(whole)
    np.testing.assert_allclose(expected.rain_mm[:, :, 0, 0], STEP_MM, atol=1e-4)
    for given in (files[::-1], str(tmp_path / "steps" / "ens_*.nc"), tmp_path / "steps"):
        fc = read_rainfall(given)
        np.testing.assert_array_equal(fc.rain_mm, expected.rain_mm)
        np.testing.assert_array_equal(fc.step_start, expected.step_start)
        assert fc.members.tolist() == [0, 1, 2]
        assert fc.metadata["reference_time"] == "2020-05-31T00:00:00"


def test_cfgrib_files_per_member_out_of_order_are_sorted(tmp_path):
    ds = _cfgrib()
    files = []
    for member in (2, 0, 1):
        path = tmp_path / f"member_{'abc'[2 - member]}.nc"  # name order c, a, b ≠ member order
        ds.sel(number=member).to_netcdf(path)  # number becomes a scalar coordinate
        files.append(path)
    fc = read_rainfall(files)
    assert fc.members.tolist() == [0, 1, 2]
    np.testing.assert_allclose(fc.rain_mm[:, :, 1, 2], STEP_MM, atol=1e-4)


def test_missing_and_doubled_netcdf_steps_are_named_with_their_files(tmp_path):
    files = _per_step_files(tmp_path)
    partial = tmp_path / "partial"
    partial.mkdir()
    _cfgrib(steps_h=(12,), members=(0, 2)).to_netcdf(partial / "ens_012h_b.nc")
    given = [f for f in files if f.name != "ens_012h.nc"] + [partial / "ens_012h_b.nc"]
    with pytest.raises(InputError, match=r"member 1 lacks the step ending 2020-05-31T12:00 "
                                         r"\(\+12 h\)\. Add the missing files\.$"):
        read_rainfall(given)
    copy = partial / "ens_006h_copy.nc"
    shutil.copy(files[1], copy)
    with pytest.raises(InputError) as info:
        read_rainfall([*files, copy])
    message = str(info.value)
    for member in (0, 1, 2):
        assert (f"member {member}, step ending 2020-05-31T06:00: in both ens_006h.nc and "
                "ens_006h_copy.nc") in message
    assert message.endswith("Leave out one of each pair held twice.")


def test_netcdf_files_of_other_grids_or_runs_are_named(tmp_path):
    files = _per_step_files(tmp_path)
    moved = tmp_path / "moved"
    moved.mkdir()
    _cfgrib(steps_h=(18,)).assign_coords(longitude=[-89.0, -88.7, -88.4, -88.1]).to_netcdf(
        moved / "ens_018h.nc")
    with pytest.raises(InputError, match=r"the files are not on one grid: ens_000h\.nc is on 3 "
                                         r"× 4 cells, x -89\.4…-88\.5.* but ens_018h\.nc on 3 × 4 "
                                         r"cells, x -89…-88\.1"):
        read_rainfall([*files[:3], moved / "ens_018h.nc"])
    later = _cfgrib(steps_h=(18,)).assign_coords(time=REFERENCE + np.timedelta64(6, "h"))
    later.to_netcdf(moved / "ens_018h.nc")
    with pytest.raises(InputError, match=r"the files are of 2 different forecast runs "
                                         r"\(2020-05-31T00:00: ens_000h\.nc, ens_006h\.nc, "
                                         r"ens_012h\.nc; "
                                         r"2020-05-31T06:00: ens_018h\.nc\); give the files "
                                         r"of one run\.$"):
        read_rainfall([*files[:3], moved / "ens_018h.nc"])


def test_netcdf_cell_budget_counts_every_file(tmp_path):
    files = _per_step_files(tmp_path)  # 4 files × 3 members × 3 × 4 = 144 cells
    with pytest.raises(InputError, match=r"declares 144 \(cells of rain in all its files\)"):
        read_rainfall(files, max_cells=143)
    assert read_rainfall(files, max_cells=144).rain_mm.shape == (3, 3, 3, 4)


def test_files_are_recognised_by_their_first_bytes(tmp_path):
    grib = tmp_path / "gfs.t12z.pgrb2.2p50.f120"  # NOMADS names: a suffix that says nothing
    shutil.copy(GFS_DRY, grib)
    np.testing.assert_array_equal(read_rainfall(grib).rain_mm, read_rainfall(GFS_DRY).rain_mm)
    for fmt, magic in (("NETCDF3_CLASSIC", b"CDF\x01"), ("NETCDF3_64BIT", b"CDF\x02"),
                       ("NETCDF4", b"\x89HDF")):
        path = tmp_path / f"ens_{fmt}"
        _cfgrib().to_netcdf(path, format=fmt)
        assert path.read_bytes()[:4] == magic
        np.testing.assert_allclose(read_rainfall(path).rain_mm[:, :, 0, 0], STEP_MM, atol=1e-4)
    text = tmp_path / "notes"
    text.write_text("rain tomorrow")
    with pytest.raises(InputError, match=r"^notes: unknown rain forecast format \(no suffix, and "
                                         r"its first bytes are neither NetCDF, GRIB nor TIFF\); "
                                         r"floodwarn reads NetCDF \(\.nc"):
        read_rainfall(text)


def test_a_forecast_is_of_one_format(tmp_path):
    _per_step_files(tmp_path)
    shutil.copy(GFS_DRY, tmp_path / "ens_999h.grib2")
    with pytest.raises(InputError, match=r"^ens_\*: as a pattern it matches files that are not "
                                         r"NetCDFs \(\['ens_999h\.grib2'\]\) besides 4 NetCDF "
                                         r"files; the files of one forecast must share one "
                                         r"format — give the NetCDF files only\.$"):
        read_rainfall(str(tmp_path / "ens_*"))
    with pytest.raises(InputError, match=r"^ens_000h\.nc … ens_999h\.grib2 \(2 files\): the list "
                                         r"holds files that are not"):
        read_rainfall([tmp_path / "ens_999h.grib2", tmp_path / "ens_000h.nc"])
    with pytest.raises(InputError, match=r"the folder holds files that are not NetCDFs"):
        read_rainfall(tmp_path)
    (tmp_path / "ens_999h.grib2").unlink()
    (tmp_path / "ens_000h.nc.idx").write_text("index")
    with pytest.raises(InputError, match=r"matches files of no rain format floodwarn reads "
                                         r"\(\['ens_000h\.nc\.idx'\]\)"):
        read_rainfall(str(tmp_path / "ens_*"))
    assert read_rainfall(tmp_path).n_steps == 3  # a folder leaves the index out


def test_lists_hold_existing_files_once(tmp_path):
    files = _per_step_files(tmp_path)
    with pytest.raises(InputError, match="non-empty list of paths"):
        read_rainfall([])
    with pytest.raises(DataFileError, match=r"^gone\.nc: no such file\.$"):
        read_rainfall([*files, tmp_path / "gone.nc"])
    with pytest.raises(DataFileError, match=r"is not a regular file; a list of rain files"):
        read_rainfall([files[0], tmp_path])
    with pytest.raises(InputError, match=r"names \['ens_006h\.nc'\] more than once"):
        read_rainfall([*files, files[1]])
    one = read_rainfall([files[1]])  # a list of one is that file
    assert one.n_steps == 1 and rain_files([files[1]]).kind == "file"


def _tif(path: Path, depth: float, bands: int = 1) -> Path:
    with rasterio.open(path, "w", driver="GTiff", height=3, width=4, count=bands,
                       dtype="float32", crs="EPSG:4326",
                       transform=Affine(1.0, 0, -91.0, 0, -1.0, 15.0)) as ds:
        ds.write(np.full((bands, 3, 4), depth, np.float32) + np.arange(bands)[:, None, None])
        ds.update_tags(units="mm")
    return path


def test_a_list_of_geotiffs_reads_as_their_folder(tmp_path):
    files = [_tif(tmp_path / f"rain_20200531T{h:02d}00.tif", d, bands=2)
             for h, d in ((1, 2.0), (2, 4.0), (3, 0.5))]
    by_folder = read_rainfall(tmp_path)
    by_list = read_rainfall(files[::-1])
    np.testing.assert_array_equal(by_list.rain_mm, by_folder.rain_mm)
    np.testing.assert_array_equal(by_list.step_start, by_folder.step_start)
    np.testing.assert_allclose(by_list.rain_mm[:, :, 0, 0], [[2.0, 4.0, 0.5], [3.0, 5.0, 1.5]])
    with pytest.raises(InputError, match=r"declares 72 \(cells of rain in all its files\)"):
        read_rainfall(files, max_cells=71)


def test_describe_says_what_a_pattern_or_list_matched(tmp_path):
    files = _per_step_files(tmp_path)
    assert describe_rain_source(str(tmp_path / "ens_*.nc")) == (
        "ens_*.nc: 4 NetCDF files (ens_000h.nc, ens_006h.nc, ens_012h.nc, ens_018h.nc)")
    assert describe_rain_source(files[:2]) == "a list of 2 NetCDF files (ens_000h.nc, ens_006h.nc)"
    assert describe_rain_source(GFS_DRY) == (
        "gfs_20110110_12z_f114-120_precip.grib2: 1 GRIB file "
        "(gfs_20110110_12z_f114-120_precip.grib2)")
    with pytest.raises(DataFileError, match="matches no file"):
        describe_rain_source(str(tmp_path / "nothing_*"))


def test_incompleteness_is_named_compactly_but_completely():
    hours = np.datetime64("2020-05-31T00:00", "s") + np.arange(1, 6) * np.timedelta64(1, "h")
    present = {0: list(hours), 1: [hours[0]], 2: list(hours[[0, 2, 4]]), 4: list(hours),
               8: list(hours), 9: [hours[0]]}
    with pytest.raises(InputError) as info:
        check_complete("ens", present, reference=hours[0] - np.timedelta64(1, "h"))
    assert str(info.value) == (
        "ens: the forecast's files do not give every member every step exactly once: "
        "members 3, 5-7 are missing (no file holds them); "
        "members 1, 9 lack the steps ending 2020-05-31T02:00 (+2 h) to 2020-05-31T05:00 (+5 h)"
        " (4 steps); "
        "member 2 lacks the steps ending 2020-05-31T02:00 (+2 h), 2020-05-31T04:00 (+4 h). "
        "Add the missing files.")
    members, ends = check_complete("ens", {1: list(hours[::-1]), 0: list(hours)})
    assert members.tolist() == [0, 1] and ends.tolist() == hours.tolist()


def test_a_member_given_twice_is_named_without_listing_all_its_steps():
    import numpy as np

    from floodwarn.io.rainfall_files import MAX_DUPLICATES_LISTED, check_complete

    ends = [np.datetime64("2020-05-30T12:00", "s") + np.timedelta64(h, "h") for h in range(1, 73)]
    duplicates = [f"member 3, step ending {t}: in both m03.nc and m03_again.nc" for t in ends]
    with pytest.raises(InputError) as caught:
        check_complete("m*.nc", {3: ends}, duplicates=duplicates)
    message = str(caught.value)
    assert message.count("in both m03.nc and m03_again.nc") == MAX_DUPLICATES_LISTED
    assert f"and {72 - MAX_DUPLICATES_LISTED} more member/step pairs" in message
    assert len(message) < 800
