import numpy as np

from floodwarn.kernels.accumulation import accumulate_cells, accumulate_weights

# A 3x3 network worked by hand: everything converges on (1, 1), then flows to outlet (2, 1).
Y_NETWORK = np.array([[2, 4, 8], [1, 4, 16], [1, 0, 16]], np.uint8)


def test_counts_worked_by_hand():
    acc, unfinished = accumulate_cells(Y_NETWORK)
    assert unfinished == 0
    np.testing.assert_array_equal(acc, [[1, 1, 1], [1, 6, 1], [1, 9, 1]])


def test_weights_worked_by_hand():
    w = np.arange(9, dtype=np.float64).reshape(3, 3)
    acc, _ = accumulate_weights(Y_NETWORK, w)
    # (1,1) gets itself (4) + 0 + 1 + 2 + 3 + 5 = 15; outlet 7 + 15 + 6 + 8 = 36.
    assert acc[1, 1] == 15
    assert acc[2, 1] == 36
    assert acc[0, 0] == 0


def test_nodata_cells_are_zero_and_not_counted():
    fd = Y_NETWORK.copy()
    fd[0, 0] = 255
    fd[0, 1] = 4
    acc, _ = accumulate_cells(fd)
    assert acc[0, 0] == 0
    assert acc[2, 1] == 8


def test_cycle_is_reported():
    fd = np.zeros((3, 3), np.uint8)
    fd[1, 1] = 1  # (1,1) -> (1,2)
    fd[1, 2] = 16  # (1,2) -> (1,1): a two-cell cycle
    _, unfinished = accumulate_cells(fd)
    assert unfinished == 2
