"""Cell-level kernels of the HAND inundation model: rating-curve sums and flooding times."""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from floodwarn.kernels.slope import squared_slope


@njit(cache=True)
def rating_curve_sums(hand: np.ndarray, catchment: np.ndarray, z: np.ndarray, cellsize: float,
                      stage_step: float, n_stages: int, n_reaches: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per reach and stage bin: cells, their summed HAND, and their summed bed-area factor.

    A cell of HAND h is first under water at stage level k = floor(h / stage_step) + 1 (stage
    levels k·stage_step, k = 0…n_stages − 1); cells above the top level are left out. The bed
    factor √(1 + s²) turns a cell's plan area into its sloping bed area (s = |∇z|, central
    differences, one-sided at edges and nodata).

    Returns (count, hand_sum, bed_factor_sum), each (n_reaches, n_stages), row = reach id − 1.

    References
    ----------
    Zheng, X., Tarboton, D.G., Maidment, D.R., Liu, Y.Y. & Passalacqua, P. (2018) River channel
    geometry and rating curve estimation using height above the nearest drainage. JAWRA 54(4),
    785-806.
    """
    nr, nc = hand.shape
    count = np.zeros((n_reaches, n_stages), np.float64)
    hand_sum = np.zeros((n_reaches, n_stages), np.float64)
    bed_sum = np.zeros((n_reaches, n_stages), np.float64)
    for r in range(nr):
        for c in range(nc):
            reach = catchment[r, c]
            h = hand[r, c]
            if reach <= 0 or math.isnan(h):
                continue
            k = int(h / stage_step) + 1
            if k >= n_stages:
                continue
            count[reach - 1, k] += 1.0
            hand_sum[reach - 1, k] += h
            bed_sum[reach - 1, k] += math.sqrt(1.0 + squared_slope(z, r, c, cellsize))
    return count, hand_sum, bed_sum


@njit(cache=True, parallel=True)
def depth_and_first_flooding(hand: np.ndarray, catchment: np.ndarray, water: np.ndarray,
                             stage_m: np.ndarray, step_end_h: np.ndarray
                             ) -> tuple[np.ndarray, np.ndarray]:
    """Peak flood depth on land and the time a land cell first goes under water.

    ``stage_m`` (n_reaches, n_t) is each reach's overbank stage (m above the DEM's drainage,
    HAND = 0; ≤ 0 while the river stays in its channel) at the end of each step; depth is
    max(stage) − HAND where positive; the first flooding time is the first step end (h, from
    ``step_end_h``) at which the reach's stage exceeds the cell's HAND. ``water`` marks the
    river channels and lakes: their water is the river, not a flood, so they get NaN (as do
    cells outside every catchment or without HAND); dry land gets depth 0 and time NaN.

    References
    ----------
    Nobre, A.D. et al. (2016) HAND contour: a new proxy predictor of inundation extent.
    Hydrological Processes 30, 320-333 (depth = stage − HAND within the reach catchment).
    Zheng, X. et al. (2018) JAWRA 54(4), 785-806 (channel cells apart from the floodplain).
    """
    nr, nc = hand.shape
    n_t = stage_m.shape[1]
    peak = np.empty(stage_m.shape[0], np.float64)
    for j in range(stage_m.shape[0]):
        m = 0.0
        for t in range(n_t):
            m = max(m, stage_m[j, t])
        peak[j] = m
    depth = np.empty((nr, nc), np.float32)
    first = np.empty((nr, nc), np.float32)
    for r in prange(nr):
        for c in range(nc):
            reach = catchment[r, c]
            h = hand[r, c]
            if reach <= 0 or math.isnan(h) or water[r, c]:
                depth[r, c] = np.nan
                first[r, c] = np.nan
                continue
            d = peak[reach - 1] - h
            if d <= 0.0:
                depth[r, c] = 0.0
                first[r, c] = np.nan
                continue
            depth[r, c] = d
            for t in range(n_t):
                if stage_m[reach - 1, t] > h:
                    first[r, c] = step_end_h[t]
                    break
    return depth, first


@njit(cache=True, parallel=True)
def interpolate_levels(curve_q: np.ndarray, levels: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Invert each reach's rating curve: its level (e.g. depth, m) for discharges ``q``
    (n_reaches, n_t).

    ``curve_q`` and ``levels`` (n_reaches, K, float32 or float64) never decrease along a row.
    Linear interpolation between the bracketing levels (binary search); the first level for
    q ≤ the curve's first discharge; the top level above the top of the curve.
    """
    n, n_t = q.shape
    k_top = levels.shape[1] - 1
    out = np.empty((n, n_t), np.float64)
    for j in prange(n):
        for t in range(n_t):
            qq = q[j, t]
            if qq <= curve_q[j, 0]:
                out[j, t] = levels[j, 0]
                continue
            if qq >= curve_q[j, k_top]:
                out[j, t] = levels[j, k_top]
                continue
            lo = 0
            hi = k_top  # curve_q[j, hi] > qq ≥ curve_q[j, lo]
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if curve_q[j, mid] > qq:
                    hi = mid
                else:
                    lo = mid
            span = curve_q[j, hi] - curve_q[j, lo]
            frac = (qq - curve_q[j, lo]) / span if span > 0.0 else 0.0
            out[j, t] = levels[j, lo] + frac * (levels[j, hi] - levels[j, lo])
    return out
