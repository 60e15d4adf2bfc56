"""WRF wrfout rain, files made for real with netCDF4 the way WRF writes them: Times as
characters, XLAT/XLONG computed from the map projection on WRF's 6,370-km sphere, RAINNC and
RAINC accumulated since the start (with bucket counters), one or several times per file, file
names without a suffix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pyproj import CRS, Proj, Transformer

from floodwarn.errors import InputError
from floodwarn.io.rainfall import read_rainfall
from floodwarn.io.rainfall_wrf import WRF_PROJECTIONS

NX, NY, DX = 6, 5, 9000.0
HOURS = ["2020-05-30_12:00:00", "2020-05-30_13:00:00", "2020-05-30_14:00:00",
         "2020-05-30_15:00:00"]
#: Accumulated since 12:00 (mm), everywhere: RAINNC + RAINC = 0, 3, 6, 8.5 → steps 3, 3, 2.5.
RAINNC = [0.0, 2.0, 5.0, 5.5]
RAINC = [0.0, 1.0, 1.0, 3.0]
#: At south_north 2, west_east 3 RAINNC holds this much more: steps 3 + 10, 3, 2.5 + 10.
EXTRA = [0.0, 10.0, 10.0, 20.0]

LAMBERT = {"MAP_PROJ": 1, "TRUELAT1": 10.0, "TRUELAT2": 20.0, "STAND_LON": -89.0,
           "MOAD_CEN_LAT": 13.8, "CEN_LAT": 13.8, "CEN_LON": -89.0}
PROJECTIONS = {
    1: LAMBERT,
    2: {"MAP_PROJ": 2, "TRUELAT1": 30.0, "STAND_LON": -89.0, "MOAD_CEN_LAT": 13.8,
        "CEN_LAT": 13.8, "CEN_LON": -89.0},
    3: {"MAP_PROJ": 3, "TRUELAT1": 13.8, "STAND_LON": -89.0, "MOAD_CEN_LAT": 13.8,
        "CEN_LAT": 13.8, "CEN_LON": -89.0},
}


def _lonlat(attrs: dict) -> tuple[np.ndarray, np.ndarray]:
    """XLONG/XLAT of a 5 × 6 domain of 9-km cells centred on 13.8 °N 89 °W, as WPS computes
    them: the projection's regular grid, projected back to the sphere."""
    _, build = WRF_PROJECTIONS[attrs["MAP_PROJ"]]
    proj = Proj(build(attrs))
    xc, yc = proj(attrs["CEN_LON"], attrs["CEN_LAT"])
    x = xc + (np.arange(NX) - (NX - 1) / 2) * DX
    y = yc + (np.arange(NY) - (NY - 1) / 2) * DX
    lon, lat = proj(*np.meshgrid(x, y), inverse=True)
    return lon, lat


def _wrfout(path: Path, *, times=HOURS, rainnc=RAINNC, rainc=RAINC, extra=EXTRA,
            attrs: dict | None = None, i_rainnc=None, bucket_mm: float = -1.0,
            member: int | None = None, fmt: str = "NETCDF3_64BIT_OFFSET",
            corrupt_xlat: float = 0.0, start: str = HOURS[0]) -> Path:
    import netCDF4

    attrs = attrs or LAMBERT
    lon, lat = _lonlat(attrs)
    lat = lat.copy()
    lat[3, 4] += corrupt_xlat
    n = len(times)
    with netCDF4.Dataset(path, "w", format=fmt) as nc:
        nc.createDimension("Time", None)
        nc.createDimension("DateStrLen", 19)
        nc.createDimension("south_north", NY)
        nc.createDimension("west_east", NX)
        times_var = nc.createVariable("Times", "S1", ("Time", "DateStrLen"))
        times_var[:] = netCDF4.stringtochar(np.array(times, "S19"))
        for name, field, units in (("XLAT", lat, "degree_north"),
                                   ("XLONG", lon, "degree_east")):
            var = nc.createVariable(name, "f4", ("Time", "south_north", "west_east"))
            var[:] = np.broadcast_to(field, (n, NY, NX))
            var.units = units
        cells = np.zeros((n, NY, NX), np.float32)
        for name, series in (("RAINNC", rainnc), ("RAINC", rainc)):
            var = nc.createVariable(name, "f4", ("Time", "south_north", "west_east"))
            values = cells + np.asarray(series, np.float32)[:, None, None]
            if name == "RAINNC":
                values[:, 2, 3] += np.asarray(extra[:n], np.float32)
            var[:] = values
            var.units = "mm"
            var.description = "ACCUMULATED TOTAL GRID SCALE PRECIPITATION"
        if i_rainnc is not None:
            var = nc.createVariable("I_RAINNC", "i4", ("Time", "south_north", "west_east"))
            var[:] = np.zeros((n, NY, NX), np.int32) + np.asarray(i_rainnc, np.int32)[:, None,
                                                                                     None]
            var = nc.createVariable("I_RAINC", "i4", ("Time", "south_north", "west_east"))
            var[:] = np.zeros((n, NY, NX), np.int32)
        nc.setncatts({**attrs, "DX": DX, "DY": DX, "TITLE": " OUTPUT FROM WRF V4.2.1 MODEL",
                      "SIMULATION_START_DATE": start, "START_DATE": start,
                      "BUCKET_MM": bucket_mm})
        if member is not None:
            nc.setncattr("ensemble_member", member)
    return path


def _wrf_name(time: str, domain: int = 1) -> str:
    return f"wrfout_d{domain:02d}_{time}"


def test_wrfout_totals_become_hand_differences_on_the_lambert_grid(tmp_path):
    path = _wrfout(tmp_path / "wrfout_d01_2020-05-30_12:00:00")  # no suffix: CDF\x02 inside
    fc = read_rainfall(path)
    assert fc.rain_mm.shape == (1, 3, NY, NX)
    np.testing.assert_allclose(fc.rain_mm[0, :, 0, 0], [3.0, 3.0, 2.5], atol=1e-5)
    np.testing.assert_allclose(fc.rain_mm[0, :, 2, 3], [13.0, 3.0, 12.5], atol=1e-5)
    assert [str(t) for t in fc.step_end] == ["2020-05-30T13:00:00", "2020-05-30T14:00:00",
                                             "2020-05-30T15:00:00"]
    assert str(fc.step_start[0]) == "2020-05-30T12:00:00"
    assert fc.metadata["reference_time"] == "2020-05-30T12:00:00"
    assert fc.metadata["variable"] == "RAINC+RAINNC"
    # The regular grid: 9-km steps, south_north northwards, centred where WPS put it.
    np.testing.assert_allclose(np.diff(fc.x), DX)
    np.testing.assert_allclose(np.diff(fc.y), DX)
    crs = CRS.from_user_input(fc.crs)
    method = crs.coordinate_operation
    params = {p.name: p.value for p in method.params}
    assert method.method_name.startswith("Lambert Conic Conformal (2SP)")
    assert crs.ellipsoid.semi_major_metre == crs.ellipsoid.semi_minor_metre == 6_370_000
    assert params["Latitude of 1st standard parallel"] == 10.0
    assert params["Latitude of 2nd standard parallel"] == 20.0
    assert params["Longitude of false origin"] == -89.0
    assert crs.name.startswith("WRF Lambert conformal conic (MAP_PROJ 1")
    lon, lat = _lonlat(LAMBERT)
    back = Transformer.from_crs(fc.crs, "EPSG:4326", always_xy=True)
    blon, blat = back.transform(*np.meshgrid(fc.x, fc.y))
    np.testing.assert_allclose(blon, lon, atol=1e-4)
    np.testing.assert_allclose(blat, lat, atol=1e-4)
    # CEN_LON is the domain's middle column (x of 2.5 cells from the first).
    assert fc.x[0] + 2.5 * DX == pytest.approx(0.0, abs=0.5)


@pytest.mark.parametrize("code", [1, 2, 3])
def test_each_map_projection_is_rebuilt_and_checked(tmp_path, code):
    fc = read_rainfall(_wrfout(tmp_path / "wrfout_d01_x", attrs=PROJECTIONS[code],
                               fmt="NETCDF4"))
    np.testing.assert_allclose(fc.rain_mm[0, :, 0, 0], [3.0, 3.0, 2.5], atol=1e-5)
    method = {1: "Lambert Conic Conformal", 2: "Polar Stereographic", 3: "Mercator"}[code]
    assert CRS.from_user_input(fc.crs).coordinate_operation.method_name.startswith(method)


def test_latitude_longitude_wrf_grid_is_read_as_such(tmp_path):
    import netCDF4

    path = _wrfout(tmp_path / "wrfout_latlon.nc")
    lon, lat = np.meshgrid(-90.0 + 0.1 * np.arange(NX), 13.0 + 0.1 * np.arange(NY))
    with netCDF4.Dataset(path, "a") as nc:
        nc.variables["XLONG"][:] = np.broadcast_to(lon, (4, NY, NX))
        nc.variables["XLAT"][:] = np.broadcast_to(lat, (4, NY, NX))
        nc.setncattr("MAP_PROJ", 6)
    fc = read_rainfall(path)
    assert fc.crs == "EPSG:4326"
    np.testing.assert_allclose(fc.x, -90.0 + 0.1 * np.arange(NX), atol=1e-5)
    np.testing.assert_allclose(fc.y, 13.0 + 0.1 * np.arange(NY), atol=1e-5)


def test_bucket_counters_add_bucket_mm_per_tip(tmp_path):
    # RAINNC emptied at 100 mm: stored 0, 60, 30, 80 with I_RAINNC 0, 0, 1, 1 is a total of
    # 0, 60, 130, 180 mm, i.e. steps of 60, 70 and 50 mm (RAINC stays 0).
    path = _wrfout(tmp_path / "wrfout_bucket.nc", rainnc=[0.0, 60.0, 30.0, 80.0],
                   rainc=[0.0] * 4, extra=[0.0] * 4, i_rainnc=[0, 0, 1, 1], bucket_mm=100.0)
    fc = read_rainfall(path)
    np.testing.assert_allclose(fc.rain_mm[0, :, 1, 1], [60.0, 70.0, 50.0], atol=1e-4)
    without = _wrfout(tmp_path / "wrfout_nobucket.nc", rainnc=[0.0, 60.0, 30.0, 80.0],
                      rainc=[0.0] * 4, extra=[0.0] * 4, bucket_mm=100.0)
    with pytest.raises(InputError, match=r"BUCKET_MM is 100 mm, .* \['I_RAINC', 'I_RAINNC'\] "
                                         r"are missing"):
        read_rainfall(without)


def test_one_time_per_file_by_glob_or_list_equals_one_file(tmp_path):
    (tmp_path / "all").mkdir()
    whole = read_rainfall(_wrfout(tmp_path / "all" / "wrfout_d01_2020-05-30_12:00:00"))
    files = []
    for k, time in enumerate(HOURS):
        files.append(_wrfout(tmp_path / _wrf_name(time), times=[time], rainnc=RAINNC[k:k + 1],
                             rainc=RAINC[k:k + 1], extra=EXTRA[k:k + 1]))
    by_glob = read_rainfall(str(tmp_path / "wrfout_d01_*"))
    by_list = read_rainfall(files[::-1])
    for fc in (by_glob, by_list):
        np.testing.assert_array_equal(fc.rain_mm, whole.rain_mm)
        np.testing.assert_array_equal(fc.step_start, whole.step_start)
        np.testing.assert_array_equal(fc.x, whole.x)


def test_ensemble_members_from_an_attribute_sorted_and_complete(tmp_path):
    files = []
    for member, scale in ((2, 2.0), (0, 1.0), (1, 0.5)):
        for k, time in enumerate(HOURS):
            path = tmp_path / f"m{member}" / _wrf_name(time)
            path.parent.mkdir(exist_ok=True)
            files.append(_wrfout(path, times=[time], rainnc=[scale * RAINNC[k]],
                                 rainc=[scale * RAINC[k]], extra=[0.0], member=member))
    fc = read_rainfall(files)
    assert fc.members.tolist() == [0, 1, 2]
    np.testing.assert_allclose(fc.rain_mm[:, :, 0, 0],
                               [[3.0, 3.0, 2.5], [1.5, 1.5, 1.25], [6.0, 6.0, 5.0]], atol=1e-5)
    lost = [f for f in files if not (f.parent.name == "m1" and f.name.endswith("14:00:00"))]
    with pytest.raises(InputError, match=r"member 1 lacks the step ending 2020-05-30T14:00 "
                                         r"\(\+2 h\)"):
        read_rainfall(lost)
    twice = _wrfout(tmp_path / "m0" / "copy.nc", times=[HOURS[1]], rainnc=[2.0], rainc=[1.0],
                    member=0)
    with pytest.raises(InputError, match=r"held twice: member 0, step ending 2020-05-30T13:00: "
                                         r"in both copy\.nc and wrfout_d01_2020-05-30_13:00:00"):
        read_rainfall([*files, twice])


def test_corrupt_xlat_fails_the_grid_check(tmp_path):
    path = _wrfout(tmp_path / "wrfout_bad", corrupt_xlat=0.05)  # ≈ 5.5 km north
    with pytest.raises(InputError, match=r"wrfout_bad: the WRF grid could not be matched to its "
                                         r"projection: XLAT/XLONG at south_north 3, west_east 4 "
                                         r".* lies 5,?5\d\d m from its place"):
        read_rainfall(path)
    slight = _wrfout(tmp_path / "wrfout_float32", corrupt_xlat=0.0004)  # ≈ 44 m < 90 m
    assert read_rainfall(slight).rain_mm.shape == (1, 3, NY, NX)


def test_rain_at_the_simulation_start_is_refused(tmp_path):
    path = _wrfout(tmp_path / "wrfout_late", rainnc=[4.0, 6.0, 9.0, 9.5])
    with pytest.raises(InputError, match=r"step 0 .* holds rain"):
        read_rainfall(path)
    # The same totals from a run that started an hour earlier are read: 4 mm fell 11-12 h.
    fc = read_rainfall(_wrfout(tmp_path / "wrfout_restart", rainnc=[4.0, 6.0, 9.0, 9.5],
                               start="2020-05-30_11:00:00"))
    np.testing.assert_allclose(fc.rain_mm[0, :, 0, 0], [4.0, 3.0, 3.0, 2.5], atol=1e-5)
    assert str(fc.step_start[0]) == "2020-05-30T11:00:00"
