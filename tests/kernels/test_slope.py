import numpy as np
import pytest

from floodwarn.kernels.slope import mean_slope_by_label


def test_plane_slopes_worked_by_hand_with_nodata_and_edges():
    # z = 3x + 4y on 10 m cells: |∇z| = 5 m/m everywhere, also one-sided at edges and nodata.
    rows, cols = np.mgrid[0:6, 0:7]
    z = (3.0 * cols * 10 + 4.0 * rows * 10).astype(np.float32)
    z[2, 3] = np.nan
    label = np.ones((6, 7), np.int32)
    label[:, 5:] = 2
    label[0, 0] = 0
    out = mean_slope_by_label(z, label, 3, 10.0)
    assert out[0] == pytest.approx(5.0)
    assert out[1] == pytest.approx(5.0)
    assert out[2] == 0.0  # no cells


def test_matches_numpy_gradient_inside():
    z = np.random.default_rng(0).random((40, 50)).astype(np.float32) * 100
    label = np.zeros((40, 50), np.int32)
    label[1:-1, 1:-1] = 1
    gy, gx = np.gradient(z.astype(np.float64), 30.0)
    expected = np.hypot(gx, gy)[1:-1, 1:-1].mean()
    assert mean_slope_by_label(z, label, 1, 30.0)[0] == pytest.approx(expected, rel=1e-6)
