"""Depth = stage − HAND within each reach's catchment, and the time cells first flood."""

import numpy as np
import pytest

from floodwarn.kernels.inundation import depth_and_first_flooding, stage_from_discharge


def test_depth_is_stage_minus_hand_in_the_reach_catchment():
    hand = np.array([[0.0, 0.5, 2.0], [1.0, np.nan, 0.2]], np.float32)
    catchment = np.array([[1, 1, 1], [2, 2, 0]], np.int32)
    stage = np.array([[0.2, 1.2, 0.8], [0.0, 0.0, 0.5]])  # reach 1 peaks at 1.2 m, reach 2 0.5
    depth, first = depth_and_first_flooding(hand, catchment, stage,
                                            np.array([6.0, 12.0, 18.0], np.float32))
    np.testing.assert_allclose(depth[0], [1.2, 0.7, 0.0], atol=1e-6)
    assert depth[1, 0] == 0.0  # HAND 1.0 above reach 2's 0.5 m
    assert np.isnan(depth[1, 1]) and np.isnan(depth[1, 2])  # no HAND; outside catchments
    # The stream cell floods with the first positive stage (6 h); HAND 0.5 when reach 1 passes
    # it (12 h); cells never reached stay NaN.
    assert first[0, 0] == 6.0 and first[0, 1] == 12.0
    assert np.isnan(first[0, 2]) and np.isnan(first[1, 0])


def test_stage_from_discharge_interpolates_and_caps():
    levels = np.array([0.0, 1.0, 2.0, 3.0])
    curve = np.array([[0.0, 10.0, 40.0, 90.0]])
    q = np.array([[0.0, 5.0, 10.0, 25.0, 90.0, 500.0, -1.0]])
    np.testing.assert_allclose(stage_from_discharge(curve, levels, q)[0],
                               [0.0, 0.5, 1.0, 1.5, 3.0, 3.0, 0.0])


def test_flood_inundation_on_the_trapezoid(tmp_path):
    from floodwarn.inundation.depth import flood_inundation
    from floodwarn.inundation.rating_curves import synthetic_rating_curves
    from floodwarn.terrain.model import build_terrain_model
    from tests.conftest import utm_grid
    from tests.inundation.test_rating_curves import _trapezoid_valley

    dem = _trapezoid_valley()
    model = build_terrain_model(dem, utm_grid(dem.shape, cellsize=10.0), stream_area_km2=0.05,
                                max_reach_length_m=1000.0)
    curves = synthetic_rating_curves(model, manning_n=0.05)
    k = int(np.flatnonzero(np.isclose(curves.stage_m, 2.5))[0])
    q = np.repeat(curves.discharge_m3s[:, k : k + 1], 3, axis=1) * np.array([0.0, 1.0, 1.0])
    flood = flood_inundation(model, curves, q, np.array([1.0, 2.0, 3.0]))
    row = 150
    # 2.5 m of water over the stream; 2.5 − 1.06 on the first side cell; dry beyond HAND 2.5.
    assert flood.depth_m[row, 30] == pytest.approx(2.5, abs=0.01)
    assert flood.depth_m[row, 27] == pytest.approx(2.5 - 1.06, abs=0.01)
    assert flood.depth_m[row, 25] == 0.0
    assert flood.first_flooding_h[row, 30] == 2.0 and np.isnan(flood.first_flooding_h[row, 25])
    assert not flood.above_curve.any()
