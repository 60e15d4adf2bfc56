import math

import numpy as np

from floodwarn.kernels.d8 import code_offset_table, d8_steepest_descent, flowdir_problems


def test_codes_follow_esri_encoding():
    # Centre of a 3x3 bowl-free grid: each neighbour in turn is the single lowest one.
    expected = {
        (1, 2): 1,
        (2, 2): 2,
        (2, 1): 4,
        (2, 0): 8,
        (1, 0): 16,
        (0, 0): 32,
        (0, 1): 64,
        (0, 2): 128,
    }
    for (r, c), code in expected.items():
        z = np.full((3, 3), 10.0, np.float32)
        z[r, c] = 0.0
        assert d8_steepest_descent(z)[1, 1] == code


def test_drop_is_divided_by_distance():
    z = np.full((3, 3), 10.0, np.float32)
    z[1, 2] = 8.0  # east: drop 2 over 1 cell -> 2.0
    z[2, 2] = 7.5  # south-east: drop 2.5 over sqrt(2) -> 1.77
    assert d8_steepest_descent(z)[1, 1] == 1
    z[2, 2] = 7.0  # drop 3 / sqrt(2) = 2.12 > 2
    assert d8_steepest_descent(z)[1, 1] == 2


def test_no_lower_neighbour_is_outlet_and_nan_is_nodata():
    z = np.full((3, 3), 5.0, np.float32)
    z[0, 0] = np.nan
    fd = d8_steepest_descent(z)
    assert fd[0, 0] == 255
    assert fd[1, 1] == 0


def test_ties_go_to_first_code():
    z = np.full((3, 3), 10.0, np.float32)
    z[1, 2] = 9.0
    z[2, 1] = 9.0
    assert d8_steepest_descent(z)[1, 1] == 1  # E before S


def test_flowdir_problems_finds_each_kind():
    fd = np.zeros((3, 3), np.uint8)
    assert flowdir_problems(fd) == (0, -1, -1)
    fd[1, 1] = 3
    assert flowdir_problems(fd) == (1, 1, 1)
    fd[1, 1] = 0
    fd[0, 0] = 64  # north from the top row
    assert flowdir_problems(fd) == (2, 0, 0)
    fd[0, 0] = 1
    fd[0, 1] = 255
    assert flowdir_problems(fd) == (3, 0, 0)


def test_offset_table():
    table = code_offset_table(10)
    assert table[1] == 1 and table[2] == 11 and table[4] == 10 and table[128] == -9
    assert table[0] == 0 and table[3] == 0 and math.isclose(table[64], -10)
