"""Routing invariants on random reach trees: volume is conserved, outflow never leads inflow."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from floodwarn.kernels.routing import muskingum_cunge_network, trapezoid_volume


@given(seed=st.integers(0, 10_000), n=st.integers(1, 40), dt=st.sampled_from([600.0, 3600.0,
                                                                            10_800.0]))
def test_volume_out_of_the_outlets_equals_volume_in(seed, n, dt):
    rng = np.random.default_rng(seed)
    downstream = np.array([rng.integers(i + 1, n) if i < n - 1 else -1 for i in range(n)],
                          np.int64)
    n_t = 400
    lateral = np.zeros((n, n_t))
    storm = rng.integers(2, 12)
    lateral[:, :storm] = rng.gamma(1.5, 5.0, (n, storm))
    dts = np.full(n_t, dt)
    out, inflow, _, storage, dip = muskingum_cunge_network(
        lateral, dts, np.arange(n), downstream, rng.uniform(100, 3000, n),
        rng.uniform(0.0005, 0.05, n), rng.uniform(2, 40, n), 0.035, 2 / 3, 8)
    v_in = trapezoid_volume(lateral, dts).sum()
    v_out = trapezoid_volume(out[downstream < 0], dts).sum()
    # Long after the storm the network has drained: what went in came out.
    assert abs(v_in - v_out - storage.sum()) <= 0.005 * v_in
    assert dip <= 0.01 * v_in
    # Every reach's inflow is its lateral inflow plus what its upstream reaches passed on.
    passed = np.zeros_like(lateral)
    for i in range(n):
        if downstream[i] >= 0:
            passed[downstream[i]] += out[i]
    np.testing.assert_allclose(inflow, lateral + passed, rtol=1e-9, atol=1e-9)
