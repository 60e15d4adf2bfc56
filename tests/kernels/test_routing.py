"""Linear reservoir, routing schedule, Muskingum-Cunge, translation, diffusion kernel, level
pools: worked values, analytic solutions and volume conservation."""

import math

import numpy as np
import pytest

from floodwarn.kernels.routing import (
    REGIME_DIFFUSION_KERNEL,
    REGIME_LEVEL_POOL,
    REGIME_MUSKINGUM_CUNGE,
    REGIME_PASS_THROUGH,
    REGIME_TRANSLATION,
    diffusion_wave_weights,
    linear_reservoir,
    route_network,
    routing_schedule,
)

N_MANNING = 0.035
OUTPUT_NAMES = ("outflow", "outflow_start", "lateral", "peak", "peak_time_s", "celerity",
                "diffusivity", "parts", "regime", "storage_start", "storage_end",
                "catchment_storage", "runoff_m3", "lateral_m3", "boundary_m3", "outlet_m3",
                "dip_m3", "pool_level", "pool_inflow", "pool_outflow", "pool_peak",
                "pool_storage_start", "pool_storage_end")


def rectangular_curves(n, width, slope, n_manning=N_MANNING, max_depth=20.0):
    """Rating tables of rectangular channels (discharge, area, top width at depths 0…), one
    row per reach; ``width`` and ``slope`` scalars or per reach."""
    y = np.linspace(0.0, max_depth, 401)[None, :]
    w = np.broadcast_to(np.asarray(width, np.float64), (n,))[:, None]
    s = np.broadcast_to(np.asarray(slope, np.float64), (n,))[:, None]
    area = w * y
    q = area * (area / (w + 2 * y)) ** (2 / 3) * np.sqrt(s) / n_manning
    def table(a):
        return np.ascontiguousarray(np.broadcast_to(a, (n, y.size)), dtype=np.float32)
    return table(q), table(area), table(np.broadcast_to(w, area.shape))


def route(*, downstream, length, slope, width, dt_s, n_steps, routing_step_s=600.0,
          runoff=None, lag_s=None, base=None, boundary=None, boundary_reach=None,
          pass_through=None, pools=None, share=0.5):
    """Run route_network on a small network; returns its outputs by name."""
    downstream = np.asarray(downstream, np.int64)
    n = downstream.size
    per_step = max(1, math.ceil(dt_s / routing_step_s))
    order, n_buffers = routing_schedule(downstream)
    q, a, t = rectangular_curves(n, width, slope)
    pool_of = np.full(n, -1, np.int64)
    if pools is None:
        levels = storage = outflow = np.zeros((0, 2))
        initial = np.zeros(0)
    else:
        levels, storage, outflow, initial, outlets = pools
        pool_of[np.asarray(outlets)] = np.arange(len(outlets))
    result = route_network(
        np.zeros((n, n_steps)) if runoff is None else np.asarray(runoff, np.float64),
        np.full(n, 1.0) if lag_s is None else np.asarray(lag_s, np.float64),
        np.zeros(n) if base is None else np.asarray(base, np.float64),
        dt_s / per_step, np.full(n_steps, per_step, np.int64), order, n_buffers, downstream,
        np.broadcast_to(np.asarray(length, np.float64), (n,)).copy(),
        np.broadcast_to(np.asarray(slope, np.float64), (n,)).copy(), q, a, t,
        np.zeros(n, bool) if pass_through is None else np.asarray(pass_through, bool),
        pool_of, levels, storage, outflow, initial,
        np.zeros(0, np.int64) if boundary_reach is None else np.asarray(boundary_reach),
        np.zeros((0, n_steps)) if boundary is None else np.atleast_2d(boundary), share)
    return dict(zip(OUTPUT_NAMES, result, strict=True))


def closure(out):
    """Relative volume balance of a routing run: (in + stored at start − out − stored at
    the end) / in."""
    supplied = out["lateral_m3"] + out["boundary_m3"]
    start = out["storage_start"].sum() + out["pool_storage_start"].sum()
    end = out["storage_end"].sum() + out["pool_storage_end"].sum()
    return (supplied + start - out["outlet_m3"] - end) / supplied


def test_linear_reservoir_matches_the_analytic_solution():
    k = 7200.0
    inflow = np.full((10, 1), 50.0)
    out, storage = linear_reservoir(inflow, np.array([k]), np.full(10, 3600.0))
    t = np.arange(1, 11) * 3600.0
    np.testing.assert_allclose(out[:, 0], 50.0 * (1 - np.exp(-t / k)), rtol=1e-12)
    # Continuity: inflow volume = outflow volume (exact integral) + storage.
    outflow_volume = 50.0 * t[-1] - k * out[-1, 0]
    assert storage[0] == pytest.approx(50.0 * t[-1] - outflow_volume)


def test_catchment_response_inside_the_router_is_the_linear_reservoir():
    # 10 m³/s of runoff for 3 h into a catchment of lag 2 h, hourly steps.
    runoff = np.zeros((1, 12))
    runoff[0, :3] = 10.0
    out = route(downstream=[-1], length=1000.0, slope=0.01, width=10.0, dt_s=3600.0,
                n_steps=12, runoff=runoff, lag_s=[7200.0])
    expected, storage = linear_reservoir(runoff.T.copy(), np.array([7200.0]),
                                         np.full(12, 3600.0))
    np.testing.assert_allclose(out["lateral"][0], expected[:, 0], rtol=1e-12)
    assert out["catchment_storage"][0] == pytest.approx(storage[0], rel=1e-12)
    assert out["runoff_m3"] == pytest.approx(10.0 * 3 * 3600.0)


def test_schedule_visits_every_reach_after_the_reaches_above_it_with_few_buffers():
    # A binary tree of 2^7 − 1 reaches: the worst case needs log2(64) + 1 = 7 buffers; a
    # chain of 1,000 reaches needs 1.
    n = 127
    downstream = np.array([(i - 1) // 2 for i in range(n)], np.int64)
    order, n_buffers = routing_schedule(downstream)
    position = np.empty(n, np.int64)
    position[order] = np.arange(n)
    assert sorted(order.tolist()) == list(range(n))
    assert all(position[i] < position[downstream[i]] for i in range(1, n))
    assert n_buffers == 7
    chain = np.arange(1, 1001, dtype=np.int64)
    chain[-1] = -1
    assert routing_schedule(chain)[1] == 1


def test_celerity_is_five_thirds_of_the_velocity_in_a_wide_rectangular_channel():
    # Steady 100 m³/s in a 40 m channel: Manning depth y, velocity v; kinematic c = dQ/dA.
    out = route(downstream=[-1], length=2000.0, slope=0.001, width=40.0, dt_s=3600.0,
                n_steps=6, base=[100.0], boundary=np.full((1, 6), 1e-6), boundary_reach=[0])
    y = 1.0
    for _ in range(60):  # Manning depth of 100 m³/s by fixed-point iteration
        y = (100.0 * N_MANNING / (40.0 * math.sqrt(0.001) * (40.0 * y / (40.0 + 2 * y))
                                   ** (2 / 3)))
    v = 100.0 / (40.0 * y)
    radius = 40.0 * y / (40.0 + 2 * y)
    # dQ/dA for a finite-width rectangle: v (5/3 − 4/3 · R/B).
    expected = v * (5 / 3 - 4 / 3 * radius / 40.0)
    assert out["celerity"][0] == pytest.approx(expected, rel=0.01)
    assert out["diffusivity"][0] == pytest.approx(100.0 / (2 * 40.0 * 0.001), rel=1e-6)


def test_short_fast_reach_translates_by_its_travel_time():
    # A 300 m reach with c ≈ 3 m/s is crossed in ~100 s, a sixth of a routing interval:
    # the hydrograph moves by K without the smoothing of re-interpolation.
    n_t = 48
    t = np.arange(1, n_t + 1) * 3600.0
    pulse = 200.0 * np.exp(-0.5 * ((t - 12 * 3600) / 3600.0) ** 2)
    out = route(downstream=[-1], length=300.0, slope=0.01, width=20.0, dt_s=3600.0,
                n_steps=n_t, base=[10.0], boundary=pulse[None, :], boundary_reach=[0])
    assert out["regime"][0] == REGIME_TRANSLATION
    lag = 300.0 / out["celerity"][0]
    inflow_then = np.interp(t - lag, np.concatenate([[0.0], t]),
                            np.concatenate([[pulse[0]], pulse])) + 10.0
    # Within the tiny physical spreading of 300 m (variance 2 D x / c³, well under a minute²).
    np.testing.assert_allclose(out["outflow"][0], inflow_then, atol=0.2)
    assert abs(closure(out)) < 1e-9


def test_diffusive_reach_uses_the_diffusion_wave_kernel_and_keeps_volume():
    n_t = 120
    t = np.arange(1, n_t + 1) * 3600.0
    pulse = 500.0 * np.exp(-0.5 * ((t - 10 * 3600) / 7200.0) ** 2)
    out = route(downstream=[-1], length=4000.0, slope=0.0002, width=80.0, dt_s=3600.0,
                n_steps=n_t, base=[50.0], boundary=pulse[None, :], boundary_reach=[0])
    assert out["regime"][0] == REGIME_DIFFUSION_KERNEL
    o = out["outflow"][0]
    assert o.max() < 50.0 + pulse.max()  # attenuated
    assert out["peak_time_s"][0] > t[pulse.argmax()] + 600  # delayed by the travel time
    assert o.min() >= 50.0 - 1e-9  # never below the base flow
    assert abs(closure(out)) < 1e-9


def test_diffusion_wave_weights_have_the_mean_and_variance_of_the_physics():
    x, c, d, dt = 2000.0, 1.5, 1800.0, 600.0
    w = diffusion_wave_weights(x, c, d, dt, 10_000)
    lags = np.arange(w.size) * dt
    mean = (w * lags).sum()
    variance = (w * (lags - mean) ** 2).sum()
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    assert w.min() >= 0.0
    assert mean == pytest.approx(x / c, rel=0.01)
    # The weights read the samples as linear between them (a hat of variance dt²/6) and
    # their kernel is narrowed by as much: the reach spreads the wave by the physics' variance.
    assert variance == pytest.approx(2 * d * x / c**3, rel=0.01)


def test_network_adds_tributaries_and_conserves_volume():
    # Reaches 0 and 1 join into 2, which leaves the domain; runoff from each catchment.
    n_t = 200
    runoff = np.zeros((3, n_t))
    runoff[0, 2:8] = 40.0
    runoff[1, 4:12] = 25.0
    runoff[2, 1:5] = 10.0
    out = route(downstream=[2, 2, -1], length=[3000.0, 5000.0, 8000.0],
                slope=[0.003, 0.002, 0.001], width=[15.0, 12.0, 25.0], dt_s=1800.0,
                n_steps=n_t, runoff=runoff, lag_s=[3600.0, 5400.0, 1800.0],
                base=[1.0, 2.0, 0.5])
    assert out["outflow_start"][2] == pytest.approx(3.5)  # the steady base flow
    assert abs(closure(out)) < 1e-6
    assert out["dip_m3"] < 1e-6 * out["lateral_m3"]


def test_a_lake_inside_passes_water_on_and_a_level_pool_stores_it():
    # Reach 0 lies in a lake whose outlet is reach 1: 30 km² of water over 10 m, outflow
    # rising from 0 at 100 m to 300 m³/s at 102 m.
    n_t = 96
    runoff = np.zeros((2, n_t))
    runoff[0, :24] = 200.0
    levels = np.array([[100.0, 102.0, 110.0]])
    storage = np.array([[0.0, 60e6, 300e6]])
    outflow = np.array([[0.0, 300.0, 3000.0]])
    out = route(downstream=[1, -1], length=2000.0, slope=0.001, width=20.0, dt_s=3600.0,
                n_steps=n_t, runoff=runoff, lag_s=[1.0, 1.0], pass_through=[True, False],
                pools=(levels, storage, outflow, np.array([100.0]), [1]))
    assert out["regime"][0] == REGIME_PASS_THROUGH
    assert out["regime"][1] == REGIME_LEVEL_POOL
    assert out["pool_outflow"][0].max() < 200.0  # the lake attenuates the inflow
    peak = out["pool_peak"][0]
    # At the peak, outflow equals inflow (storage stops rising) — after the inflow stops.
    assert 100.0 < peak < 102.0
    assert np.argmax(out["pool_level"][0]) >= 23
    assert abs(closure(out)) < 1e-9


def test_level_pool_matches_the_analytic_linear_reservoir():
    # Constant area A and outflow proportional to the level: a linear reservoir of constant
    # K = A/k; a steady inflow fills it as I (1 − e^(−t/K)).
    area_m2, k = 10e6, 50.0  # 50 m³/s per m of level
    levels = np.array([[0.0, 10.0]])
    storage = levels * area_m2
    outflow = levels * k
    n_t = 48
    boundary = np.full((1, n_t), 100.0)
    out = route(downstream=[-1], length=1000.0, slope=0.001, width=10.0, dt_s=3600.0,
                n_steps=n_t, boundary=boundary, boundary_reach=[0],
                pools=(levels, storage, outflow, np.array([0.0]), [0]))
    t = np.arange(1, n_t + 1) * 3600.0
    expected = 100.0 * (1 - np.exp(-t / (area_m2 / k)))
    # Modified Puls is the trapezoidal rule: second order in the 10-min routing interval.
    np.testing.assert_allclose(out["pool_outflow"][0], expected, rtol=2e-3, atol=0.05)


@pytest.mark.parametrize("dt_s", [600.0, 3600.0, 6 * 3600.0])
def test_long_steps_stay_stable_and_non_negative(dt_s):
    n_t = 40
    t = np.arange(1, n_t + 1) * dt_s
    tri = np.clip(np.minimum(t / (2 * dt_s), (5 * dt_s - t) / (3 * dt_s)), 0, None) * 300.0
    out = route(downstream=[-1], length=2000.0, slope=0.002, width=30.0, dt_s=dt_s,
                n_steps=n_t, boundary=tri[None, :], boundary_reach=[0])
    o = out["outflow"][0]
    assert o.min() >= -0.01 * o.max()
    after = o[o.argmax():]
    assert np.all(np.diff(after) <= 1e-6 * o.max())  # one rise, one fall
    assert o.max() <= tri.max() * (1 + 1e-9)
    assert out["regime"][0] in (REGIME_MUSKINGUM_CUNGE, REGIME_TRANSLATION,
                                REGIME_DIFFUSION_KERNEL)
