"""Worked examples for the valley kernels of the synthetic stand-in DEM."""

import math

import numpy as np

from floodwarn.kernels.valleys import (
    accumulate_tree,
    carve_descending,
    carve_outflow,
    flood_from,
    graded_profile,
    hillslopes_on_beds,
    least_cost_drainage,
    settle_channels,
    upstream_cells,
    valley_envelope,
)


def _check_tree(receiver, order, valid):
    """Every valid cell once in ``order``, after its receiver, which is one of its neighbours."""
    nr, nc = valid.shape
    assert sorted(order.tolist()) == np.flatnonzero(valid.reshape(-1)).tolist()
    position = np.full(nr * nc, -1)
    position[order] = np.arange(order.size)
    for i in order:
        r = receiver[i]
        if r >= 0:
            assert position[r] < position[i]
            assert max(abs(r // nc - i // nc), abs(r % nc - i % nc)) == 1


def test_least_cost_drainage_leaves_a_pit_over_its_lowest_pass():
    # A pit (1) walled by 9s, with a pass of 5 at (2, 3) towards the east edge (0 at (2, 4)).
    z = np.array(
        [
            [9, 9, 9, 9, 9],
            [9, 9, 9, 9, 9],
            [9, 9, 1, 5, 0],
            [9, 9, 9, 9, 9],
            [9, 9, 9, 9, 9],
        ],
        np.float32,
    )
    receiver, order = least_cost_drainage(z)
    _check_tree(receiver, order, np.ones_like(z, bool))
    nc = 5
    assert receiver[2 * nc + 2] == 2 * nc + 3  # the pit drains through the pass
    assert receiver[2 * nc + 3] == 2 * nc + 4  # and the pass to the edge outlet
    assert (receiver[[0, 4, 20, 24]] == -1).all()  # edge cells are outlets


def test_least_cost_drainage_skips_nodata_and_drains_to_it():
    z = np.array([[np.nan, 3, 4], [np.nan, 2, 5], [np.nan, 6, 7]], np.float32)
    z = np.pad(z, ((0, 0), (0, 2)), constant_values=8).astype(np.float32)
    receiver, order = least_cost_drainage(z)
    valid = ~np.isnan(z)
    _check_tree(receiver, order, valid)
    assert (receiver[~valid.reshape(-1)] == -1).all()
    assert receiver[1 * 5 + 1] == -1  # next to nodata: an outlet


def test_accumulate_tree_counts_upstream_cells():
    # A line 0 <- 1 <- 2 with 3 also draining into 1.
    receiver = np.array([-1, 0, 1, 1])
    order = np.array([0, 1, 2, 3])
    acc = accumulate_tree(receiver, order, np.ones(4))
    assert acc.tolist() == [4.0, 3.0, 1.0, 1.0]


def test_carve_descending_cuts_the_pass_below_the_pit():
    z = np.array([[9, 9, 9, 9], [9, 1, 5, 0], [9, 9, 9, 9]], np.float32)
    receiver, order = least_cost_drainage(z)
    carved = carve_descending(z.reshape(-1).astype(np.float64), receiver, order, 4, 1.0, 0.01)
    pit, gap = 1 * 4 + 1, 1 * 4 + 2
    assert carved[pit] == 1.0
    assert math.isclose(carved[gap], 1.0 - 0.01)  # the pass is cut just below the pit
    assert (carved <= z.reshape(-1)).all()  # nothing raised
    has = receiver >= 0
    assert (carved[has] > carved[receiver[has]]).all()  # elevation falls along every step


def _line(n):
    """A straight channel of ``n`` cells along one row; cell 0 is the outlet."""
    receiver = np.arange(-1, n - 1)
    order = np.arange(n)
    return receiver, order


def test_graded_profile_bounds_the_slope_and_keeps_the_outlet():
    n = 50
    receiver, order = _line(n)
    # A staircase: flat treads 10 cells long, risers of 20 m.
    z = (np.arange(n) // 10) * 20.0
    area = np.linspace(100.0, 1.0, n)
    channel = np.ones(n, bool)
    bed = graded_profile(
        z, receiver, order, n, 10.0, area, channel, 50.0, 0.0, 50.0, 0.01, 0.2, 0.45
    )
    assert bed[0] == z[0]
    slope = (bed[1:] - bed[:-1]) / 10.0
    assert (slope >= 0.01 * area[1:] ** -0.45 - 1e-12).all()
    assert (slope <= 0.2 * area[1:] ** -0.45 + 1e-12).all()


def test_graded_profile_keeps_a_linear_profile():
    n = 200
    receiver, order = _line(n)
    z = 0.01 * 30.0 * np.arange(n)  # slope 0.01 on 30 m cells
    bed = graded_profile(
        z,
        receiver,
        order,
        n,
        30.0,
        np.full(n, 10.0),
        np.ones(n, bool),
        300.0,
        0.0,
        300.0,
        1e-4,
        1.0,
        0.45,
    )
    # Zero-phase smoothing: no lag away from the ends.
    np.testing.assert_allclose(bed[40:160], z[40:160], atol=0.05)


def test_hillslopes_follow_their_bed_without_making_pits():
    # Channel: row 0 (cells 0..4, outlet 0). Hillslope cells in row 1 drain north into it.
    nc = 5
    receiver = np.array([-1, 0, 1, 2, 3, 0, 1, 2, 3, 4])
    order = np.arange(10)
    z = np.array([0.0, 1, 5, 6, 7, 10, 11, 15, 16, 17])
    channel = np.zeros(10, bool)
    channel[:nc] = True
    bed = np.full(10, np.nan)
    bed[:nc] = [0.0, 3, 4, 4.5, 5]  # graded: one bed raised, three lowered
    out = hillslopes_on_beds(z, bed, receiver, order, channel, 2.0, 20.0)
    assert (out[:nc] == bed[:nc]).all()
    has = receiver >= 0
    assert (out[has] >= out[receiver[has]]).all()
    # A slope moves with its bed, less than the bed moved (tapered with height).
    delta = bed[1:nc] - z[1:nc]
    moved = out[nc + 1 :] - z[nc + 1 :]
    assert (np.sign(moved) == np.sign(delta)).all() and (np.abs(moved) < np.abs(delta)).all()


def test_valley_envelope_cross_section():
    # One seed in the middle of row 0 of a high plateau; cells 1 m apart.
    z = np.full((1, 41), 100.0)
    seeds = np.array([20])
    out = valley_envelope(
        z,
        seeds,
        np.array([10.0]),
        np.array([2.0]),
        np.array([1.5]),
        np.array([10.0]),
        np.array([2.0]),
        0.5,
        1.0,
        np.inf,
    )[0]
    assert out[20] == 10.0 and out[19] == 10.0  # channel bed within its half width
    np.testing.assert_allclose(out[22], 10.0 + 2.0 + 2.0 * 0.5 / 10.0)  # floodplain
    np.testing.assert_allclose(out[20 + 15], 10.0 + 2.0 + 2.0 + 0.5 * 3.5)  # valley wall
    assert (np.diff(out[20:]) >= 0).all()  # rises away from the river


def test_valley_envelope_keeps_lower_ground_and_nodata():
    z = np.array([[5.0, np.nan, 50.0, 50.0, 1.0]])
    out = valley_envelope(
        z,
        np.array([2]),
        np.array([10.0]),
        np.array([1.0]),
        np.array([0.1]),
        np.array([1.0]),
        np.array([1.0]),
        1.0,
        1.0,
        np.inf,
    )[0]
    assert out[0] == 5.0 and np.isnan(out[1]) and out[2] == 10.0 and out[4] == 1.0
    assert out[3] == 10.0 + 1.0 + 1.0 * 0.9


def test_settle_channels_cuts_a_tributary_into_the_floodplain():
    # Channel 0 <- 1 <- 2; the valley surface of a larger river lies at 5 m around cell 1.
    receiver, order = np.array([-1, 0, 1]), np.array([0, 1, 2])
    bed = np.array([4.0, 8.0, 9.0])
    valley = np.array([4.0, 5.0, 20.0])
    out = settle_channels(
        bed,
        valley,
        receiver,
        order,
        3,
        10.0,
        np.array([10.0, 9.0, 8.0]),
        np.ones(3, bool),
        0.5,
        0.0,
        0.001,
        0.0,
    )
    assert out[0] == 4.0
    assert math.isclose(out[1], 4.5)  # 5 m surface minus 0.5 m depth
    assert out[2] == 9.0  # not in the floodplain: unchanged


def test_upstream_cells_and_flood_from_fill_a_valley_to_its_area():
    # A V-shaped valley falling to the south; the dam at the bottom of the middle column.
    nr, nc = 20, 9
    rows, cols = np.mgrid[0:nr, 0:nc]
    z = (2.0 * np.abs(cols - 4) + (nr - rows) * 0.5).astype(np.float32)
    receiver, order = least_cost_drainage(z)
    dam = (nr - 2) * nc + 4
    up = upstream_cells(receiver, order, dam)
    assert up[dam] and up[2 * nc + 4] and not up[(nr - 1) * nc + 4]
    lake, level = flood_from(z, dam, 30, up)
    assert lake.size >= 30 and lake[0] == dam
    flat = z.reshape(-1)
    assert flat[lake].max() == level
    # Every allowed cell connected to the dam below the level is in the lake.
    below = up & (flat <= level)
    assert set(lake.tolist()) == set(np.flatnonzero(below).tolist())


def test_carve_outflow_cuts_a_falling_path_to_a_low_channel():
    # Row 0: lake shore cell 0 at 10 m, a bump of 12 m, then a channel at 11 m and one at 5 m.
    z = np.array([[10.0, 12.0, 9.0, 11.0, 5.0, 4.0]], np.float32)
    receiver = np.array([1, 2, 3, 4, 5, -1])
    channel = np.array([False, False, False, True, True, True])
    avoid = np.zeros(6, bool)
    assert carve_outflow(z, receiver, 0, 10.0, 0.1, 1.0, channel, avoid, False) == 3
    assert z[0, 1] == 12.0  # only checked
    assert carve_outflow(z, receiver, 0, 10.0, 0.1, 1.0, channel, avoid, True) == 3
    np.testing.assert_allclose(z[0, :5], [10.0, 9.9, 9.0, 9.7, 5.0], rtol=1e-6)
    avoid[2] = True
    assert carve_outflow(z, receiver, 0, 10.0, 0.1, 1.0, channel, avoid, True) == -1
