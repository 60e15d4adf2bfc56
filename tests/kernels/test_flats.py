import numpy as np

from floodwarn.kernels.d8 import d8_steepest_descent
from floodwarn.kernels.fill import priority_flood_fill
from floodwarn.kernels.flats import drain_flats


def test_flat_drains_along_shortest_path_to_its_way_out():
    # A 1-row flat at 7 between walls of 9 spills east at (1, 4).
    z = np.array([[9, 9, 9, 9, 9, 9], [9, 7, 7, 7, 7, 3], [9, 9, 9, 9, 9, 9]], np.float32)
    fd = d8_steepest_descent(z)
    assert list(fd[1, 1:4]) == [0, 0, 0]  # flat: no lower neighbour
    n = drain_flats(z, fd)
    assert n == 3
    assert list(fd[1, 1:5]) == [1, 1, 1, 1]  # all east


def test_filled_pit_becomes_a_drained_flat():
    dem = np.array(
        [[9, 9, 9, 9, 9], [9, 2, 2, 2, 9], [9, 2, 1, 2, 9], [9, 2, 2, 2, 9], [9, 9, 0, 9, 9]],
        np.float32,
    )
    # Interior cells next to the edge outlet drain straight out; the rest flow to them.
    filled = priority_flood_fill(dem)
    fd = d8_steepest_descent(filled)
    drain_flats(filled, fd)
    assert not (fd[1:-1, 1:-1] == 0).any()
    assert fd[2, 2] in (2, 4, 8)  # centre -> a cell of row 3, which drains to the outlet
    assert fd[1, 1] in (2, 4)  # towards the shortest way out, never back up


def test_edge_and_nodata_flats_stay_outlets():
    z = np.zeros((4, 4), np.float32)
    fd = d8_steepest_descent(z)
    drain_flats(z, fd)
    edge = np.ones((4, 4), bool)
    edge[1:-1, 1:-1] = False
    assert (fd[edge] == 0).all()
    assert (fd[~edge] != 0).all()
