"""A run's reaches for the map: which are drawn, one reach's hydrograph with its members'
spread and flood discharges, the forecast's timeline — from files written by the run's own
writers, checked against values worked out here."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import LineString

from api.routers.reaches import RETURN_PERIODS, RunReaches
from floodwarn.errors import NotFoundError
from floodwarn.io.forecast_outputs import HYDROGRAPHS_FILE, REACHES_FILE, write_hydrographs

START = np.datetime64("2020-05-30T12:00")


@pytest.fixture
def run_dir(tmp_path):
    """Four reaches (UTM 16N) and a three-member, six-hour forecast."""
    rows = [  # reach_id, strahler, return period class, peak
        (1, 1, 0, 0.5), (2, 3, 5, 12.0), (3, 4, 0, 30.0), (4, 6, 100, 900.0)]
    frame = gpd.GeoDataFrame({
        "reach_id": [r[0] for r in rows], "strahler": [r[1] for r in rows],
        "upstream_area_km2": [1.0, 20.0, 150.0, 4000.0],
        "peak_m3s": [r[3] for r in rows], "hours_to_peak": [3.0, 4.0, 5.0, 6.0],
        "time_of_peak": ["2020-05-30T15:00"] * 4, "return_period_class": [r[2] for r in rows],
        "bankfull_q_m3s": [0.3, 5.0, 25.0, 300.0],
        **{f"q{y}_m3s": [y * 1.0, y * 2.0, y * 3.0, y * 10.0] for y in RETURN_PERIODS}},
        geometry=[LineString([(250000 + 1000 * i, 1500000), (250500 + 1000 * i, 1500300),
                              (251000 + 1000 * i, 1500100)]) for i in range(4)],
        crs="EPSG:32616")
    frame.to_file(tmp_path / REACHES_FILE, driver="GPKG", layer="reaches")
    steps = np.arange(6)
    ends = START + (steps + 1) * np.timedelta64(1, "h")
    members = [np.outer(np.arange(1, 5), steps + 1.0) * scale for scale in (1.0, 2.0, 4.0)]
    write_hydrographs(tmp_path / HYDROGRAPHS_FILE, reach_id=np.arange(1, 5),
                      step_start=ends - np.timedelta64(1, "h"), step_end=ends,
                      discharge_m3s=members, members=np.array([0, 1, 2]), attrs={})
    return tmp_path


def test_the_map_draws_big_rivers_and_every_river_at_five_years(run_dir):
    reaches = RunReaches(7, run_dir)
    drawn = json.loads(reaches.map_layer(min_strahler=4).body)["features"]
    # Order 4 and 6 by order, reach 2 (order 3) by its 5-year peak, reach 1 neither.
    assert sorted(f["properties"]["reach_id"] for f in drawn) == [2, 3, 4]
    first = drawn[0]
    assert first["geometry"]["type"] == "LineString"
    lon, lat = first["geometry"]["coordinates"][0]
    assert -91 < lon < -88 and 13 < lat < 14  # lon/lat, not UTM metres
    assert all(f["properties"].keys() == {"reach_id", "strahler", "return_period_class",
                                          "peak_m3s", "hours_to_peak"} for f in drawn)
    everything = json.loads(reaches.map_layer(min_strahler=1).body)["features"]
    assert len(everything) == 4


def test_a_hydrograph_gives_every_member_its_spread_and_the_flood_discharges(run_dir):
    hydrograph = RunReaches(7, run_dir).hydrograph(3)
    # Reach 3: member m discharges 3·(t+1)·scale_m, scales 1, 2, 4.
    expected = [[3.0 * (t + 1) * s for t in range(6)] for s in (1.0, 2.0, 4.0)]
    assert hydrograph["discharge_m3s"] == expected
    assert hydrograph["members"] == [0, 1, 2]
    spread = hydrograph["spread"]
    assert spread["median"] == expected[1]
    assert spread["min"] == expected[0] and spread["max"] == expected[2]
    # Linear percentiles of (1, 2, 4)·x: p10 = 1.2x, p90 = 3.6x.
    assert spread["p10"] == pytest.approx([1.2 * 3 * (t + 1) for t in range(6)])
    assert spread["p90"] == pytest.approx([3.6 * 3 * (t + 1) for t in range(6)])
    assert [t["return_period_years"] for t in hydrograph["thresholds"]] == [2, 5, 10, 25, 50,
                                                                             100]
    assert [t["discharge_m3s"] for t in hydrograph["thresholds"]] == [6, 15, 30, 75, 150, 300]
    assert hydrograph["times"][0] == "2020-05-30T13:00+00:00"
    assert hydrograph["times"][-1] == "2020-05-30T18:00+00:00"
    assert hydrograph["peak_m3s"] == 30.0 and hydrograph["return_period_class"] == 0


def test_the_timeline_spans_the_forecast(run_dir):
    assert RunReaches(7, run_dir).timeline() == {
        "run_id": 7, "start": "2020-05-30T12:00+00:00", "end": "2020-05-30T18:00+00:00",
        "steps": 6, "step_hours": 1.0, "hours": 6.0}


def test_an_unknown_reach_is_named_in_the_error(run_dir):
    with pytest.raises(NotFoundError, match=r"no reach 99 .*1…4"):
        RunReaches(7, run_dir).hydrograph(99)


def test_a_run_without_reach_results_says_which_file_is_missing(tmp_path):
    with pytest.raises(NotFoundError, match=r"reaches\.gpkg"):
        RunReaches(8, tmp_path).map_layer(4)
