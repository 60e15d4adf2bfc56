import numpy as np

from floodwarn.kernels.accumulation import accumulate_cells
from floodwarn.kernels.streams import extract_reaches, reach_paths, reach_topology
from tests.kernels.test_accumulation import Y_NETWORK


def _valley(nr=5, nc=5):
    r, c = np.mgrid[0:nr, 0:nc]
    return (10.0 * np.abs(c - nc // 2) + (nr - 1 - r)).astype(np.float32)


def test_every_cell_a_stream_splits_at_confluences_with_strahler():
    acc, _ = accumulate_cells(Y_NETWORK)
    z = np.zeros((3, 3), np.float32)
    reach_id, downstream, _head, _last, _length, _drop, _start, _cells, _ = extract_reaches(
        Y_NETWORK, acc, z, 1, 10.0, np.inf
    )
    assert len(downstream) == 9  # 7 one-cell sources, the confluence (1,1), the outlet (2,1)
    rid_centre = reach_id[1, 1]
    rid_outlet = reach_id[2, 1]
    assert rid_centre != rid_outlet
    assert downstream[rid_centre - 1] == rid_outlet
    assert downstream[rid_outlet - 1] == 0
    order, strahler, unordered = reach_topology(downstream)
    assert unordered == 0
    assert strahler[rid_centre - 1] == 2  # five order-1 sources meet
    assert strahler[rid_outlet - 1] == 2  # one order-2 and two order-1 tributaries
    assert strahler[reach_id[0, 0] - 1] == 1
    rank = {rid: i for i, rid in enumerate(order)}
    assert all(rank[r] < rank[d] for r, d in zip(range(1, 10), downstream, strict=True) if d)


def test_threshold_and_reach_attributes_on_a_valley():
    z = _valley()
    from floodwarn.kernels.d8 import d8_steepest_descent

    fd = d8_steepest_descent(z)
    acc, _ = accumulate_cells(fd)
    np.testing.assert_array_equal(acc[:, 2], [5, 10, 15, 20, 25])
    reach_id, downstream, _head, _last, length, drop, _start, cells, _ds_cell = extract_reaches(
        fd, acc, z, 5, 30.0, np.inf
    )
    assert (reach_id[:, 2] == 1).all() and reach_id[:, [0, 1, 3, 4]].max() == 0
    assert list(downstream) == [0]
    assert length[0] == 5 * 30.0  # 4 steps plus the step out of the outlet cell
    assert drop[0] == 4.0
    np.testing.assert_array_equal(cells, [2, 7, 12, 17, 22])


def test_reaches_are_cut_at_the_maximum_length():
    z = _valley()
    from floodwarn.kernels.d8 import d8_steepest_descent

    fd = d8_steepest_descent(z)
    acc, _ = accumulate_cells(fd)
    reach_id, downstream, head, _last, length, _drop, start, cells, _ = extract_reaches(
        fd, acc, z, 5, 30.0, 60.0
    )
    np.testing.assert_array_equal(reach_id[:, 2], [1, 1, 2, 2, 3])
    assert list(downstream) == [2, 3, 0]
    np.testing.assert_array_equal(length, [60.0, 60.0, 30.0])
    path_start, path_cells = reach_paths(fd, reach_id, head)
    np.testing.assert_array_equal(path_start, start)
    np.testing.assert_array_equal(path_cells, cells)


def test_cycle_in_reach_graph_is_reported():
    _, _, unordered = reach_topology(np.array([2, 1, 0], np.int32))
    assert unordered == 2
