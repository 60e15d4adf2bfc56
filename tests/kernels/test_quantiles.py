"""Quantiles across ensemble members (floodwarn/kernels/quantiles.py)."""

import numpy as np

from floodwarn.kernels.quantiles import member_quantiles


def test_type_7_quantiles_by_hand():
    # Members 5, 1, 4, 2, 3 at one reach and step: sorted 1…5, positions q·4.
    values = np.array([5, 1, 4, 2, 3], np.float32)[:, None, None]
    out = member_quantiles(values, np.array([0.4, 2.0, 3.6, 0.0, 4.0]))
    np.testing.assert_allclose(out[:, 0, 0], [1.4, 3.0, 4.6, 1.0, 5.0], rtol=1e-6)


def test_members_that_cross_and_tie_match_numpy():
    """Members swap ranks from step to step (the sort starts from the previous order) and
    tie (dry reaches at base flow): the result is numpy's, whatever the order."""
    rng = np.random.default_rng(11)
    crossing = rng.gamma(2.0, 3.0, (9, 40, 30)).astype(np.float32)
    crossing[:, :10] = 1.5  # every member at the same base flow
    crossing[:4, 10:20] = crossing[4:8, 10:20][::-1]  # duplicated members
    for quantiles in ((0.1, 0.5, 0.9), (0.0, 1.0), (0.33,)):
        positions = np.asarray(quantiles) * (crossing.shape[0] - 1)
        np.testing.assert_allclose(member_quantiles(crossing, positions),
                                   np.quantile(crossing, quantiles, axis=0), rtol=1e-6)


def test_one_member_is_every_quantile():
    values = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    out = member_quantiles(values, np.array([0.0, 0.0]))
    np.testing.assert_array_equal(out, np.stack([values[0], values[0]]))


def test_a_missing_member_value_leaves_no_quantile():
    values = np.ones((4, 2, 3), np.float32)
    values[2, 1, 0] = np.nan
    out = member_quantiles(values, np.array([1.5]))
    assert np.isnan(out[0, 1, 0]) and np.isfinite(np.delete(out[0].ravel(), 3)).all()
