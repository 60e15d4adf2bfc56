"""Synthetic rating curves against a trapezoidal channel carved into a synthetic DEM."""

import numpy as np
import pytest

from floodwarn.inundation.rating_curves import synthetic_rating_curves
from floodwarn.terrain.model import build_terrain_model
from tests.conftest import utm_grid

CELL = 10.0
SLOPE = 0.001
SIDE = 10.0  # side slope, horizontal : vertical
N = 0.05


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


def _trapezoid(h, b=40.0, z=SIDE):
    area = (b + z * h) * h
    perimeter = b + 2 * h * np.sqrt(1 + z * z)
    return area, perimeter, area * (area / perimeter) ** (2 / 3) * np.sqrt(SLOPE) / N


@pytest.fixture(scope="module")
def valley():
    dem = _trapezoid_valley()
    model = build_terrain_model(dem, utm_grid(dem.shape, cellsize=CELL), stream_area_km2=0.05,
                                max_reach_length_m=1000.0)
    return model, synthetic_rating_curves(model, manning_n=N)


def test_hand_is_the_height_above_the_stream_cell_reached(valley):
    model, _ = valley
    middle = model.hand[150]
    # Bottom cells step diagonally (0.02 across + 0.01 down beats 0.02 across alone), so they
    # meet the stream one row further down: 0.03 m per step; sides step sideways (1 m drop).
    np.testing.assert_allclose(middle[30 - 5 : 30 + 6],
                               [3.06, 2.06, 1.06, 0.06, 0.03, 0.0, 0.03, 0.06, 1.06, 2.06, 3.06],
                               atol=1e-3)


@pytest.mark.parametrize("stage", [1.5, 2.5, 4.5, 7.5])
def test_area_perimeter_and_discharge_match_the_trapezoid(valley, stage):
    model, curves = valley
    # A reach in the middle of the valley: the first one starts where the stream does.
    middle = int(model.reach_id[150, 30]) - 1
    k = int(np.flatnonzero(np.isclose(curves.stage_m, stage))[0])
    area, perimeter, discharge = _trapezoid(stage)
    assert model.reaches.slope[middle] == pytest.approx(SLOPE, rel=0.02)
    assert curves.cross_section_m2[middle, k] == pytest.approx(area, rel=0.05)
    assert curves.wetted_perimeter_m[middle, k] == pytest.approx(perimeter, rel=0.05)
    assert curves.discharge_m3s[middle, k] == pytest.approx(discharge, rel=0.05)
    # And back: the stage of that discharge.
    q = np.zeros((len(model.reaches), 1))
    q[middle] = discharge
    assert curves.stage_for(q)[middle, 0] == pytest.approx(stage, abs=0.15)


def test_curves_never_fall_with_stage(valley):
    _, curves = valley
    for name in ("flooded_area_m2", "volume_m3", "discharge_m3s", "bed_area_m2"):
        assert np.all(np.diff(getattr(curves, name), axis=1) >= 0), name
