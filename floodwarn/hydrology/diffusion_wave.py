"""The analytic solution of the linear diffusion wave: a reference for channel routing.

On a channel of constant celerity c and hydraulic diffusivity D, a discharge perturbation
obeys ∂Q/∂t + c ∂Q/∂x = D ∂²Q/∂x²; for an inflow hydrograph I(t) at x = 0 (above a steady
base flow) the outflow at distance x is I convolved with the first-passage density

    h(x, t) = x / √(4π D t³) · exp(−(x − c t)² / (4 D t))

(Hayami 1951), an inverse-Gaussian distribution of mean x/c and variance 2Dx/c³. A chain of
reaches with their own (c, D, x) convolves their kernels in turn. Routing schemes are checked
against this (floodwarn's tests and ``benchmarks/plausibility.py``).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve
from scipy.special import log_ndtr


def first_passage_cdf(t_s: np.ndarray, *, distance_m: float, celerity_m_s: float,
                      diffusivity_m2_s: float) -> np.ndarray:
    """Share of an impulse that has passed ``distance_m`` by times ``t_s`` (s), the CDF of
    the inverse Gaussian: Φ((ct − x)/√(2Dt)) + e^(cx/D) Φ(−(ct + x)/√(2Dt)).

    References
    ----------
    Hayami, S. (1951) On the propagation of flood waves. Disaster Prevention Research
    Institute, Kyoto University, Bulletin 1, 1-16.
    Chhikara, R.S. & Folks, J.L. (1989) The Inverse Gaussian Distribution, Dekker, eq. 2.3.
    """
    t = np.maximum(np.asarray(t_s, np.float64), 1e-12)
    x, c, d = float(distance_m), float(celerity_m_s), float(diffusivity_m2_s)
    spread = np.sqrt(2.0 * d * t)
    first = np.exp(log_ndtr((c * t - x) / spread))
    # e^(cx/D)·Φ(−z) in log space: both factors overflow or underflow on steep channels.
    second = np.exp(c * x / d + log_ndtr(-(c * t + x) / spread))
    return np.where(np.asarray(t_s) > 0, np.clip(first + second, 0.0, 1.0), 0.0)


def route_analytic(inflow_m3s: np.ndarray, dt_s: float, *, base_m3s: float,
                   distance_m: np.ndarray, celerity_m_s: np.ndarray,
                   diffusivity_m2_s: np.ndarray) -> np.ndarray:
    """Outflow (m³/s) of a chain of reaches for an inflow sampled every ``dt_s`` seconds
    (linear between samples, the base flow before the first), by convolving the
    perturbation above ``base_m3s`` with each reach's first-passage kernel in turn.

    ``dt_s`` should be small against the kernels' spread (e.g. 10-30 s): the weight of each
    lag is the exact share of an impulse passing within half a step of it (differences of
    :func:`first_passage_cdf`), so volume is conserved whatever the step.
    """
    q = np.asarray(inflow_m3s, np.float64) - float(base_m3s)
    n = q.size
    # Lag k collects the mass passing within half a step of k·dt: centred, so a chain of
    # many convolutions is not shifted by half a step each.
    t_edges = (np.arange(n + 1) - 0.5).clip(0.0) * float(dt_s)
    for x, c, d in zip(np.atleast_1d(distance_m), np.atleast_1d(celerity_m_s),
                       np.atleast_1d(diffusivity_m2_s), strict=True):
        weights = np.diff(first_passage_cdf(t_edges, distance_m=x, celerity_m_s=c,
                                            diffusivity_m2_s=d))
        q = fftconvolve(q, weights)[:n]
    return q + float(base_m3s)
