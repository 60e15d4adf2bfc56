"""The plausibility report: Francou-Rodier K worked by hand, and the warnings a run gets."""

import numpy as np
import pandas as pd
import pytest

from floodwarn.parameters import PlausibilityBounds, load_parameters
from floodwarn.plausibility import francou_rodier_k, plausibility_report

BOUNDS = load_parameters(PlausibilityBounds)


def test_francou_rodier_k_of_recorded_floods():
    # The Lempa at 15 de Septiembre (17,609 km²): 9,500 m³/s in 12-E (2011) is K ≈ 4.61;
    # K = 6 on 1,000 km² is 10,000 m³/s (Q/Q0 = (A/A0)^(1 − K/10) with Q0 = 1e6, A0 = 1e8).
    k = francou_rodier_k(np.array([9500.0, 10_000.0, 0.0]), np.array([17_609.0, 1000.0, 50.0]))
    assert k[0] == pytest.approx(4.61, abs=0.01)
    assert k[1] == pytest.approx(6.0, abs=1e-9)
    assert np.isnan(k[2])


def _reaches(peak, area, extended=None):
    peak = np.asarray(peak, float)
    n = peak.size
    return {
        "peak_m3s": peak, "return_period_class": np.full(n, 25),
        "peak_stage_m": np.full(n, 3.0),
        "rating_curve_extended": np.zeros(n, bool) if extended is None else extended,
        "stage_beyond_rating_curve": np.zeros(n, bool),
        "francou_rodier_k": francou_rodier_k(peak, np.asarray(area, float)),
    }


def test_a_plausible_run_has_no_warning():
    area = np.array([200.0, 1500.0, 17_000.0])
    report = plausibility_report(_reaches([300.0, 1500.0, 6000.0], area), area,
                                 np.array([1, 2, -1]), None, BOUNDS,
                                 record={"mass_balance": {"relative_error": 1e-5}})
    assert report["warnings"] == []
    assert report["francou_rodier"]["largest_rivers"][0]["reach_id"] == 3


def test_implausible_figures_become_warnings_in_spanish_and_english():
    area = np.array([200.0, 1500.0, 17_000.0])
    reaches = _reaches([300.0, 20_000.0, 30_000.0], area,
                       extended=np.array([False, True, False]))
    reaches["hours_to_peak"] = np.array([10.0, 30.0, 71.5])  # the river still rising at 72 h
    towns = pd.DataFrame({"id": [1, 2], "name": ["Aguilares", "Loma"],
                          "max_depth_m": [12.5, 0.0], "flooding_reach_id": [2, 0]})
    report = plausibility_report(
        reaches, area, np.array([1, 2, -1]), towns, BOUNDS,
        record={"mass_balance": {"relative_error": 0.01},
                "rain": {"start": "2020-05-30T12:00:00", "end": "2020-06-02T12:00:00"},
                "water_bodies": [{"id": "x", "name": "Embalse X", "peak_level_m": 250.0,
                                  "table_top_level_m": 247.0, "above_table": True}]})
    codes = {w["code"] for w in report["warnings"]}
    assert codes == {"large_river_rating_curve", "francou_rodier_world",
                     "francou_rodier_regional", "settlement_depth", "mass_balance",
                     "water_body_above_table", "still_rising"}
    rising = next(w for w in report["warnings"] if w["code"] == "still_rising")
    assert rising["reach_id"] == 3 and rising["reaches"] == 1
    deep = next(w for w in report["warnings"] if w["code"] == "settlement_depth")
    assert deep["es"].startswith("Aguilares: más de 10 m de agua.")
    assert "curva de gasto extrapolada" in deep["es"] and "rating curve extended" in deep["en"]
    town = report["deepest_settlements"][0]
    assert town["lowest_land_above_river_m"] == 0.0 and town["reach_id"] == 2


def test_lakes_fast_waves_deep_land_and_overfull_reservoirs():
    area = np.array([1200.0, 1500.0, 17_000.0])
    reaches = _reaches([50_000.0, 1500.0, 6000.0], area)
    reaches["routing_regime"] = np.array([2, 1, 1])  # reach 1 lies inside a lake
    reaches["celerity_m_s"] = np.array([0.0, 9.5, 2.0])
    reaches["channel_slope"] = np.array([0.0001, 0.012, 0.0003])
    depth = np.zeros((4, 4), np.float32)
    depth[0, :2] = [12.0, 11.0]
    catchment = np.full((4, 4), 2, np.int32)
    report = plausibility_report(
        reaches, area, np.array([1, 2, -1]), None, BOUNDS, land_depth=(depth, catchment, 0.01),
        record={"mass_balance": {"relative_error": 0.0},
                "water_bodies": [{"id": "cg", "name": "Embalse Cerrón Grande", "kind":
                                  "reservoir", "peak_level_m": 244.3,
                                  "highest_normal_level_m": 243.0, "table_top_level_m": 247.0,
                                  "above_table": False}]})
    codes = [w["code"] for w in report["warnings"]]
    # The lake's unrouted inflow is no flood: K is not judged there.
    assert "francou_rodier_world" not in codes and report["francou_rodier"]["max_k_reach_id"] != 1
    assert sorted(codes) == ["deep_land", "fast_flood_wave", "reservoir_above_normal"]
    deep = next(w for w in report["warnings"] if w["code"] == "deep_land")
    assert deep["area_km2"] == pytest.approx(0.02) and deep["reach_id"] == 2
