import numpy as np

from floodwarn.kernels.accumulation import accumulate_cells
from floodwarn.kernels.d8 import d8_steepest_descent
from floodwarn.kernels.hand import height_above_nearest_drainage
from floodwarn.kernels.streams import extract_reaches


def test_hand_on_a_v_valley_is_height_above_the_channel():
    r, c = np.mgrid[0:5, 0:5]
    z = (10.0 * np.abs(c - 2) + (4 - r)).astype(np.float32)
    fd = d8_steepest_descent(z)
    acc, _ = accumulate_cells(fd)
    reach_id = extract_reaches(fd, acc, z, 5, 30.0, np.inf)[0]
    drain = np.empty(25, np.int64)
    hand, catchment = height_above_nearest_drainage(z, fd, reach_id, drain)
    np.testing.assert_array_equal(hand, 10.0 * np.abs(c - 2))
    np.testing.assert_array_equal(drain.reshape(5, 5), r * 5 + 2)
    assert (catchment == 1).all()


def test_cells_draining_to_no_stream_have_nan_hand_and_no_catchment():
    z = np.array([[3, 2, 1]], np.float32).repeat(3, axis=0)
    fd = np.array([[1, 1, 0], [1, 1, 0], [1, 1, 0]], np.uint8)
    reach_id = np.zeros((3, 3), np.int32)
    reach_id[1, 2] = 1
    fd[1, 1] = 1
    drain = np.empty(9, np.int32)
    hand, catchment = height_above_nearest_drainage(z, fd, reach_id, drain)
    assert hand[1, 0] == 2.0 and catchment[1, 0] == 1
    assert np.isnan(hand[0, 0]) and catchment[0, 0] == 0 and drain[0] == -1
    assert hand[1, 2] == 0.0
