"""Rain forecast readers: real GFS GRIB samples, CF NetCDF conventions, GeoTIFF stacks, and
every bad input the canonical form refuses."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine

from floodwarn.errors import CRSError, DataFileError, InputError
from floodwarn.io.rainfall import read_rainfall, write_rainfall_netcdf
from floodwarn.rainfall.storm import AMANDA_2020, storm_forecast

DATA = Path(__file__).parents[1] / "data" / "rainfall"
GFS_TD12E = DATA / "gfs_20111008_00z_f066-072_precip.grb"
GFS_DRY = DATA / "gfs_20110110_12z_f114-120_precip.grib2"


def test_gfs_grib_total_precipitation_values_and_valid_times():
    fc = read_rainfall(GFS_TD12E)
    assert fc.rain_mm.shape == (1, 1, 73, 144)
    # Forecast hours 66-72 of the 2011-10-08 00Z run.
    assert str(fc.step_start[0]) == "2011-10-10T18:00:00"
    assert str(fc.step_end[0]) == "2011-10-11T00:00:00"
    assert fc.metadata["reference_time"] == "2011-10-08T00:00:00"
    # Longitudes rewrapped from 0…357.5 to −180…177.5, ascending; latitudes 90 → −90.
    assert fc.x[0] == -180.0 and fc.x[-1] == 177.5 and fc.y[0] == 90.0
    assert fc.rain_mm.max() == pytest.approx(89.8, abs=0.01)  # kg m-2 = mm
    # The 6-h total at 12.5 N 92.5 W (off the Guatemalan coast, TD 12-E forming).
    j = int(np.flatnonzero(fc.y == 12.5)[0])
    i = int(np.flatnonzero(fc.x == -92.5)[0])
    assert fc.rain_mm[0, 0, j, i] == pytest.approx(11.1, abs=0.01)


def test_gfs_grib_rate_times_six_hours_matches_the_total():
    total = read_rainfall(GFS_DRY).rain_mm[0, 0]
    from_rate = read_rainfall(GFS_DRY, variable="prate").rain_mm[0, 0]
    # prate is the 6-h mean rate (kg m-2 s-1): × 21,600 s gives the same depth to packing.
    wet = total > 1.0
    np.testing.assert_allclose(from_rate[wet], total[wet], rtol=0.05, atol=0.3)
    assert str(read_rainfall(GFS_DRY).step_end[0]) == "2011-01-15T12:00:00"


def test_truncated_grib_is_a_clear_error(tmp_path):
    cut = tmp_path / "cut.grib2"
    cut.write_bytes(GFS_DRY.read_bytes()[:9000])
    with pytest.raises((DataFileError, InputError), match=r"cut\.grib2"):
        read_rainfall(cut)


def _cf_dataset(values, *, name="pr", units="mm", times=None, lat=None, lon=None, attrs=None,
                member_dim=None):
    n_t = values.shape[-3]
    times = times if times is not None else np.datetime64("2020-05-31T00:00") + np.arange(
        1, n_t + 1) * np.timedelta64(1, "h")
    lat = lat if lat is not None else np.array([14.5, 13.5, 12.5])
    lon = lon if lon is not None else np.array([-90.5, -89.5, -88.5, -87.5])
    dims = ("time", "lat", "lon") if member_dim is None else (member_dim, "time", "lat", "lon")
    return xr.Dataset({name: (dims, values, {"units": units, **(attrs or {})})},
                      coords={"time": times, "lat": lat, "lon": lon})


def test_ecmwf_tp_accumulated_in_metres_becomes_mm_per_step(tmp_path):
    per_step_mm = np.array([2.0, 0.0, 5.5, 1.0])[:, None, None] * np.ones((4, 3, 4))
    cumulative_m = np.cumsum(per_step_mm, axis=0) / 1000.0
    path = tmp_path / "ecmwf.nc"
    _cf_dataset(cumulative_m, name="tp", units="m").to_netcdf(path)
    fc = read_rainfall(path)
    assert fc.metadata["accumulation"] == "since_start"
    np.testing.assert_allclose(fc.rain_mm[0], per_step_mm, atol=1e-4)


def _cfgrib_style(cumulative_m: np.ndarray, steps_h: list[int]) -> xr.Dataset:
    """ECMWF ENS converted by cfgrib/xarray: dims (number, step, latitude, longitude), scalar
    ``time`` = reference time, ``valid_time(step)``, ``tp`` in metres since the start."""
    reference = np.datetime64("2020-05-31T00:00", "ns")
    steps = np.array(steps_h, "timedelta64[h]").astype("timedelta64[ns]")
    return xr.Dataset(
        {"tp": (("number", "step", "latitude", "longitude"), cumulative_m,
                {"units": "m", "GRIB_stepType": "accum"})},
        coords={"number": np.arange(cumulative_m.shape[0]), "time": reference, "step": steps,
                "valid_time": ("step", reference + steps),
                "latitude": [14.2, 13.9, 13.6], "longitude": [-89.4, -89.1, -88.8, -88.5]})


def test_cfgrib_style_ensemble_with_step_zero_is_read(tmp_path):
    """Step 0 (valid at the reference time, total 0) is the start, not an interval."""
    per_step_mm = np.array([[3.0, 0.0, 6.0], [1.0, 2.0, 0.5]])[:, :, None, None] * np.ones(
        (2, 3, 3, 4))
    cumulative = np.concatenate([np.zeros((2, 1, 3, 4)), np.cumsum(per_step_mm, axis=1)],
                                axis=1) / 1000.0
    path = tmp_path / "ecmwf_ens.nc"
    _cfgrib_style(cumulative, [0, 6, 12, 18]).to_netcdf(path)
    fc = read_rainfall(path)
    assert fc.n_members == 2
    np.testing.assert_allclose(fc.rain_mm, per_step_mm, atol=1e-4)
    assert [str(t) for t in fc.step_end] == ["2020-05-31T06:00:00", "2020-05-31T12:00:00",
                                             "2020-05-31T18:00:00"]
    assert str(fc.step_start[0]) == "2020-05-31T00:00:00"


def test_step_zero_holding_rain_is_refused(tmp_path):
    cumulative = np.full((1, 3, 3, 4), 0.002)  # 2 mm already at the reference time
    path = tmp_path / "bad_step0.nc"
    _cfgrib_style(cumulative, [0, 6, 12]).to_netcdf(path)
    with pytest.raises(InputError, match=r"step 0 .* holds rain"):
        read_rainfall(path)


def test_rate_in_kg_per_m2_per_second_times_step_length(tmp_path):
    rate = np.full((3, 3, 4), 10.0 / 3600.0)  # 10 mm/h
    times = np.array(["2020-05-31T01", "2020-05-31T02", "2020-05-31T05"], "datetime64[s]")
    path = tmp_path / "rate.nc"
    _cf_dataset(rate, units="kg m-2 s-1", times=times).to_netcdf(path)
    fc = read_rainfall(path)
    # Steps of 1 h, 1 h and 3 h (the first step's length is taken from the second).
    np.testing.assert_allclose(fc.rain_mm[0, :, 0, 0], [10.0, 10.0, 30.0], rtol=1e-5)


def test_ensemble_dimension_becomes_members(tmp_path):
    values = np.random.default_rng(1).random((5, 2, 3, 4))
    path = tmp_path / "ens.nc"
    ds = _cf_dataset(values, member_dim="number", attrs={"floodwarn_accumulation": "step"})
    ds.assign_coords(number=np.arange(5)).to_netcdf(path)
    fc = read_rainfall(path)
    assert fc.n_members == 5
    np.testing.assert_allclose(fc.rain_mm, values, rtol=1e-6)
    assert fc.member(3).rain_mm.shape == (1, 2, 3, 4)


def test_storm_netcdf_round_trip_is_exact_and_synthetic(tmp_path):
    fc = storm_forecast(AMANDA_2020)
    path = write_rainfall_netcdf(fc, tmp_path / "amanda.nc")
    back = read_rainfall(path)
    np.testing.assert_array_equal(back.rain_mm, fc.rain_mm)
    np.testing.assert_array_equal(back.step_start, fc.step_start)
    assert back.metadata["synthetic"] is True


def test_geotiff_stack_times_from_names(tmp_path):
    for hour, depth in ((1, 2.0), (2, 4.0), (3, 0.0)):
        with rasterio.open(
            tmp_path / f"rain_20200531T{hour:02d}00.tif", "w", driver="GTiff", height=3, width=4,
            count=1, dtype="float32", crs="EPSG:4326",
            transform=Affine(1.0, 0, -91.0, 0, -1.0, 15.0),
        ) as ds:
            ds.write(np.full((1, 3, 4), depth, np.float32))
            ds.update_tags(units="mm")
    fc = read_rainfall(tmp_path)
    np.testing.assert_allclose(fc.rain_mm[0, :, 0, 0], [2.0, 4.0, 0.0])
    assert str(fc.step_end[0]) == "2020-05-31T01:00:00"
    assert str(fc.step_start[0]) == "2020-05-31T00:00:00"
    assert fc.x[0] == -90.5 and fc.y[0] == 14.5


@pytest.mark.parametrize(
    ("mutate", "error", "match"),
    [
        (lambda v, t: (v * -1.0, t), InputError, "cannot be negative"),
        (lambda v, t: (v, t[::-1].copy()), InputError, "not strictly increasing"),
        (lambda v, t: (v, np.concatenate([t[:1], t[:1], t[2:]])), InputError,
         "not strictly increasing"),
        (lambda v, t: (np.where(np.arange(v.size).reshape(v.shape) % 3 == 0, np.nan, v), t),
         InputError, "missing"),
        (lambda v, t: (v * 1000.0, t), InputError, "beyond any recorded rain"),
    ],
    ids=["negative", "reversed-times", "duplicate-time", "many-nan", "metres-as-mm"],
)
def test_bad_rain_values_are_refused(tmp_path, mutate, error, match):
    values = np.full((4, 3, 4), 3.0)
    times = np.datetime64("2020-05-31T00:00") + np.arange(1, 5) * np.timedelta64(1, "h")
    values, times = mutate(values, times)
    path = tmp_path / "bad.nc"
    _cf_dataset(values, times=times, attrs={"floodwarn_accumulation": "step"}).to_netcdf(path)
    with pytest.raises(error, match=match):
        read_rainfall(path)


def test_a_few_missing_values_are_filled_with_the_step_mean(tmp_path, caplog):
    values = np.full((4, 30, 40), 3.0)
    values[2, 5, 5] = np.nan
    values[2, 6, 6] = 9.0
    path = tmp_path / "gap.nc"
    lat = np.linspace(15, 12, 30)
    lon = np.linspace(-91, -87, 40)
    _cf_dataset(values, lat=lat, lon=lon, attrs={"floodwarn_accumulation": "step"}).to_netcdf(path)
    fc = read_rainfall(path)
    assert fc.metadata["values_filled"] == 1
    expected = (3.0 * (30 * 40 - 2) + 9.0) / (30 * 40 - 1)
    assert fc.rain_mm[0, 2, 5, 5] == pytest.approx(expected, rel=1e-5)


def test_unknown_units_missing_time_and_unknown_variable(tmp_path):
    path = tmp_path / "furlongs.nc"
    _cf_dataset(np.ones((2, 3, 4)), units="furlongs").to_netcdf(path)
    with pytest.raises(InputError, match=r"furlongs.*known units"):
        read_rainfall(path)
    no_time = tmp_path / "notime.nc"
    xr.Dataset({"pr": (("lat", "lon"), np.ones((3, 4)), {"units": "mm"})},
               coords={"lat": [14.5, 13.5, 12.5], "lon": [-90.5, -89.5, -88.5, -87.5]}
               ).to_netcdf(no_time)
    with pytest.raises(InputError, match="no time axis"):
        read_rainfall(no_time)
    with pytest.raises(InputError, match="no rain variable named 'snow'"):
        read_rainfall(path, variable="snow")


def test_projected_grid_without_crs_and_unknown_format(tmp_path):
    path = tmp_path / "proj.nc"
    xr.Dataset({"pr": (("time", "y", "x"), np.ones((2, 3, 4)), {"units": "mm"})},
               coords={"time": np.array(["2020-05-31T01", "2020-05-31T02"], "datetime64[ns]"),
                       "y": [3.0, 2.0, 1.0], "x": [0.0, 1.0, 2.0, 3.0]}).to_netcdf(path)
    with pytest.raises(CRSError, match="no CRS"):
        read_rainfall(path)
    other = tmp_path / "rain.csv"
    other.write_text("x")
    with pytest.raises(InputError, match="unknown rain forecast format"):
        read_rainfall(other)


def test_truncated_netcdf_is_a_clear_error(tmp_path):
    good = tmp_path / "good.nc"
    _cf_dataset(np.ones((2, 3, 4))).to_netcdf(good)
    cut = tmp_path / "cut.nc"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(DataFileError, match="truncated"):
        read_rainfall(cut)


def _write_grib1_tp(path, totals_m):
    """GRIB1 total precipitation (ECMWF table 128, metres); items (end_h, total) accumulate
    from hour 0, items (start_h, end_h, total) over their own interval."""
    import eccodes

    with open(path, "wb") as fh:
        for item in totals_m:
            start_h, end_h, total = item if len(item) == 3 else (0, *item)
            gid = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib1")
            eccodes.codes_set(gid, "shortName", "tp")
            eccodes.codes_set(gid, "dataDate", 20200531)
            eccodes.codes_set(gid, "dataTime", 0)
            eccodes.codes_set(gid, "stepType", "accum")
            eccodes.codes_set(gid, "startStep", start_h)
            eccodes.codes_set(gid, "endStep", end_h)
            n = eccodes.codes_get(gid, "numberOfPoints")
            eccodes.codes_set_values(gid, np.full(n, total))
            eccodes.codes_write(gid, fh)
            eccodes.codes_release(gid)


def test_grib1_ecmwf_metres_accumulated_since_start(tmp_path):
    path = tmp_path / "ecmwf.grib1"
    _write_grib1_tp(path, [(6, 0.002), (12, 0.005), (18, 0.005)])
    fc = read_rainfall(path)
    np.testing.assert_allclose(fc.rain_mm[0, :, 0, 0], [2.0, 3.0, 0.0], atol=1e-3)
    assert [str(t) for t in fc.step_end] == ["2020-05-31T06:00:00", "2020-05-31T12:00:00",
                                             "2020-05-31T18:00:00"]
    assert str(fc.step_start[0]) == "2020-05-31T00:00:00"
    assert fc.metadata["units"] == "m"


def test_grib_mixed_step_ranges_chain_into_steps(tmp_path):
    # GFS style: 0-3 and 0-6 h totals, then 6-9 and 6-12 h (values in m, 1 mm = 0.001).
    path = tmp_path / "gfs_style.grib1"
    _write_grib1_tp(path, [(0, 3, 0.001), (0, 6, 0.004), (6, 9, 0.002), (6, 12, 0.0025)])
    fc = read_rainfall(path)
    np.testing.assert_allclose(fc.rain_mm[0, :, 0, 0], [1.0, 3.0, 2.0, 0.5], atol=1e-3)
    gap = tmp_path / "gap.grib1"
    _write_grib1_tp(gap, [(0, 6, 0.004), (12, 18, 0.001)])
    with pytest.raises(InputError, match="missing a message"):
        read_rainfall(gap)


def test_projected_netcdf_with_crs_wkt_reads(tmp_path):
    from pyproj import CRS

    path = tmp_path / "utm.nc"
    ds = xr.Dataset(
        {"precipitation": (("time", "y", "x"), np.full((2, 3, 4), 1.5),
                           {"units": "mm", "grid_mapping": "crs",
                            "floodwarn_accumulation": "step"})},
        coords={"time": np.array(["2020-05-31T01", "2020-05-31T02"], "datetime64[ns]"),
                "y": [1_560_000.0, 1_550_000.0, 1_540_000.0],
                "x": [250_000.0, 260_000.0, 270_000.0, 280_000.0]})
    ds["crs"] = xr.DataArray(0, attrs={"crs_wkt": CRS.from_epsg(32616).to_wkt()})
    ds.to_netcdf(path)
    fc = read_rainfall(path)
    assert CRS.from_user_input(fc.crs).to_epsg() == 32616
    assert fc.y[0] == 1_560_000.0 and fc.x[-1] == 280_000.0
    np.testing.assert_allclose(fc.rain_mm, 1.5)
