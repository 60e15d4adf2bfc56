import numpy as np

from floodwarn.kernels.accumulation import accumulate_cells, accumulate_into, accumulate_weights

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


def _serpentine(n_rows: int, n_cols: int) -> np.ndarray:
    """One path through every cell: east along even rows, west along odd rows, then down.

    The path crosses every band edge of a banded accumulation, so band-local totals must be
    carried across edges many times over; the accumulation along the path is 1, 2, 3, ... .
    """
    fd = np.empty((n_rows, n_cols), np.uint8)
    fd[0::2, :] = 1  # east
    fd[1::2, :] = 16  # west
    fd[0::2, -1] = 4  # south at the east end of even rows
    fd[1::2, 0] = 4  # south at the west end of odd rows
    fd[-1, -1 if n_rows % 2 else 0] = 0
    return fd


def test_banded_accumulation_matches_one_band_on_a_path_through_every_band():
    fd = _serpentine(300, 7)
    expected_order = np.arange(1, 300 * 7 + 1)
    for n_threads in (1, 2, 3, 4):
        acc = np.ones(fd.size, np.uint32)
        unfinished = accumulate_into(fd.reshape(-1), 7, acc, n_threads)
        assert unfinished == 0
        along_path = acc.reshape(fd.shape).copy()
        along_path[1::2] = along_path[1::2, ::-1]
        np.testing.assert_array_equal(along_path.reshape(-1), expected_order)


def test_banded_accumulation_carries_weights_across_bands():
    rng = np.random.default_rng(3)
    fd = rng.choice(np.array([1, 2, 4, 8, 16, 32, 64, 128], np.uint8), size=(256, 40))
    fd[:, 0] = fd[:, -1] = fd[0, :] = fd[-1, :] = 0  # outlets all round; random paths inside
    fd[126:130, :] = 4  # no cycle through a band edge: all flow south there
    w = rng.random(fd.shape)
    one_band = w.reshape(-1).copy()
    unfinished_one = accumulate_into(fd.reshape(-1), 40, one_band, 1)
    assert unfinished_one > 0  # random directions make two-cell cycles inside the bands
    for n_threads in (2, 4):
        if n_threads == 4:
            fd[62:66, :] = fd[190:194, :] = 4
            one_band = w.reshape(-1).copy()
            unfinished_one = accumulate_into(fd.reshape(-1), 40, one_band, 1)
        banded = w.reshape(-1).copy()
        assert accumulate_into(fd.reshape(-1), 40, banded, n_threads) == unfinished_one
        np.testing.assert_allclose(banded, one_band, rtol=1e-12)


def test_cycle_through_a_band_edge_is_found_not_looped_forever():
    fd = np.zeros((256, 5), np.uint8)
    fd[127, 2] = 4  # (127, 2) -> (128, 2): the last row of band 0 ...
    fd[128, 2] = 64  # ... and back north from the first row of band 1
    fd[126, 2] = 4  # a tributary into the cycle
    acc = np.ones(fd.size, np.uint32)
    assert accumulate_into(fd.reshape(-1), 5, acc, 2) == -1
    acc, unfinished = accumulate_cells(fd)  # redoes it in one band
    assert unfinished == 2
    _, unfinished = accumulate_weights(fd, np.ones(fd.shape))
    assert unfinished == 2
