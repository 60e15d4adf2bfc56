"""Depth = overbank stage − HAND on land within each reach's catchment; channels and lakes are
water, not flood; the time cells first flood."""

import numpy as np
import pytest

from floodwarn.hydrology.water_bodies import WaterBodyNetwork
from floodwarn.inundation.depth import flood_inundation, water_cells
from floodwarn.inundation.rating_curves import IN_BANK_STEPS, synthetic_rating_curves
from floodwarn.kernels.inundation import depth_and_first_flooding, interpolate_levels
from floodwarn.terrain.model import build_terrain_model
from tests.conftest import utm_grid
from tests.inundation.test_rating_curves import _trapezoid_valley


def test_depth_is_stage_minus_hand_on_land_in_the_reach_catchment():
    hand = np.array([[0.0, 0.5, 2.0], [1.0, np.nan, 0.2]], np.float32)
    catchment = np.array([[1, 1, 1], [2, 2, 0]], np.int32)
    water = np.array([[True, False, False], [False, False, False]])
    stage = np.array([[0.2, 1.2, 0.8], [-0.5, 0.0, 0.5]])  # reach 1 peaks 1.2 m, reach 2 0.5
    depth, first = depth_and_first_flooding(hand, catchment, water, stage,
                                            np.array([6.0, 12.0, 18.0], np.float32))
    assert np.isnan(depth[0, 0]) and np.isnan(first[0, 0])  # the river itself: not a flood
    np.testing.assert_allclose(depth[0, 1:], [0.7, 0.0], atol=1e-6)
    assert depth[1, 0] == 0.0  # HAND 1.0 above reach 2's 0.5 m
    assert np.isnan(depth[1, 1]) and np.isnan(depth[1, 2])  # no HAND; outside catchments
    # HAND 0.5 floods when reach 1 passes it (12 h); cells never reached stay NaN.
    assert first[0, 1] == 12.0
    assert np.isnan(first[0, 2]) and np.isnan(first[1, 0])


def test_interpolate_levels_per_reach_and_caps():
    levels = np.array([[0.0, 1.0, 2.0, 3.0], [0.0, 2.0, 4.0, 6.0]])
    curve = np.array([[0.0, 10.0, 40.0, 90.0], [0.0, 10.0, 40.0, 90.0]])
    q = np.array([[0.0, 5.0, 25.0, 500.0, -1.0], [0.0, 5.0, 25.0, 500.0, -1.0]])
    out = interpolate_levels(curve, levels, q)
    np.testing.assert_allclose(out[0], [0.0, 0.5, 1.5, 3.0, 0.0])
    np.testing.assert_allclose(out[1], [0.0, 1.0, 3.0, 6.0, 0.0])


@pytest.fixture(scope="module")
def valley():
    dem = _trapezoid_valley()
    model = build_terrain_model(dem, utm_grid(dem.shape, cellsize=10.0), stream_area_km2=0.05,
                                max_reach_length_m=1000.0)
    n = len(model.reaches)
    curves = synthetic_rating_curves(
        model, slope=np.full(n, 0.001), bankfull_width_m=np.full(n, 8.0),
        bankfull_depth_m=np.full(n, 1.2), channel_manning_n_base=0.035, floodplain_manning_n=0.05)
    return model, curves


def test_in_bank_flow_floods_no_land_and_overbank_flow_floods_by_stage_minus_hand(valley):
    model, curves = valley
    water = water_cells(model, curves, WaterBodyNetwork.empty(len(model.reaches), model.grid.shape))
    assert water[150, 30] and not water[150, 29]  # the stream cell; its neighbours are land
    bankfull = curves.bankfull_discharge_m3s[:, None]
    k = IN_BANK_STEPS + 10  # 2.5 m overbank
    q = np.concatenate([0.9 * bankfull, curves.discharge_m3s[:, k:k + 1],
                        curves.discharge_m3s[:, k:k + 1]], axis=1)
    flood = flood_inundation(model, curves, q, np.array([1.0, 2.0, 3.0]), water=water)
    row = 150
    assert np.isnan(flood.depth_m[row, 30])  # the channel: water, not flooded land
    assert flood.depth_m[row, 27] == pytest.approx(2.5 - 1.06, abs=0.01)
    assert flood.depth_m[row, 25] == 0.0  # HAND 5.06 above a 2.5 m stage
    # Nothing floods at 90 % of bankfull (the first step); the bank floods at the second.
    assert flood.first_flooding_h[row, 29] == 2.0
    assert np.isnan(flood.first_flooding_h[row, 25])
    assert not flood.extended.any()


def test_a_wide_channel_takes_the_cells_within_its_half_width(valley):
    model, curves = valley
    wide = type(curves)(**{**vars(curves), "bankfull_width_m": np.full(curves.n_reaches, 50.0)})
    water = water_cells(model, wide, WaterBodyNetwork.empty(len(model.reaches), model.grid.shape))
    # 50 m wide on 10 m cells: the stream cell and two cells either side (within 20 m).
    assert water[150, 28:33].all() and not water[150, 27] and not water[150, 33]


def test_a_rising_lake_floods_its_shore_by_its_rise_above_its_mapped_level(valley):
    model, curves = valley
    n = len(model.reaches)
    lake_reach = int(model.reach_id[150, 30]) - 1
    empty = WaterBodyNetwork.empty(len(model.reaches), model.grid.shape)
    bodies = WaterBodyNetwork(
        ids=("lake",), names=("Lago",), kinds=("lake",), outlet_reach=np.array([n - 1]),
        pass_through=np.isin(np.arange(n), [lake_reach]),
        body_of_reach=np.where(np.arange(n) == lake_reach, 0, -1), surface=empty.surface,
        dem_level_m=np.array([100.0]), levels_m=np.array([[99.0, 110.0]]),
        storage_m3=np.array([[0.0, 1e8]]), outflow_m3s=np.array([[0.0, 100.0]]),
        table_top_m=np.array([110.0]), surface_level_m=np.array([100.0]),
        normal_level_m=np.full((1, 12), 100.0), placement=())
    water = water_cells(model, curves, bodies)
    q = np.zeros((n, 2))
    levels = np.array([[100.5, 101.5]])  # 1.5 m above the level its DEM shore stands for
    flood = flood_inundation(model, curves, q, np.array([1.0, 2.0]), water=water,
                             water_bodies=bodies, water_body_level_m=levels)
    in_lake = model.catchment_id == lake_reach + 1
    land = in_lake & ~water & (model.hand < 1.5)
    np.testing.assert_allclose(flood.depth_m[land], 1.5 - model.hand[land], atol=1e-5)
    assert np.nanmax(flood.depth_m[~in_lake]) == 0.0
