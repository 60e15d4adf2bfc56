"""Design rainfall, areal reduction, design storms and return-period classes."""

import numpy as np
import pytest

from floodwarn.hydrology.thresholds import (
    ReturnPeriodThresholds,
    alternating_block_hyetograph,
    areal_reduction_factor,
    design_depth_mm,
    gumbel_frequency_factor,
    return_period_thresholds,
    uniform_hyetograph,
)
from floodwarn.parameters import IdfParameters, load_parameters
from tests.hydrology.conftest import network_model

IDF = load_parameters(IdfParameters)


def test_gumbel_frequency_factors_match_chow():
    # Chow, Maidment & Mays (1988) Example 12.3.2: K_5 = 0.719; K_100 worked by hand = 3.137.
    assert gumbel_frequency_factor(5) == pytest.approx(0.719, abs=5e-4)
    assert gumbel_frequency_factor(100) == pytest.approx(3.137, abs=5e-4)
    assert gumbel_frequency_factor(2) == pytest.approx(-0.164, abs=5e-4)


def test_design_depths_grow_with_duration_and_return_period():
    d = design_depth_mm(np.array([1, 6, 24, 72]), 10, IDF)
    assert np.all(np.diff(d) > 0)
    k10 = gumbel_frequency_factor(10)
    p24 = IDF.clock_to_sliding_factor * (
        IDF.annual_max_daily_mean_mm + k10 * IDF.annual_max_daily_std_mm)
    assert d[2] == pytest.approx(p24)
    assert design_depth_mm(24, 100, IDF) > design_depth_mm(24, 10, IDF)


def test_alternating_block_storm_holds_every_duration_depth_centred():
    storm = alternating_block_hyetograph(25, 24, IDF)
    depths = design_depth_mm(np.arange(1, 25), 25, IDF)
    assert storm.sum() == pytest.approx(depths[-1])
    peak = int(storm.argmax())
    assert storm[peak] == pytest.approx(depths[0])
    assert storm[peak - 1 : peak + 2].sum() == pytest.approx(depths[2])  # the 3-hour depth


def test_areal_reduction_worked_by_hand_and_monotone():
    # A = 100 km², D = 24 h: b1 = 0.0394·100^0.354 = 0.2011, b2 ≈ 0.400, 24^-0.4 = 0.2804.
    assert float(areal_reduction_factor(100.0, 24.0)) == pytest.approx(0.9436, abs=5e-4)
    areas = np.array([1.0, 10.0, 100.0, 1000.0, 10_000.0])
    for hours in (1.0, 6.0, 24.0, 72.0):
        arf = areal_reduction_factor(areas, hours)
        assert np.all(np.diff(arf) <= 0) and np.all((arf >= 0.2) & (arf <= 1))
    assert areal_reduction_factor(1000.0, 72.0) > areal_reduction_factor(1000.0, 6.0)


def test_classes_at_their_boundaries():
    thresholds = ReturnPeriodThresholds(
        return_periods_years=np.array([2, 10]),
        discharge_m3s=np.array([[10.0, 0.0], [50.0, 0.0]]),
        idf_version="t", idf_is_approximation=True)
    assert thresholds.classify(np.array([9.999, 0.0])).tolist() == [0, 0]
    assert thresholds.classify(np.array([10.0, 1e-9])).tolist() == [2, 10]
    assert thresholds.classify(np.array([49.9, 0.0])).tolist() == [2, 0]
    assert thresholds.classify(np.array([50.0, 0.0])).tolist() == [10, 0]


def test_thresholds_of_a_small_network_increase_with_return_period():
    n = 3  # reaches 0 and 1 join into 2
    model = network_model(downstream=[2, 2, -1], length_m=1500.0, slope=0.01, width_m=8.0,
                          catchment_area_km2=[5.0, 8.0, 2.0], lag_hours=1.0)
    result = return_period_thresholds(model, IDF)
    q = result.discharge_m3s
    assert q.shape == (len(IDF.return_periods_years), n)
    assert np.all(q > 0) and np.all(np.diff(q, axis=0) > 0)
    assert np.all(q[:, 2] > q[:, 1])  # the confluence carries more than its larger branch


def test_uniform_storm_spreads_the_duration_depth_evenly():
    storm = uniform_hyetograph(10, 6, IDF)
    assert storm.shape == (6,)
    np.testing.assert_allclose(storm, design_depth_mm(6, 10, IDF) / 6)


def test_thresholds_follow_the_forecast_step():
    model = network_model(downstream=[-1], length_m=1000.0, slope=0.02, width_m=5.0,
                          catchment_area_km2=[3.0], lag_hours=0.5)
    hourly = return_period_thresholds(model, IDF).discharge_m3s
    six_hourly = return_period_thresholds(model, IDF, step_hours=6).discharge_m3s
    # A fast 3 km² catchment peaks on 1-hour bursts, which 6-hour steps cannot hold.
    assert np.all(six_hourly < hourly)
