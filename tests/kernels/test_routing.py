"""Linear reservoir and Muskingum-Cunge: translation, attenuation, mass, long steps."""

import math

import numpy as np
import pytest

from floodwarn.kernels.routing import linear_reservoir, muskingum_cunge_network, trapezoid_volume

N_MANNING = 0.035


def _route(inflow, dt, *, length, slope, width, share=2 / 3, max_substeps=8):
    lateral = np.ascontiguousarray(np.atleast_2d(inflow), dtype=np.float64)
    n = lateral.shape[0]
    return muskingum_cunge_network(
        lateral, np.full(lateral.shape[1], float(dt)), np.arange(n), np.full(n, -1),
        np.full(n, float(length)), np.full(n, float(slope)), np.full(n, float(width)),
        N_MANNING, share, max_substeps)


def _triangle(n_t, peak, rise, fall):
    t = np.arange(1, n_t + 1, dtype=np.float64)
    return np.clip(np.minimum(t / rise, (rise + fall - t) / fall), 0, None) * peak


def test_linear_reservoir_matches_the_analytic_solution():
    k = 7200.0
    inflow = np.full((10, 1), 50.0)
    out, storage = linear_reservoir(inflow, np.array([k]), np.full(10, 3600.0))
    t = np.arange(1, 11) * 3600.0
    np.testing.assert_allclose(out[:, 0], 50.0 * (1 - np.exp(-t / k)), rtol=1e-12)
    # Continuity: inflow volume = outflow volume (exact integral) + storage.
    outflow_volume = 50.0 * t[-1] - k * out[-1, 0]
    assert storage[0] == pytest.approx(50.0 * t[-1] - outflow_volume)


def test_short_reach_is_pure_translation_by_its_travel_time():
    inflow = _triangle(24, 100.0, 4, 8)
    out, *_ = _route(inflow, 3600, length=100.0, slope=0.01, width=10.0)
    q_ref = 100.0 * 2 / 3
    c = (5 / 3) * 10.0**-0.4 * (math.sqrt(0.01) / N_MANNING) ** 0.6 * q_ref**0.4
    lag = 100.0 / c / 3600.0  # fraction of a step
    previous = np.concatenate([[0.0], inflow[:-1]])
    np.testing.assert_allclose(out[0], inflow - (inflow - previous) * lag, rtol=1e-12)


def test_flat_wide_reach_attenuates_and_delays_but_keeps_volume():
    inflow = _triangle(200, 500.0, 6, 12)
    out, _, n_sub, storage, clamped = _route(inflow, 1800, length=20_000.0, slope=0.0002,
                                             width=80.0)
    assert n_sub[0] >= 1
    assert out[0].max() < 0.97 * inflow.max()  # attenuated
    assert out[0].argmax() > inflow.argmax()  # delayed
    dt = np.full(200, 1800.0)
    v_in = trapezoid_volume(inflow[None, :], dt)[0]
    v_out = trapezoid_volume(out, dt)[0]
    assert abs(v_in - v_out - storage[0]) / v_in < 0.005
    assert clamped < 0.01 * v_in


def test_long_steps_stay_stable_and_non_negative():
    inflow = _triangle(40, 300.0, 2, 3)
    for dt in (600.0, 3600.0, 6 * 3600.0):
        out, _, _n_sub, _, _ = _route(inflow, dt, length=2000.0, slope=0.002, width=30.0)
        o = out[0]
        assert o.min() >= -0.01 * o.max()  # at most a small dip as the wave arrives
        # One rise, one fall: no oscillation after the peak.
        after = o[o.argmax():]
        assert np.all(np.diff(after) <= 1e-9 * o.max())
        assert o.max() <= inflow.max() * (1 + 1e-9)


def test_network_adds_tributaries_in_topological_order_and_conserves_mass():
    # Reaches 0 and 1 join into 2, which leaves the domain.
    n_t = 300
    lateral = np.zeros((3, n_t))
    lateral[0] = _triangle(n_t, 40.0, 3, 6)
    lateral[1] = _triangle(n_t, 25.0, 5, 10)
    lateral[2] = _triangle(n_t, 10.0, 2, 4)
    dt = np.full(n_t, 1800.0)
    out, inflow, _, storage, clamped = muskingum_cunge_network(
        lateral, dt, np.array([1, 0, 2]), np.array([2, 2, -1]), np.array([3000.0, 5000.0, 8000.0]),
        np.array([0.003, 0.002, 0.001]), np.array([15.0, 12.0, 25.0]), N_MANNING, 2 / 3, 8)
    np.testing.assert_allclose(inflow[2], lateral[2] + out[0] + out[1], rtol=1e-12)
    v_in = trapezoid_volume(lateral, dt).sum()
    v_out = trapezoid_volume(out[2:], dt)[0]
    assert abs(v_in - v_out - storage.sum()) / v_in < 0.005
    assert clamped < 0.01 * v_in
