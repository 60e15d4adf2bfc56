"""Flood scenarios by return period on a small terrain inside El Salvador: the design storm by
hand, agreement with the return-period thresholds, monotonicity in the return period and the
rain factor, serial = parallel, the CLI through to the shelter plan, and bad requests."""

from __future__ import annotations

import itertools
import json
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from shapely.geometry import Point
from typer.testing import CliRunner

from floodwarn.cli import app
from floodwarn.ensemble import Execution
from floodwarn.errors import InputError
from floodwarn.pipeline import EXPOSURE_FILES, run_flood_scenarios, scenario_folder
from floodwarn.planning.exposure import annual_probability_weights
from floodwarn.request import ScenarioRequest
from tests.test_forecast_cli import _main_river_cell, salvadoran_terrain  # noqa: F401

runner = CliRunner()
PERIODS = (2, 10, 100)


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOODWARN_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def layers(salvadoran_terrain, tmp_path_factory):  # noqa: F811
    """A town on the main river, one on a hill; a school by the river, two away from it."""
    _, model = salvadoran_terrain
    folder = tmp_path_factory.mktemp("layers")
    river = _main_river_cell(model)
    x, y = model.grid.cell_centres(np.array([river[0] * 200 + river[1], 5 * 200 + 5,
                                             195 * 200 + 195, 100 * 200 + 5]))
    gpd.GeoDataFrame({"geonameid": [1, 2], "name": ["Ribera", "Loma"],
                      "population": [5000, 300]},
                     geometry=[Point(x[0], y[0]), Point(x[1], y[1])], crs=model.grid.crs
                     ).to_crs("EPSG:4326").to_file(folder / "towns.geojson", driver="GeoJSON")
    gpd.GeoDataFrame({"id": [10, 11, 12], "name": ["Escuela Ribera", "Escuela Loma",
                                                   "Casa comunal"],
                      "category": ["school", "school", "other"]},
                     geometry=[Point(x[0], y[0]), Point(x[2], y[2]), Point(x[3], y[3])],
                     crs=model.grid.crs).to_crs("EPSG:4326").to_file(
        folder / "sites.geojson", driver="GeoJSON")
    return folder / "towns.geojson", folder / "sites.geojson"


@pytest.fixture(scope="module")
def serial_run(salvadoran_terrain, layers, tmp_path_factory):  # noqa: F811
    terrain_dir, model = salvadoran_terrain
    out = tmp_path_factory.mktemp("scenarios-serial")
    request = ScenarioRequest.build(terrain_dir=terrain_dir, return_periods=PERIODS,
                                    settlements_path=layers[0], centres_path=layers[1])
    return run_flood_scenarios(request, out, cache_dir=out / "cache", terrain=model,
                               execution=Execution())


def _reaches(run, years):
    return gpd.read_file(scenario_folder(run.out_dir, years) / "reaches.gpkg")


def test_every_return_period_writes_a_forecast_runs_files(serial_run):
    for years in PERIODS:
        folder = scenario_folder(serial_run.out_dir, years)
        for name in ("depth.tif", "first_flooding_hours.tif", "reaches.gpkg",
                     "settlements.gpkg", "centres.gpkg", "evacuation.csv", "summary.json",
                     "run.json"):
            assert (folder / name).exists(), (years, name)
    for name in EXPOSURE_FILES.values():
        assert (serial_run.out_dir / name).exists()
    record = json.loads((serial_run.out_dir / "scenarios.json").read_text())
    assert record["return_periods"] == list(PERIODS) and record["synthetic"] is False
    assert record["annual_probability_weights"] == pytest.approx(
        annual_probability_weights(PERIODS).round(6).tolist())


def test_peaks_are_the_return_period_thresholds(serial_run):
    """With every IDF duration and no rain factor, each reach's scenario peak is its T-year
    threshold: the forecasts' classes and the hazard maps agree, and peaks never fall as T
    grows."""
    for years in PERIODS:
        reaches = _reaches(serial_run, years)
        peak, q = reaches["peak_m3s"].to_numpy(), reaches[f"q{years}_m3s"].to_numpy()
        channel = ~np.isnan(reaches["peak_stage_m"].to_numpy())  # not inside a lake
        rising = channel & (q > reaches["base_flow_m3s"].to_numpy() + 1e-6)
        np.testing.assert_allclose(peak[rising], q[rising], rtol=1e-9)
        assert np.all(reaches["return_period_class"].to_numpy()[rising] >= years)
        assert set(reaches["critical_duration_h"]) <= {1, 3, 6, 24, 72}


def test_floods_grow_with_the_return_period(serial_run):
    depths, people = [], []
    for years in PERIODS:
        with rasterio.open(scenario_folder(serial_run.out_dir, years) / "depth.tif") as src:
            depths.append(np.nan_to_num(src.read(1)))
        people.append(gpd.read_file(scenario_folder(serial_run.out_dir, years) /
                                    "settlements.gpkg")["people_exposed"].sum())
    for lower, higher in itertools.pairwise(depths):
        assert np.all(higher >= lower - 1e-4)
    assert (depths[-1] > 0).sum() > (depths[0] > 0).sum()
    assert people == sorted(people) and people[-1] > 0


def test_design_rain_by_hand(salvadoran_terrain, tmp_path):  # noqa: F811
    """A 24-hour 10-year storm: P24 = 1.13 (105 + K·35), K = −(√6/π)(γ + ln ln(10/9)) =
    1.3046, so 170.25 mm; a reach below 5.5 km² takes the 1 km² run, ARF = 1 − 0.0394 ·
    24^−b2 with b2 = 0.40 − 0.0208 ln 4.6: 0.98777 → 168.17 mm. A rain factor of 1.2 gives
    1.2 times that, and higher peaks everywhere."""
    terrain_dir, model = salvadoran_terrain
    k = -math.sqrt(6) / math.pi * (0.5772156649 + math.log(math.log(10 / 9)))
    b2 = 0.40 - 0.0208 * math.log(4.6)
    expected = 1.13 * (105 + k * 35) * (1 - 0.0394 * 24 ** -b2)
    assert expected == pytest.approx(168.17, abs=0.01)
    peaks = {}
    for factor in (1.0, 1.2):
        request = ScenarioRequest.build(terrain_dir=terrain_dir, return_periods=(10,),
                                        durations_h=(24,), rain_factor=factor)
        run = run_flood_scenarios(request, tmp_path / f"f{factor}", cache_dir=tmp_path / "c",
                                  terrain=model)
        reaches = _reaches(run, 10)
        small = model.reaches.upstream_area_km2 < 5.0
        np.testing.assert_allclose(reaches["rain_total_mm"].to_numpy()[small],
                                   expected * factor, rtol=1e-4)
        assert set(reaches["critical_duration_h"]) == {24}
        peaks[factor] = reaches["peak_m3s"].to_numpy()
        assert run.record["rain_factor"] == factor
    assert np.all(peaks[1.2] >= peaks[1.0]) and np.mean(peaks[1.2] > peaks[1.0]) > 0.9


def test_serial_and_parallel_runs_are_identical(serial_run, salvadoran_terrain, layers,  # noqa: F811
                                                tmp_path):
    terrain_dir, model = salvadoran_terrain
    request = ScenarioRequest.build(terrain_dir=terrain_dir, return_periods=PERIODS,
                                    settlements_path=layers[0], centres_path=layers[1])
    parallel = run_flood_scenarios(request, tmp_path / "par", cache_dir=tmp_path / "cache",
                                   terrain=model, execution=Execution(workers=2))
    assert parallel.record["execution"]["mode"] == "dask-local"
    for years in PERIODS:
        for name in ("depth.tif", "first_flooding_hours.tif"):
            with rasterio.open(scenario_folder(serial_run.out_dir, years) / name) as a, \
                    rasterio.open(scenario_folder(parallel.out_dir, years) / name) as b:
                np.testing.assert_array_equal(a.read(1), b.read(1))
        for name in ("settlements.gpkg", "centres.gpkg", "reaches.gpkg"):
            pd.testing.assert_frame_equal(
                gpd.read_file(scenario_folder(serial_run.out_dir, years) / name),
                gpd.read_file(scenario_folder(parallel.out_dir, years) / name))
    for name in EXPOSURE_FILES.values():
        pd.testing.assert_frame_equal(pd.read_csv(serial_run.out_dir / name),
                                      pd.read_csv(parallel.out_dir / name))


def test_cli_scenarios_then_shelter_plan(salvadoran_terrain, layers, tmp_path):  # noqa: F811
    terrain_dir, _ = salvadoran_terrain
    out = tmp_path / "scen"
    result = runner.invoke(app, ["scenarios", "run", "--terrain", str(terrain_dir), "--out",
                                 str(out), "--return-periods", "2", "10", "100",
                                 "--settlements", str(layers[0]), "--centres", str(layers[1]),
                                 "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "100 a" in result.output and "expected people exposed per year" in result.output
    towns = pd.read_csv(out / EXPOSURE_FILES["settlements"])
    ribera = towns.set_index("name").loc["Ribera"]
    people = [ribera[f"people_exposed_rp{t}"] for t in PERIODS]
    assert people[-1] > 0
    assert ribera["eae_people_exposed"] == pytest.approx(
        float(annual_probability_weights(PERIODS) @ np.array(people, float)), abs=0.01)
    centres = pd.read_csv(out / EXPOSURE_FILES["centres"]).set_index("name")
    # The river's school gets water within its margin from some flood on; the hill's never.
    assert centres.loc["Escuela Ribera", "at_risk_from_rp"] in PERIODS
    assert np.isnan(centres.loc["Escuela Loma", "at_risk_from_rp"])
    assert np.isnan(centres.loc["Escuela Loma", "unsafe_from_rp"])
    reaches = pd.read_csv(out / EXPOSURE_FILES["reaches"], keep_default_na=False)
    assert reaches["rank"].iloc[0] == 1 and "Ribera" in reaches["settlements"].iloc[0]
    assert (reaches["eae_people_exposed"].diff().dropna() <= 0).all()
    plan = runner.invoke(app, ["plan", "shelters", "--scenarios", str(out), "--upgrades", "1"])
    assert plan.exit_code == 0, plan.output
    record = json.loads((out / "plan" / "upgrade_plan.json").read_text())
    chosen = pd.read_csv(out / "plan" / "upgrades.csv")
    assert record["chosen"] == len(chosen) <= 1
    assert record["expected_unplaced_after"] <= record["expected_unplaced_before"]
    # With no action the optimiser's plan is each scenario's own evacuation plan.
    scenarios = json.loads((out / "scenarios.json").read_text())
    assert record["expected_unplaced_before"] == pytest.approx(
        scenarios["expected_annual"]["unplaced_evacuees"], abs=0.06)
    assert record["unplaced_before_by_rp"] == {
        name: s["unmet_evacuees"] for name, s in scenarios["scenarios"].items()}
    if len(chosen):
        assert chosen["reason_es"].iloc[0] and chosen["reason_en"].iloc[0]


@pytest.mark.parametrize(("fields", "message"), [
    ({"return_periods": (1, 10)}, "outside 2"),
    ({"return_periods": (10, 10)}, "repeat"),
    ({"rain_factor": 3.0}, "rain factor 3.0"),
    ({"durations_h": (0,)}, "whole hours"),
])
def test_bad_requests_are_named(tmp_path, fields, message):
    with pytest.raises(InputError, match=message):
        ScenarioRequest.build(terrain_dir=tmp_path, **fields)


def test_cli_refuses_words_for_return_periods(tmp_path):
    result = runner.invoke(app, ["scenarios", "run", "--terrain", str(tmp_path), "--out",
                                 str(tmp_path / "o"), "--return-periods", "2", "ten"])
    assert result.exit_code == 2 and "'ten' is not a whole number" in result.output
