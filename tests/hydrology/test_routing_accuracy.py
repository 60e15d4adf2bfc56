"""Routing against the analytic diffusion-wave solution (Hayami 1951) on a uniform channel.

A Gaussian flood pulse enters a 100 km channel of fifty 2 km reaches (the terrain's default
reach length) at the operational steps, hourly and 10-minute. The analytic outflow convolves
the inflow — as the model reads it, linear between step ends — with the first-passage kernel
of every reach at the celerity and diffusivity the routing itself used: what is checked is
the numerics, not the choice of parameters (tested in tests/kernels/test_routing.py against
Manning). Peak within 5 % of the rise, time of peak within one step, volume to 1e-6.
"""

import numpy as np
import pytest

from floodwarn.hydrology.diffusion_wave import first_passage_cdf, route_analytic
from tests.kernels.test_routing import closure, route

BASE_M3S = 20.0
RISE_M3S = 200.0
N_REACHES = 50
REACH_M = 2000.0
WIDTH_M = 40.0
HOURS = 96


def routed_and_analytic(slope: float, sigma_h: float, dt_s: float):
    n_t = int(HOURS * 3600 / dt_s)
    t_end = np.arange(1, n_t + 1) * dt_s
    pulse = RISE_M3S * np.exp(-0.5 * ((t_end - 12 * 3600.0) / (sigma_h * 3600.0)) ** 2)
    downstream = np.arange(1, N_REACHES + 1)
    downstream[-1] = -1
    base = np.zeros(N_REACHES)
    base[0] = BASE_M3S
    out = route(downstream=downstream, length=REACH_M, slope=slope, width=WIDTH_M,
                dt_s=dt_s, n_steps=n_t, base=base, boundary=pulse[None, :],
                boundary_reach=[0])
    fine = 10.0  # s
    t = np.arange(0.0, HOURS * 3600.0 + fine, fine)
    inflow = BASE_M3S + np.interp(t, np.concatenate([[0.0], t_end]),
                                  np.concatenate([[pulse[0]], pulse]))
    analytic = route_analytic(inflow, fine, base_m3s=BASE_M3S,
                              distance_m=np.full(N_REACHES, REACH_M),
                              celerity_m_s=out["celerity"], diffusivity_m2_s=out["diffusivity"])
    return out, t, analytic


@pytest.mark.parametrize("dt_s", [3600.0, 600.0], ids=["hourly", "10-minute"])
@pytest.mark.parametrize("sigma_h", [1.0, 4.0], ids=["pulse-1h", "pulse-4h"])
@pytest.mark.parametrize("slope", [0.01, 0.0005], ids=["steep", "lowland"])
def test_flood_pulse_matches_the_analytic_diffusion_wave(slope, sigma_h, dt_s):
    out, t, analytic = routed_and_analytic(slope, sigma_h, dt_s)
    last = N_REACHES - 1
    peak, peak_time = out["peak"][last], out["peak_time_s"][last]
    expected, expected_time = analytic.max(), t[analytic.argmax()]
    assert abs(peak - expected) <= 0.05 * (expected - BASE_M3S), (peak, expected)
    assert abs(peak_time - expected_time) <= dt_s, (peak_time / 3600, expected_time / 3600)
    # The pulse has left the channel by the end: volume in = volume out + what the channel
    # holds, to 1e-6.
    assert abs(closure(out)) < 1e-6


def test_the_analytic_kernel_is_the_inverse_gaussian():
    # Mean x/c and variance 2Dx/c³ of the first-passage time (Hayami 1951).
    x, c, d = 5000.0, 2.0, 500.0
    t = np.linspace(0.0, 20_000.0, 200_001)
    cdf = first_passage_cdf(t, distance_m=x, celerity_m_s=c, diffusivity_m2_s=d)
    density = np.diff(cdf)
    mid = 0.5 * (t[1:] + t[:-1])
    mean = (density * mid).sum()
    assert cdf[-1] == pytest.approx(1.0, abs=1e-9)
    assert mean == pytest.approx(x / c, rel=1e-4)
    assert (density * (mid - mean) ** 2).sum() == pytest.approx(2 * d * x / c**3, rel=1e-3)


def test_steep_channels_lose_little_of_a_short_pulse():
    # The physics of a steep channel barely attenuates a 1-hour pulse over 100 km; the old
    # scheme's re-interpolation lost 19-21 % of it (issue 10).
    out, _, analytic = routed_and_analytic(0.01, 1.0, 600.0)
    physical_loss = 1 - (analytic.max() - BASE_M3S) / RISE_M3S
    routed_loss = 1 - (out["peak"][N_REACHES - 1] - BASE_M3S) / RISE_M3S
    assert physical_loss < 0.03
    assert routed_loss < physical_loss + 0.02
