"""`floodwarn forecast storm` and `forecast run` end to end on a small synthetic terrain."""

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import xarray as xr
from typer.testing import CliRunner

from floodwarn.cli import app
from floodwarn.io.terrain_files import save_terrain_model
from floodwarn.terrain.model import build_terrain_model
from tests.conftest import fractal_dem, utm_grid

runner = CliRunner()


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    """Runs without --cache-dir cache under $FLOODWARN_CACHE_DIR: never the user's home."""
    monkeypatch.setenv("FLOODWARN_CACHE_DIR", str(tmp_path / "default-cache"))


@pytest.fixture(scope="module")
def small_terrain(tmp_path_factory):
    """A 200×200 grid at 90 m in UTM 16N (x 200-218 km, y 1582-1600 km ≈ 14.3-14.5 N)."""
    out = tmp_path_factory.mktemp("terrain")
    dem = fractal_dem(200, seed=4, relief_m=300.0, tilt=0.5)
    model = build_terrain_model(dem, utm_grid((200, 200)), stream_area_km2=0.5)
    save_terrain_model(model, out)
    return out, model


def test_forecast_run_writes_hydrographs_reaches_and_run_json(small_terrain, tmp_path):
    terrain_dir, model = small_terrain
    rain = tmp_path / "storm.nc"
    # A strong core (30 mm/h): enough to lift small rivers over their 1.5-year bankfull flow.
    result = runner.invoke(app, ["forecast", "storm", "--out", str(rain), "--hours", "24",
                                 "--core-rate-mm-h", "30"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "run"
    result = runner.invoke(app, ["forecast", "run", "--terrain", str(terrain_dir), "--rain",
                                 str(rain), "--out", str(out), "--cache-dir",
                                 str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    cached = {p.name.split("_")[0] for p in (tmp_path / "cache").iterdir()}
    assert cached == {"bankfull", "catchment", "reach", "thresholds"}
    with rasterio.open(out / "depth.tif") as src:
        depth = src.read(1)
        assert src.tags()["synthetic"] == "true" and src.crs.to_epsg() == 32616
    assert np.nanmax(depth) > 0
    record = json.loads((out / "run.json").read_text())
    assert record["synthetic"] is True
    assert abs(record["mass_balance"]["relative_error"]) < 1e-3
    assert 0 < record["runoff_total_mm_mean"] < record["rain_total_mm_mean"]
    hydro = xr.open_dataset(out / "hydrographs.nc")
    assert hydro.discharge.shape == (1, len(model.reaches), 24)
    reaches = gpd.read_file(out / "reaches.gpkg")
    assert len(reaches) == len(model.reaches)
    # Peaks are taken at the routing resolution (10 min): at least the step-end maximum
    # (written to 10 mantissa bits: within 2^-11 of the value).
    at_step_ends = hydro.discharge.max(("member", "time")).to_numpy()
    assert (reaches["peak_m3s"] >= at_step_ends * (1 - 2**-11)).all()
    assert (reaches["peak_m3s"] <= at_step_ends * 1.5 + 1.0).all()
    # Thresholds grow with the return period, and the class agrees with them.
    assert (reaches["q100_m3s"] >= reaches["q2_m3s"]).all()
    above2 = (reaches["peak_m3s"] >= reaches["q2_m3s"]) & (reaches["peak_m3s"] > 0)
    assert ((reaches["return_period_class"] >= 2) == above2).all()
    # Before the storm every river carries the base flow of the storm's month (May, the
    # Amanda preset) on its basin.
    month = int(record["rain"]["start"][5:7])
    assert record["base_flow"]["month"] == month
    specific = record["base_flow"]["specific_l_s_km2"]
    assert month == 5 and specific == 4.0  # models/base_flow.yaml
    np.testing.assert_allclose(reaches["base_flow_m3s"],
                               specific / 1000.0 * reaches["upstream_area_km2"], rtol=1e-6)


def test_forecast_run_refuses_a_grid_that_misses_the_domain(small_terrain, tmp_path):
    terrain_dir, _ = small_terrain
    far = tmp_path / "far.nc"
    xr.Dataset(
        {"pr": (("time", "lat", "lon"), np.ones((2, 3, 3)), {"units": "mm"})},
        coords={"time": np.array(["2020-05-31T01", "2020-05-31T02"], "datetime64[ns]"),
                "lat": [1.0, 0.0, -1.0], "lon": [10.0, 11.0, 12.0]},
    ).to_netcdf(far)
    result = runner.invoke(app, ["forecast", "run", "--terrain", str(terrain_dir), "--rain",
                                 str(far), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "does not cover the terrain domain" in result.output
    assert not (tmp_path / "x" / "run.json").exists()


def _uniform_rain(path, start, hours, mm_per_hour):
    times = np.datetime64(start, "ns") + np.arange(1, hours + 1) * np.timedelta64(1, "h")
    xr.Dataset(
        {"pr": (("time", "lat", "lon"), np.full((hours, 3, 3), mm_per_hour),
                {"units": "mm", "floodwarn_accumulation": "step"})},
        coords={"time": times, "lat": [15.0, 14.4, 13.8], "lon": [-90.4, -89.8, -89.2]},
    ).to_netcdf(path)


def test_antecedent_rain_file_sets_the_moisture_class(small_terrain, tmp_path):
    terrain_dir, _ = small_terrain
    forecast = tmp_path / "forecast.nc"
    _uniform_rain(forecast, "2020-06-01T00:00", 12, 5.0)
    wet = tmp_path / "wet.nc"  # 120 h × 0.5 mm = 60 mm in the 5 days before: AMC III
    _uniform_rain(wet, "2020-05-27T00:00", 120, 0.5)
    dry = tmp_path / "dry.nc"  # 12 mm: AMC I
    _uniform_rain(dry, "2020-05-27T00:00", 120, 0.1)
    records = {}
    for name, path in (("wet", wet), ("dry", dry)):
        result = runner.invoke(app, ["forecast", "run", "--terrain", str(terrain_dir), "--rain",
                                     str(forecast), "--out", str(tmp_path / name),
                                     "--antecedent-rain", str(path)])
        assert result.exit_code == 0, result.output
        records[name] = json.loads((tmp_path / name / "run.json").read_text())
    n = sum(records["wet"]["antecedent_moisture_class_counts"].values())
    assert records["wet"]["antecedent_moisture_class_counts"]["AMC 3"] == n
    assert records["dry"]["antecedent_moisture_class_counts"]["AMC 1"] == n
    assert records["wet"]["runoff_total_mm_mean"] > 2 * records["dry"]["runoff_total_mm_mean"]

    short = tmp_path / "short.nc"  # only 2 days before the forecast
    _uniform_rain(short, "2020-05-30T00:00", 48, 1.0)
    result = runner.invoke(app, ["forecast", "run", "--terrain", str(terrain_dir), "--rain",
                                 str(forecast), "--out", str(tmp_path / "short"),
                                 "--antecedent-rain", str(short)])
    assert result.exit_code == 2
    assert "must cover the 5 days before the forecast" in result.output
    both = runner.invoke(app, ["forecast", "run", "--terrain", str(terrain_dir), "--rain",
                               str(forecast), "--out", str(tmp_path / "both"), "--amc", "3",
                               "--antecedent-rain-mm", "10"])
    assert both.exit_code == 2 and "not several" in both.output


def test_ensemble_members_run_independently_and_give_probabilities(small_terrain, tmp_path):
    terrain_dir, _ = small_terrain
    scale = np.array([0.2, 1.0, 3.0])[:, None, None, None]  # three members: dry, mid, wet
    times = np.datetime64("2020-06-01T00:00", "ns") + np.arange(1, 13) * np.timedelta64(1, "h")
    rain = np.broadcast_to(scale * 6.0, (3, 12, 3, 3)).copy()
    path = tmp_path / "ens.nc"
    xr.Dataset({"pr": (("member", "time", "lat", "lon"), rain,
                       {"units": "mm", "floodwarn_accumulation": "step"})},
               coords={"member": [0, 1, 2], "time": times, "lat": [15.0, 14.4, 13.8],
                       "lon": [-90.4, -89.8, -89.2]}).to_netcdf(path)
    out = tmp_path / "ens-run"
    result = runner.invoke(app, ["forecast", "run", "--terrain", str(terrain_dir), "--rain",
                                 str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    hydro = xr.open_dataset(out / "hydrographs.nc")
    assert hydro.discharge.sizes["member"] == 3
    peaks = hydro.discharge.max("time").values  # (member, reach) at step ends
    assert np.all(peaks[0] <= peaks[1]) and np.all(peaks[1] <= peaks[2])
    reaches = gpd.read_file(out / "reaches.gpkg")
    # The median member's peak, taken at the 10-minute routing resolution between step ends.
    assert (reaches["peak_m3s"] >= peaks[1] * (1 - 2**-11)).all()
    np.testing.assert_allclose(reaches["peak_m3s"], peaks[1], rtol=0.05)
    q2 = reaches["q2_m3s"].to_numpy()
    member_classes = (peaks >= q2[None, :]) & (peaks > 0)
    clear = (np.abs(peaks - q2[None, :]) > 0.05 * q2[None, :]).all(axis=0)
    np.testing.assert_allclose(reaches["prob_rp2"][clear], member_classes.mean(axis=0)[clear])
    assert clear.mean() > 0.8
    record = json.loads((out / "run.json").read_text())
    assert len(record["rain_total_mm_by_member"]) == 3
    assert record["rain_total_mm_by_member"][2] == pytest.approx(3 * 6.0 * 12, rel=1e-6)
    assert record["versions"]["numba"] != "not installed"


def test_curve_numbers_from_landcover_and_soil_rasters(small_terrain, tmp_path):
    terrain_dir, model = small_terrain
    forecast = tmp_path / "forecast.nc"
    _uniform_rain(forecast, "2020-06-01T00:00", 12, 8.0)
    records = {}
    for name, (cover, soil) in {"urban_d": (50, 4), "woods_a": (10, 1)}.items():
        paths = []
        for what, code in (("landcover", cover), ("soil", soil)):
            path = tmp_path / f"{name}_{what}.tif"
            with rasterio.open(path, "w", driver="GTiff", height=200, width=200, count=1,
                               dtype="int16", crs=model.grid.crs,
                               transform=model.grid.transform, nodata=-1) as ds:
                ds.write(np.full((1, 200, 200), code, np.int16))
            paths.append(path)
        result = runner.invoke(app, ["forecast", "run", "--terrain", str(terrain_dir), "--rain",
                                     str(forecast), "--out", str(tmp_path / name), "--landcover",
                                     str(paths[0]), "--soil", str(paths[1])])
        assert result.exit_code == 0, result.output
        records[name] = json.loads((tmp_path / name / "run.json").read_text())
    # 96 mm of rain. Built-up on group D, CN 92: S = 22.09, Ia = 4.42 → Q = 91.58²/113.67 =
    # 73.79 mm. Woods (fair) on group A, CN 36: S = 451.56, Ia = 90.31 → Q = 5.69²/457.25.
    assert records["urban_d"]["rain_total_mm_mean"] == pytest.approx(96.0)
    assert records["urban_d"]["runoff_total_mm_mean"] == pytest.approx(73.79, abs=0.01)
    assert records["woods_a"]["runoff_total_mm_mean"] == pytest.approx(0.0708, abs=1e-3)
    assert records["urban_d"]["parameters"]["curve_numbers"]["cells_defaulted_share"] == 0.0


@pytest.fixture(scope="module")
def salvadoran_terrain(tmp_path_factory):
    """The small terrain moved inside El Salvador (UTM 16N x 270 km, y 1540 km ≈ 89.1 W,
    13.9 N), where the shipped municipalities can place towns and shelters."""
    from affine import Affine

    from floodwarn.terrain.grid import Grid

    out = tmp_path_factory.mktemp("terrain-sv")
    grid = Grid(shape=(200, 200), transform=Affine(90.0, 0, 270_000, 0, -90.0, 1_540_000),
                crs="EPSG:32616")
    model = build_terrain_model(fractal_dem(200, seed=4, relief_m=300.0, tilt=0.5), grid,
                                stream_area_km2=0.5)
    save_terrain_model(model, out)
    return out, model


def _main_river_cell(model):
    """(row, col) of the stream cell of the terrain's largest river, 40 cells above its
    outlet: a town there is flooded by a river, not by a creek."""
    last = model.reaches.last_cell[int(np.argmax(model.reaches.upstream_area_km2))]
    cell = int(last)
    for _ in range(40):  # up the main stem: the inflowing stream cell of largest area
        r, c = divmod(cell, model.grid.shape[1])
        best = None
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                rr, cc = r + dr, c + dc
                if (dr or dc) and 0 <= rr < model.grid.shape[0] and \
                        0 <= cc < model.grid.shape[1] and model.reach_id[rr, cc] > 0 and \
                        model.accumulation[rr, cc] < model.accumulation[r, c] and (
                        best is None or model.accumulation[rr, cc] > model.accumulation[best]):
                    best = (rr, cc)
        if best is None:
            break
        cell = best[0] * model.grid.shape[1] + best[1]
    return divmod(cell, model.grid.shape[1])


def test_risk_outputs_for_given_settlements_and_centres(salvadoran_terrain, tmp_path):
    """Towns and shelters placed on the terrain: levels, safety and an evacuation plan that
    keeps every capacity and places or reports every evacuee."""
    import pandas as pd
    from shapely.geometry import Point

    terrain_dir, model = salvadoran_terrain
    river = _main_river_cell(model)
    x, y = model.grid.cell_centres(np.array([river[0] * 200 + river[1],
                                             5 * 200 + 5, 195 * 200 + 195, 100 * 200 + 5]))
    towns = gpd.GeoDataFrame(  # the GeoNames fields of the shipped layer
        {"geonameid": [1, 2], "name": ["Ribera", "Loma"], "population": [5000, 300]},
        geometry=[Point(x[0], y[0]), Point(x[1], y[1])], crs=model.grid.crs)
    sites = gpd.GeoDataFrame(
        {"id": [10, 11, 12], "name": ["Escuela Ribera", "Escuela Loma", "Casa comunal"],
         "category": ["school", "school", "other"]},
        geometry=[Point(x[0], y[0]), Point(x[2], y[2]), Point(x[3], y[3])], crs=model.grid.crs)
    towns.to_crs("EPSG:4326").to_file(tmp_path / "towns.geojson", driver="GeoJSON")
    sites.to_crs("EPSG:4326").to_file(tmp_path / "sites.geojson", driver="GeoJSON")
    rain = tmp_path / "storm.nc"
    times = np.datetime64("2020-06-01T00:00", "ns") + np.arange(1, 25) * np.timedelta64(1, "h")
    xr.Dataset({"pr": (("time", "lat", "lon"), np.full((24, 3, 3), 30.0),
                       {"units": "mm", "floodwarn_accumulation": "step"})},
               coords={"time": times, "lat": [14.2, 13.9, 13.6],
                       "lon": [-89.4, -89.1, -88.8]}).to_netcdf(rain)  # 720 mm in a day
    out = tmp_path / "risk-run"
    result = runner.invoke(app, ["forecast", "run", "--terrain", str(terrain_dir), "--rain",
                                 str(rain), "--out", str(out), "--settlements",
                                 str(tmp_path / "towns.geojson"), "--centres",
                                 str(tmp_path / "sites.geojson")])
    assert result.exit_code == 0, result.output
    settled = gpd.read_file(out / "settlements.gpkg")
    centres = gpd.read_file(out / "centres.gpkg")
    plan = pd.read_csv(out / "evacuation.csv", dtype={"centre_id": str}, keep_default_na=False)
    ribera = settled.set_index("name").loc["Ribera"]
    assert ribera["level"] == "roja" and ribera["max_depth_m"] > 1.0
    assert centres.set_index("name").loc["Escuela Ribera", "status"] == "unsafe"
    # Nobody is sent to an unsafe centre, no capacity is exceeded, every evacuee is counted.
    unsafe_ids = set(centres.loc[centres["status"] == "unsafe", "id"].astype(str))
    assert not set(plan["centre_id"]) & unsafe_ids
    assert (centres["occupancy"] <= centres["capacity"]).all()
    for town in settled.itertuples():
        rows = plan[plan["settlement_id"] == int(town.id)]
        assert rows["people"].sum() == town.evacuees
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settlements_by_level"]["roja"] >= 1
    # Per municipality by id and per department by ISO code (names repeat), even on synthetic
    # ground, each with its official name.
    assert set(summary["by_municipality"]) == set(settled["municipality_id"])
    for muni, towns_here in settled.groupby("municipality_id"):
        entry = summary["by_municipality"][muni]
        assert entry["name"] == towns_here["municipality"].iloc[0]
        assert entry["department_code"] == towns_here["department_code"].iloc[0]
        assert sum(entry["people_exposed_by_level"].values()) == towns_here[
            "people_exposed"].sum()
        assert entry["evacuees"] == towns_here["evacuees"].sum()
    assert {code: d["name"] for code, d in summary["by_department"].items()} == dict(
        zip(settled["department_code"], settled["department"], strict=True))


def test_planners_rerun_the_evacuation_with_changed_capacities(salvadoran_terrain, tmp_path):
    import pandas as pd

    test_risk_outputs_for_given_settlements_and_centres(salvadoran_terrain, tmp_path)
    run = tmp_path / "risk-run"
    centres = gpd.read_file(run / "centres.gpkg")
    safe = centres[centres["status"] == "safe"]
    bigger = pd.DataFrame({"centre_id": safe["id"].astype(str), "capacity": 100_000})
    bigger.to_csv(tmp_path / "caps.csv", index=False)
    result = runner.invoke(app, ["forecast", "evacuate", "--run", str(run), "--capacities",
                                 str(tmp_path / "caps.csv")])
    assert result.exit_code == 0, result.output
    summary = json.loads((run / "replan" / "summary.json").read_text())
    before = json.loads((run / "summary.json").read_text())
    assert summary["evacuees"] == before["evacuees"]
    assert summary["unmet_evacuees"] <= before["unmet_evacuees"]
    replanned = gpd.read_file(run / "replan" / "centres.gpkg")
    assert (replanned["occupancy"] <= replanned["capacity"]).all()
    bad = tmp_path / "bad.csv"
    bad.write_text("centre_id,capacity\nnope,10\n")
    result = runner.invoke(app, ["forecast", "evacuate", "--run", str(run), "--capacities",
                                 str(bad)])
    assert result.exit_code == 2 and "not in this run" in result.output


def test_ensemble_risk_levels_come_from_member_probabilities(salvadoran_terrain, tmp_path):
    from shapely.geometry import Point

    terrain_dir, model = salvadoran_terrain
    river = _main_river_cell(model)
    x, y = model.grid.cell_centres(np.array([river[0] * 200 + river[1]]))
    gpd.GeoDataFrame({"geonameid": [1], "name": ["Ribera"], "population": [5000]},
                     geometry=[Point(x[0], y[0])], crs=model.grid.crs).to_crs(
        "EPSG:4326").to_file(tmp_path / "towns.geojson", driver="GeoJSON")
    times = np.datetime64("2020-06-01T00:00", "ns") + np.arange(1, 25) * np.timedelta64(1, "h")
    scale = np.array([0.0, 0.0, 1.0, 1.0])[:, None, None, None]  # two dry, two drenching
    xr.Dataset({"pr": (("number", "time", "lat", "lon"),
                       np.broadcast_to(scale * 30.0, (4, 24, 3, 3)).copy(),
                       {"units": "mm", "floodwarn_accumulation": "step"})},
               coords={"number": [0, 1, 2, 3], "time": times, "lat": [14.2, 13.9, 13.6],
                       "lon": [-89.4, -89.1, -88.8]}).to_netcdf(tmp_path / "ens.nc")
    out = tmp_path / "run"
    result = runner.invoke(app, ["forecast", "run", "--terrain", str(terrain_dir), "--rain",
                                 str(tmp_path / "ens.nc"), "--out", str(out), "--settlements",
                                 str(tmp_path / "towns.geojson")])
    assert result.exit_code == 0, result.output
    town = gpd.read_file(out / "settlements.gpkg").iloc[0]
    # Half the members flood it badly: P(≥ roja) = 0.5 reaches roja's threshold (0.5).
    assert town["prob_roja"] == pytest.approx(0.5)
    assert town["level"] == "roja" and town["level_reason"].startswith("ensemble")
    # The map shows the wetter of the two equally median members, not a dry one.
    assert town["max_depth_m"] > 1.0


def test_prepare_computes_what_forecasts_reuse(small_terrain, tmp_path):
    terrain_dir, _ = small_terrain
    cache = tmp_path / "cache"
    result = runner.invoke(app, ["forecast", "prepare", "--terrain", str(terrain_dir),
                                 "--cache-dir", str(cache)])
    assert result.exit_code == 0, result.output
    prepared = sorted(p.name for p in cache.iterdir())
    assert {n.split("_")[0] for n in prepared} == {"bankfull", "reach", "thresholds"}
    rain = tmp_path / "rain.nc"
    _uniform_rain(rain, "2020-06-01T00:00", 12, 5.0)
    result = runner.invoke(app, ["forecast", "run", "--terrain", str(terrain_dir), "--rain",
                                 str(rain), "--out", str(tmp_path / "run"), "--cache-dir",
                                 str(cache)])
    assert result.exit_code == 0, result.output
    after = sorted(p.name for p in cache.iterdir())
    # The forecast added only its grid's catchment weights: thresholds and geometry were reused.
    assert [n for n in after if not n.startswith("catchment_weights")] == prepared


def test_dry_weather_floods_no_land(salvadoran_terrain, tmp_path):
    """With no rain the rivers carry their base flow, in bank: no land floods, nobody is
    warned (channels hold their bankfull discharge, the model's own 1.5-year flood)."""
    terrain_dir, _ = salvadoran_terrain
    rain = tmp_path / "dry.nc"
    _uniform_rain(rain, "2020-10-01T00:00", 48, 0.0)
    out = tmp_path / "dry-run"
    result = runner.invoke(app, ["forecast", "run", "--terrain", str(terrain_dir), "--rain",
                                 str(rain), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with rasterio.open(out / "depth.tif") as src:
        depth = src.read(1)
    assert np.nanmax(depth) == 0.0
    reaches = gpd.read_file(out / "reaches.gpkg")
    assert (reaches["base_flow_m3s"] <= reaches["bankfull_q_m3s"] * (1 + 1e-6)).all()
    assert (reaches["bankfull_q_m3s"] >= 0.5 * reaches["q2_m3s"]).all()


@pytest.mark.parametrize(("levels", "message"), [
    (["x"], "write ID=METRES"),
    (["cerron_grande=240", "cerron_grande=241"], "given twice"),
    (["nope=1"], "unknown water body 'nope'"),
    (["cerron_grande=nan"], "is not a number"),
    (["cerron_grande=500"], "outside its storage table"),
])
def test_reservoir_levels_are_checked_before_anything_is_loaded(tmp_path, levels, message):
    args = ["forecast", "run", "--terrain", str(tmp_path / "no-terrain"), "--rain",
            str(tmp_path / "no-rain.nc"), "--out", str(tmp_path / "out")]
    for level in levels:
        args += ["--reservoir-level", level]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()


def test_forecast_storm_writes_a_synthetic_ensemble(tmp_path):
    """Member 0 is the storm itself; the others drift and scale (reproducibly)."""
    one, three = tmp_path / "one.nc", tmp_path / "three.nc"
    for path, members in ((one, "1"), (three, "3")):
        result = runner.invoke(app, ["forecast", "storm", "--out", str(path), "--hours", "12",
                                     "--members", members])
        assert result.exit_code == 0, result.output
    assert "3 members" in result.output
    with xr.open_dataset(one) as a, xr.open_dataset(three) as b:
        assert "member" not in a.dims and b.sizes["member"] == 3
        np.testing.assert_array_equal(b["precipitation"].isel(member=0).to_numpy(),
                                      a["precipitation"].to_numpy())
        totals = b["precipitation"].sum(("time", "lat", "lon")).to_numpy()
        assert len(set(np.round(totals, 3))) == 3  # every member rains differently
        assert b.attrs["floodwarn_synthetic"] == 1
