"""Compound-section rating curves against a trapezoidal valley carved into a synthetic DEM:
the bankfull channel below the DEM, the floodplain from HAND, the extension beyond it."""

import math

import numpy as np
import pytest

from floodwarn.inundation.rating_curves import (
    IN_BANK_STEPS,
    bankfull_geometry,
    channel_depth_for,
    channel_manning_n,
    channel_slopes,
    critical_discharge,
    reach_rating_curves,
    synthetic_rating_curves,
)
from floodwarn.parameters import RoutingParameters, load_parameters
from floodwarn.terrain.model import build_terrain_model
from tests.conftest import utm_grid

CELL = 10.0
SLOPE = 0.001
SIDE = 10.0  # side slope, horizontal : vertical
N_CHANNEL = 0.035
N_FLOODPLAIN = 0.05
WIDTH = 8.0  # bankfull channel below the DEM, m
DEPTH = 1.2


def _trapezoid_valley(rows=300, half=30):
    """A straight valley running south: a 5-cell bottom falling 2 cm per cell towards the
    centre column (so it drains to the stream there), then sides rising 1 m per 10 m cell.

    As plates of constant height, the cross-section equals a smooth trapezoid with bottom
    width b = 40 m and side slope 10:1 at mid-cell stages (the midpoint rule), within the
    bottom's 4 cm of relief.
    """
    c = np.abs(np.arange(2 * half + 1) - half)
    across = np.where(c <= 2, 0.02 * c, 0.04 + (c - 2) * CELL / SIDE)
    down = SLOPE * CELL * (rows - np.arange(rows))
    return (100.0 + down[:, None] + across[None, :]).astype(np.float32)


def _manning(area, perimeter, n):
    return area * (area / perimeter) ** (2 / 3) * math.sqrt(SLOPE) / n


def _trapezoid(h, b=40.0, z=SIDE):
    return (b + z * h) * h, b + 2 * h * math.sqrt(1 + z * z)


@pytest.fixture(scope="module")
def valley():
    dem = _trapezoid_valley()
    model = build_terrain_model(dem, utm_grid(dem.shape, cellsize=CELL), stream_area_km2=0.05,
                                max_reach_length_m=1000.0)
    n = len(model.reaches)
    curves = synthetic_rating_curves(
        model, slope=np.full(n, SLOPE), bankfull_width_m=np.full(n, WIDTH),
        bankfull_depth_m=np.full(n, DEPTH), channel_manning_n_base=N_CHANNEL,
        floodplain_manning_n=N_FLOODPLAIN)
    return model, curves


def test_hand_is_the_height_above_the_stream_cell_reached(valley):
    model, _ = valley
    middle = model.hand[150]
    # Bottom cells step diagonally (0.02 across + 0.01 down beats 0.02 across alone), so they
    # meet the stream one row further down: 0.03 m per step; sides step sideways (1 m drop).
    np.testing.assert_allclose(middle[30 - 5 : 30 + 6],
                               [3.06, 2.06, 1.06, 0.06, 0.03, 0.0, 0.03, 0.06, 1.06, 2.06, 3.06],
                               atol=1e-3)


def test_the_channel_below_the_dem_carries_the_bankfull_flow(valley):
    model, curves = valley
    r = int(model.reach_id[150, 30]) - 1
    # In bank: a rectangle W × y with its own roughness; bankfull at depth D (HAND = 0).
    bankfull = _manning(WIDTH * DEPTH, WIDTH + 2 * DEPTH, N_CHANNEL)
    assert curves.bankfull_discharge_m3s[r] == pytest.approx(bankfull, rel=1e-5)
    half = _manning(WIDTH * DEPTH / 2, WIDTH + DEPTH, N_CHANNEL)
    assert curves.discharge_m3s[r, IN_BANK_STEPS // 2] == pytest.approx(half, rel=1e-5)
    q = np.zeros((len(model.reaches), 1))
    q[r] = 0.8 * bankfull
    # Less than bankfull stays in the channel: its stage is below the DEM's drainage level.
    assert curves.stage_for(q)[r, 0] < 0.0


@pytest.mark.parametrize("stage", [1.5, 2.5, 4.5, 7.5])
def test_overbank_flow_adds_channel_and_floodplain(valley, stage):
    model, curves = valley
    r = int(model.reach_id[150, 30]) - 1
    k = IN_BANK_STEPS + round(stage / 0.25)
    assert curves.depth_m[r, k] == pytest.approx(DEPTH + stage, abs=1e-5)
    area, perimeter = _trapezoid(stage)
    channel = _manning(WIDTH * (DEPTH + stage), WIDTH + 2 * DEPTH, N_CHANNEL)
    floodplain = _manning(area - WIDTH * stage, perimeter - WIDTH, N_FLOODPLAIN)
    assert curves.discharge_m3s[r, k] == pytest.approx(channel + floodplain, rel=0.05)
    assert curves.area_m2[r, k] == pytest.approx(area + WIDTH * DEPTH, rel=0.05)
    assert curves.top_width_m[r, k] == pytest.approx(40.0 + 2 * SIDE * stage, rel=0.05)
    # And back: the overbank stage of that discharge.
    q = np.zeros((len(model.reaches), 1))
    q[r] = curves.discharge_m3s[r, k]
    assert curves.stage_for(q)[r, 0] == pytest.approx(stage, abs=0.01)


def test_curves_never_fall_with_stage(valley):
    _, curves = valley
    for name in ("depth_m", "discharge_m3s", "area_m2", "top_width_m"):
        assert np.all(np.diff(getattr(curves, name), axis=1) >= 0), name


def test_a_flow_beyond_the_dem_uses_the_extension_and_is_flagged(valley):
    model, curves = valley
    r = int(model.reach_id[150, 30]) - 1
    top = float(curves.discharge_m3s[r, curves.dem_top])
    q = np.zeros(len(model.reaches))
    q[r] = 1.5 * top
    assert curves.extended(q)[r] and not curves.beyond_top(q)[r]
    stage = curves.stage_for(q)[r]
    assert 30.0 < stage < 30.0 + 70.0  # above the DEM's 30 m, not capped there
    q[r] = 1.01 * float(curves.discharge_m3s[r, -1])
    assert curves.beyond_top(q)[r]


def test_slope_of_a_straight_valley_is_its_gradient_and_flats_take_the_profile():
    dem = _trapezoid_valley()
    # A 40-cell filled flat across the valley (a weir's pool): the reaches inside it drop 0.
    dem[100:140] = np.minimum(dem[100:140], dem[140])
    model = build_terrain_model(dem, utm_grid(dem.shape, cellsize=CELL), stream_area_km2=0.05,
                                max_reach_length_m=200.0)
    params = load_parameters(RoutingParameters)
    slope, window = channel_slopes(model, params)
    flat = int(model.reach_id[120, 30]) - 1
    steady = int(model.reach_id[250, 30]) - 1
    assert model.reaches.slope[flat] == 0.0  # its own drop
    assert slope[steady] == pytest.approx(SLOPE, rel=0.05)
    # The window grows until the profile drops 3 m: the flat's slope is the valley's average
    # over it (the 0.4 m step at the flat's head included), not zero and not a floor.
    assert slope[flat] == pytest.approx(SLOPE, rel=0.1)
    assert window[flat] >= params.slope_min_window_m


def test_bankfull_geometry_follows_the_routing_parameters():
    params = load_parameters(RoutingParameters)
    width, depth = bankfull_geometry(np.array([1.0, 1000.0]), params)
    assert width[0] == pytest.approx(params.width_coefficient_m)
    assert width[1] == pytest.approx(params.width_coefficient_m * 1000.0**params.width_exponent)
    assert depth[1] == pytest.approx(params.depth_coefficient_m * 1000.0**params.depth_exponent)


def test_reach_rating_curves_share_one_slope_floor(valley):
    model, _ = valley
    params = load_parameters(RoutingParameters)
    curves = reach_rating_curves(model, params)
    assert curves.slope.min() >= params.min_channel_slope


def test_steep_channels_take_jarretts_roughness_and_gentle_ones_keep_theirs():
    # Jarrett (1984): n = 0.39 S^0.38 R^-0.16; S = 0.02, R = 1 m gives 0.0882.
    n = channel_manning_n(0.035, np.array([0.02, 0.0005]), np.array([1.0, 1.0]))
    assert n[0] == pytest.approx(0.39 * 0.02**0.38, rel=1e-12)
    assert n[0] == pytest.approx(0.0882, abs=1e-4)
    assert n[1] == 0.035


def test_no_part_of_a_section_flows_faster_than_critical():
    # A 10 m wide, 2 m deep rectangle: critical flow A·√(g·A/T) = 20·√(9.81·2) = 88.6 m³/s.
    assert critical_discharge(np.array([20.0]), np.array([10.0]))[0] == pytest.approx(
        20 * math.sqrt(9.81 * 2), rel=1e-12)


def test_a_channel_is_deepened_to_hold_its_bankfull_flow():
    width, slope = np.array([20.0, 20.0]), np.array([0.001, 0.001])
    depth = channel_depth_for(np.array([50.0, 200.0]), width, slope, N_CHANNEL)
    area = width * depth
    radius = area / (width + 2 * depth)
    q = area * radius ** (2 / 3) * np.sqrt(slope) / N_CHANNEL
    np.testing.assert_allclose(q, [50.0, 200.0], rtol=1e-6)
    assert depth[1] > depth[0]


def test_a_reach_sized_to_a_flow_holds_it_in_bank(valley):
    model, _ = valley
    params = load_parameters(RoutingParameters)
    flow = np.full(len(model.reaches), 40.0)
    curves = reach_rating_curves(model, params, bankfull_discharge_m3s=flow)
    assert (curves.bankfull_discharge_m3s >= 40.0 * (1 - 1e-4)).all()
    assert (curves.stage_for(0.99 * flow) < 0).all()  # in bank: no land floods
