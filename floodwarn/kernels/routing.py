"""Catchment response and channel routing on a reach graph: linear reservoirs, Muskingum-Cunge
with parameters from each reach's compound section, and level pools (reservoirs, lakes).

Time convention: a forecast has ``n_t`` steps; a series of ``n_t`` values holds the state at
the end of each step. Inside :func:`route_network` every step is cut into ``substeps[t]``
equal routing intervals (about 10 minutes): hydrographs pass from reach to reach at that
resolution, so a short flood pulse is not smoothed away by re-sampling at every reach.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: Reach regimes reported by :func:`route_network`.
REGIME_DRY = 0
REGIME_MUSKINGUM_CUNGE = 1
REGIME_PASS_THROUGH = 2
REGIME_LEVEL_POOL = 3
REGIME_TRANSLATION = 4
REGIME_DIFFUSION_KERNEL = 5


@njit(cache=True, nogil=True)
def linear_reservoir(inflow_m3s: np.ndarray, k_s: np.ndarray, dt_s: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Outflow of linear reservoirs fed by a step-wise constant inflow; exact integration.

    dS/dt = I − O, S = K·O  ⇒  O(t+Δt) = O(t)·e^(−Δt/K) + I·(1 − e^(−Δt/K)).

    Parameters
    ----------
    inflow_m3s : (n_t, n) inflow rate during each step, m³/s.
    k_s : (n,) storage constants, s (> 0).
    dt_s : (n_t,) step lengths, s.

    Returns
    -------
    (outflow at step ends (n_t, n) m³/s, storage at the end (n,) m³).

    References
    ----------
    Nash, J.E. (1957) The form of the instantaneous unit hydrograph. IAHS Publ. 45, 114-121
    (one linear reservoir: the n = 1 Nash cascade).
    Chow, V.T., Maidment, D.R. & Mays, L.W. (1988) Applied Hydrology, §8.5 (linear reservoir).
    """
    n_t, n = inflow_m3s.shape
    out = np.empty((n_t, n), np.float64)
    decay = np.empty(n, np.float64)
    o = np.zeros(n, np.float64)
    dt_prev = -1.0
    for t in range(n_t):  # time outside, reservoirs inside: rows are read and written in order
        if dt_s[t] != dt_prev:  # steps are usually equal: one exp per reservoir, not per step
            dt_prev = dt_s[t]
            for j in range(n):
                decay[j] = math.exp(-dt_prev / k_s[j])
        for j in range(n):
            o[j] = o[j] * decay[j] + inflow_m3s[t, j] * (1.0 - decay[j])
            out[t, j] = o[j]
    storage = np.empty(n, np.float64)
    for j in range(n):
        storage[j] = k_s[j] * out[n_t - 1, j]
    return out, storage


@njit(cache=True)
def routing_schedule(downstream: np.ndarray) -> tuple[np.ndarray, int]:
    """The order :func:`route_network` visits reaches in, and how many hydrograph buffers
    that order needs.

    The order is a depth-first post-order of each river tree from its outlet, visiting the
    upstream subtree that needs most buffers first. A reach inherits the buffer of its first
    finished upstream reach and adds the others into it, so a tree needs
    ``need(r) = max(need(c₁), need(c₂) + 1)`` buffers (c₁, c₂ its two neediest upstream
    reaches; 1 for a source): at most ⌊log₂ n⌋ + 1, whatever the number of reaches — the
    register-allocation count of expression trees, which on river networks is the Horton-
    Strahler order.

    ``downstream`` (n,) holds 0-based indices, −1 at outlets. Returns (order (n,) 0-based,
    buffers needed).

    References
    ----------
    Ershov, A.P. (1958) On programming of arithmetic operations. Comm. ACM 1(8), 3-6.
    Strahler, A.N. (1957) Quantitative analysis of watershed geomorphology. Trans. AGU 38(6).
    """
    n = downstream.shape[0]
    n_up = np.zeros(n, np.int64)
    for r in range(n):
        if downstream[r] >= 0:
            n_up[downstream[r]] += 1
    start = np.zeros(n + 1, np.int64)
    for r in range(n):
        start[r + 1] = start[r] + n_up[r]
    upstream = np.empty(start[n], np.int64)
    fill = start[:n].copy()
    for r in range(n):
        d = downstream[r]
        if d >= 0:
            upstream[fill[d]] = r
            fill[d] += 1
    # Buffers needed, sources first (Kahn's order on the reversed edges).
    need = np.zeros(n, np.int64)
    waiting = n_up.copy()
    queue = np.empty(n, np.int64)
    tail = 0
    for r in range(n):
        if waiting[r] == 0:
            queue[tail] = r
            tail += 1
    head = 0
    while head < tail:
        r = queue[head]
        head += 1
        first = 0
        second = 0
        for k in range(start[r], start[r + 1]):
            v = need[upstream[k]]
            if v > first:
                second = first
                first = v
            elif v > second:
                second = v
        need[r] = max(1, first, second + 1)
        d = downstream[r]
        if d >= 0:
            waiting[d] -= 1
            if waiting[d] == 0:
                queue[tail] = d
                tail += 1
    # Upstream reaches of each reach, neediest first.
    for r in range(n):
        segment = upstream[start[r]:start[r + 1]]
        keys = np.empty(segment.shape[0], np.int64)
        for k in range(segment.shape[0]):
            keys[k] = -need[segment[k]]
        upstream[start[r]:start[r + 1]] = segment[np.argsort(keys, kind="mergesort")]
    order = np.empty(n, np.int64)
    n_out = 0
    stack = np.empty(n, np.int64)
    position = np.zeros(n, np.int64)
    n_buffers = 1
    for root in range(n):
        if downstream[root] >= 0:
            continue
        n_buffers = max(n_buffers, need[root])
        top = 0
        stack[0] = root
        position[root] = start[root]
        while top >= 0:
            r = stack[top]
            if position[r] < start[r + 1]:
                child = upstream[position[r]]
                position[r] += 1
                top += 1
                stack[top] = child
                position[child] = start[child]
            else:
                order[n_out] = r
                n_out += 1
                top -= 1
    return order[:n_out].copy(), n_buffers


@njit(cache=True, inline="always")
def _section_at(q: float, curve_q: np.ndarray, curve_area: np.ndarray, curve_top: np.ndarray
                ) -> tuple[float, float]:
    """Kinematic celerity dQ/dA (m/s) and top width (m) of a compound section at discharge q,
    from the secant of the rating curve across the levels that bracket q."""
    k_top = curve_q.shape[0] - 1
    lo = 0
    while lo < k_top and curve_q[lo + 1] < q:
        lo += 1
    hi = lo + 1
    while hi < k_top and curve_q[hi] <= q:
        hi += 1
    if hi > k_top:
        hi = k_top
    while lo > 0 and curve_q[hi] <= curve_q[lo]:
        lo -= 1
    d_q = float(curve_q[hi]) - float(curve_q[lo])
    d_a = float(curve_area[hi]) - float(curve_area[lo])
    celerity = d_q / d_a if d_a > 0.0 and d_q > 0.0 else 0.0
    span = d_q
    frac = (q - float(curve_q[lo])) / span if span > 0.0 else 1.0
    frac = min(max(frac, 0.0), 1.0)
    top = float(curve_top[lo]) + frac * (float(curve_top[hi]) - float(curve_top[lo]))
    return celerity, top


@njit(cache=True, inline="always")
def _parts(courant: float, diffusion: float, max_parts: int) -> int:
    """Sub-reaches that bring the Muskingum-Cunge coefficients closest to non-negative: the
    Courant number per sub-reach C·p within [1 − D·p, 1 + D·p] (C0 ≥ 0, C2 ≥ 0), the fewest
    sub-reaches among those within 0.1 of the smallest miss."""
    best_miss = 1e300
    for p in range(1, max_parts + 1):
        c_p = courant * p
        d_p = diffusion * p
        best_miss = min(best_miss, max(0.0, (1.0 - d_p) - c_p, c_p - (1.0 + d_p)))
    for p in range(1, max_parts + 1):
        c_p = courant * p
        d_p = diffusion * p
        if max(0.0, (1.0 - d_p) - c_p, c_p - (1.0 + d_p)) <= best_miss + 0.1:
            return p
    return 1


@njit(cache=True, inline="always")
def _pool_state(g_target: float, dt: float, levels: np.ndarray, storage: np.ndarray,
                outflow: np.ndarray) -> tuple[float, float, float]:
    """Level, storage and outflow of a level pool where 2S/Δt + O = ``g_target`` (storage and
    outflow linear in level between table rows, the end rows' slopes beyond the table,
    outflow never below 0). Returns (level, storage m³, outflow m³/s)."""
    n = levels.shape[0]
    k = 0
    while k < n - 2 and 2.0 * storage[k + 1] / dt + outflow[k + 1] <= g_target:
        k += 1
    g0 = 2.0 * storage[k] / dt + outflow[k]
    g1 = 2.0 * storage[k + 1] / dt + outflow[k + 1]
    frac = (g_target - g0) / (g1 - g0)
    o = outflow[k] + frac * (outflow[k + 1] - outflow[k])
    if o < 0.0:  # below the table's first row: the outlet is dry, the pool only fills
        s = 0.5 * g_target * dt
        slope = (storage[1] - storage[0]) / (levels[1] - levels[0])
        return levels[0] + (s - storage[0]) / slope, s, 0.0
    s = storage[k] + frac * (storage[k + 1] - storage[k])
    return levels[k] + frac * (levels[k + 1] - levels[k]), s, o


@njit(cache=True, inline="always")
def _pool_at_level(level: float, levels: np.ndarray, storage: np.ndarray, outflow: np.ndarray
                   ) -> tuple[float, float]:
    """Storage (m³) and outflow (m³/s) of a level pool at ``level`` (linear in the table)."""
    n = levels.shape[0]
    k = 0
    while k < n - 2 and levels[k + 1] <= level:
        k += 1
    frac = (level - levels[k]) / (levels[k + 1] - levels[k])
    o = max(0.0, outflow[k] + frac * (outflow[k + 1] - outflow[k]))
    return storage[k] + frac * (storage[k + 1] - storage[k]), o


@njit(cache=True, inline="always")
def _first_passage_cdf(t: float, x: float, c: float, d: float) -> float:
    """Share of an impulse that has travelled ``x`` m by time ``t`` s on a diffusion wave of
    celerity ``c`` and diffusivity ``d``: Φ((ct − x)/√(2dt)) + e^(cx/d)·Φ(−(ct + x)/√(2dt))
    (inverse-Gaussian CDF; Hayami 1951)."""
    if t <= 0.0:
        return 0.0
    root = math.sqrt(4.0 * d * t)
    first = 0.5 * math.erfc(-(c * t - x) / root)
    b = (c * t + x) / root
    a = c * x / d
    if a < 600.0:
        second = 0.5 * math.exp(a) * math.erfc(b)
    else:  # e^a·erfc(b) = e^(a − b²)·erfcx(b), erfcx(b) ≈ 1/(b√π) for the large b here
        second = 0.5 * math.exp(a - b * b) / (b * math.sqrt(math.pi))
    return min(1.0, first + second)


@njit(cache=True)
def diffusion_wave_weights(distance_m: float, celerity: float, diffusivity: float,
                           dt: float, max_lags: int) -> np.ndarray:
    """Weights w_k of the diffusion-wave response of a reach on a grid of step ``dt``, for an
    inflow linear between samples: O_j = Σ_k w_k I_(j−k), w_k = ∫ h(s) Λ(s/dt − k) ds, with h
    the first-passage density (:func:`_first_passage_cdf`) and Λ the unit hat function
    (midpoint rule on 4 sub-intervals per step).

    Reading samples as linear between them spreads a hydrograph by the hat's variance dt²/6
    at every reach; the kernel's diffusivity is lowered to take it back, as Cunge (1969)
    matched Muskingum's numerical diffusion to the physical one, so mean and variance of the
    response are the diffusion wave's (the caller keeps the physical variance above dt²/6).
    The weights sum to 1 (the reach conserves volume): the mass beyond the last lag
    (< 1e-7, or what lies beyond ``max_lags``) is put on it.

    References
    ----------
    Hayami, S. (1951) Bull. Disaster Prevention Research Institute, Kyoto University 1, 1-16.
    Lohmann, D., Nolte-Holube, R. & Raschke, E. (1996) A large-scale horizontal routing model
    to be coupled to land surface parametrization schemes. Tellus 48A, 708-721 (impulse
    response routing with the linearised Saint-Venant equation).
    Cunge, J.A. (1969) Journal of Hydraulic Research 7(2), 205-230.
    """
    c = celerity
    d = max(diffusivity - c ** 3 * dt * dt / (12.0 * distance_m), 1e-3 * diffusivity)
    mean = distance_m / c
    spread = math.sqrt(2.0 * d * distance_m / c ** 3)
    n_lags = math.ceil((mean + 12.0 * spread) / dt) + 2
    while n_lags < max_lags and _first_passage_cdf(n_lags * dt, distance_m, c, d) < 1.0 - 1e-7:
        n_lags = min(max_lags, n_lags * 2)
    w = np.zeros(n_lags + 1, np.float64)
    sub = 4
    previous = 0.0
    for i in range(n_lags * sub):
        now = _first_passage_cdf((i + 1) * dt / sub, distance_m, c, d)
        mass = now - previous
        previous = now
        mid = (i + 0.5) / sub
        k = int(mid)
        frac = mid - k
        w[k] += mass * (1.0 - frac)
        w[k + 1] += mass * frac
    w[n_lags] += 1.0 - previous
    return w


@njit(cache=True, inline="always")
def _value_at(start: float, buf: np.ndarray, phase: float, n_fine: int, x: float) -> float:
    """Value at time x (routing intervals from the start) of a hydrograph that is ``start``
    at time 0 and ``buf[j]`` at (j + phase), j = 0…n_fine, linear in between (steady
    before time 0)."""
    u = x - phase
    if u <= 0.0:
        if x <= 0.0 or phase <= 0.0:
            return start if x <= 0.0 else buf[0]
        return start + (buf[0] - start) * x / phase
    i = int(u)  # u > 0: truncation is the floor
    if i >= n_fine:
        return buf[n_fine]
    frac = u - i
    return buf[i] + frac * (buf[i + 1] - buf[i])


@njit(cache=True, inline="always")
def _integral(start: float, buf: np.ndarray, phase: float, n_fine: int) -> float:
    """∫ from 0 to n_fine (in routing intervals) of the hydrograph of :func:`_value_at`."""
    total = 0.5 * phase * (start + buf[0])
    for j in range(n_fine - 1):
        total += 0.5 * (buf[j] + buf[j + 1])
    rest = 1.0 - phase
    end = buf[n_fine - 1] + rest * (buf[n_fine] - buf[n_fine - 1])
    return total + 0.5 * rest * (buf[n_fine - 1] + end)


@njit(cache=True, inline="always")
def _to_phase_zero(start: float, buf: np.ndarray, phase: float, n_fine: int) -> None:
    """Resample, in place, a hydrograph sampled at (j + phase) onto the times j."""
    if phase == 0.0:
        return
    for j in range(n_fine, 0, -1):  # sample j lies between old samples j − 1 and j
        buf[j] = buf[j - 1] + (1.0 - phase) * (buf[j] - buf[j - 1])
    buf[0] = start


@njit(cache=True, inline="always")
def _muskingum_coefficients(courant: float, reynolds: float) -> tuple[float, float, float]:
    inv = 1.0 / (1.0 + courant + reynolds)
    return ((-1.0 + courant + reynolds) * inv, (1.0 + courant - reynolds) * inv,
            (1.0 - courant + reynolds) * inv)


@njit(cache=True, nogil=True)
def route_network(
    runoff_m3s: np.ndarray,
    lag_s: np.ndarray,
    base_m3s: np.ndarray,
    dt_fine_s: float,
    fine_per_step: np.ndarray,
    order: np.ndarray,
    n_buffers: int,
    downstream: np.ndarray,
    length_m: np.ndarray,
    slope: np.ndarray,
    curve_q: np.ndarray,
    curve_area: np.ndarray,
    curve_top: np.ndarray,
    pass_through: np.ndarray,
    pool_of_reach: np.ndarray,
    pool_levels: np.ndarray,
    pool_storage_m3: np.ndarray,
    pool_outflow_m3s: np.ndarray,
    pool_initial_level: np.ndarray,
    boundary_reach: np.ndarray,
    boundary_m3s: np.ndarray,
    reference_flow_share: float,
    max_parts: int = 16,
):  # -> tuple (see Returns); numba infers it
    """Catchment response and routing of one rainfall member over a reach graph.

    Hydrographs pass from reach to reach sampled every ``dt_fine_s`` (the routing interval,
    about 10 min; every forecast step holds ``fine_per_step[t]`` of them). Each reach's
    catchment turns its runoff (a constant rate during each forecast step) into lateral
    inflow through a linear reservoir of constant ``lag_s`` (exact exponential solution),
    adds its base flow and any boundary inflow, and feeds them with the outflow of the
    reaches above into the reach's upstream end. The network starts in the steady state of
    its base flow, the water bodies at their initial levels. A reach is then routed as:

    - **channel**, Muskingum-Cunge with constant parameters (volume-conservative; Ponce 1989
      §9.4) from a reference discharge Q_ref = Q_base + share·(Q_peak − Q_base) of its
      inflow: kinematic celerity c = dQ/dA and top width T of the reach's compound section
      at Q_ref (the rating curve ``curve_q``, ``curve_area``, ``curve_top``), hydraulic
      diffusivity D_h = Q_ref/(2 T S). With Courant number C = cΔt/Δx and cell Reynolds
      number D = 2 D_h/(cΔx),

        C0 = (−1 + C + D)/(1 + C + D), C1 = (1 + C − D)/(1 + C + D), C2 = (1 − C + D)/(1 + C + D)

      (Cunge 1969), over ``p`` equal sub-reaches in series when C + D < 1, so that C0 ≥ 0.
      Its numerical diffusion then equals the physical one (Cunge 1969).
    - **short fast channel** (crossed in less than a routing interval, C > 1.5 + D, where
      Muskingum's C2 < 0 would ring): exact translation by the travel time K = Δx/c — the
      hydrograph's samples keep their values and move in time by K, so a chain of such
      reaches adds no numerical diffusion — plus the physical spreading as a three-point
      diffusion of the same variance 2 D_h Δx / c³ (Hayami 1951). Each hydrograph carries the
      phase of its samples; only where two meet, at a confluence, is the smaller one
      re-sampled (linearly) onto the other's times.
    - **pass-through**, inside a lake: outflow = inflow (the lake routes it at its outlet).
    - **level pool**, the outlet reach of a reservoir or lake: modified Puls,
      (2S/Δt + O)ₜ₊₁ = Iₜ + Iₜ₊₁ + (2S/Δt − O)ₜ, with storage and outflow tabulated against
      level (USACE 1994; Chow, Maidment & Mays 1988 §8.2).

    Reaches are visited in ``order`` (:func:`routing_schedule`), each hydrograph held in one
    of ``n_buffers`` buffers, so memory does not grow with the number of reaches.

    Parameters
    ----------
    runoff_m3s : (n, n_t) runoff into each catchment during each step, m³/s.
    lag_s : (n,) catchment linear-reservoir constants, s (> 0).
    base_m3s : (n,) base flow entering each reach, m³/s.
    dt_fine_s : routing interval, s; fine_per_step : (n_t,) intervals per forecast step.
    order : (n,) 0-based visiting order; n_buffers : from :func:`routing_schedule`.
    downstream : (n,) 0-based index of the next reach, −1 at an outlet.
    length_m, slope : (n,) reach length (m) and bed slope (m/m, > 0).
    curve_q, curve_area, curve_top : (n, K) rating curve: discharge (never decreasing, 0 at
        the first level), cross-section area and top width at each level.
    pass_through : (n,) bool, reaches inside a lake.
    pool_of_reach : (n,) index of the water body whose outlet is this reach, −1 for none.
    pool_levels, pool_storage_m3, pool_outflow_m3s : (P, L) level-pool tables (levels and
        storage increasing, outflow never decreasing); pool_initial_level : (P,) m.
    boundary_reach : (B,) reaches receiving a hydrograph from outside the model (a river
        gauged where it enters the domain, another model's outlet, a test pulse), and
        boundary_m3s : (B, n_t) those hydrographs at step ends, linear within steps, entering
        at the reach's upstream end (their value at time 0 is their first one).
    reference_flow_share : share of the rise from base to peak inflow that sets Q_ref.

    Returns
    -------
    A tuple: outflow (n, n_t) at step ends; outflow at the start (n,), the steady base flow;
    lateral inflow (n, n_t) at step ends (catchment
    response + base flow); peak outflow (n,) and its time (s from the start) at the routing
    resolution; celerity (n,) m/s and diffusivity (n,) m²/s at Q_ref; sub-reaches (n,);
    regime (n,) (``REGIME_*``); channel storage (n,) at the start and at the end, m³;
    catchment reservoir storage at the end (n,) m³; volumes (m³): runoff into the
    catchments, lateral inflow into the channels (catchment response + base flow), boundary
    inflow, out of the outlets, and of negative outflow dips; pool level, inflow and outflow
    (P, n_t) at step ends, pool peak level (P,), pool storage at the start and end (P,), m³.

    References
    ----------
    Cunge, J.A. (1969) On the subject of a flood propagation computation method (Muskingum
    method). Journal of Hydraulic Research 7(2), 205-230.
    Ponce, V.M. (1989) Engineering Hydrology: Principles and Practices, §9.4.
    Ponce, V.M. & Chaganti, P.V. (1994) Variable-parameter Muskingum-Cunge method revisited.
    J. Hydrology 162, 433-439 (celerity dQ/dA and diffusivity Q/(2TS) of a general section).
    Hayami, S. (1951) On the propagation of flood waves. Bull. Disaster Prevention Research
    Institute, Kyoto University 1, 1-16 (mean and variance of the diffusion-wave kernel).
    USACE (1994) Flood-Runoff Analysis, EM 1110-2-1417, ch. 9 (modified Puls).
    Chow, V.T., Maidment, D.R. & Mays, L.W. (1988) Applied Hydrology, §8.2 (level pool).
    Nash, J.E. (1957) IAHS Publ. 45, 114-121 (linear reservoir).
    """
    n, n_t = runoff_m3s.shape
    n_pools = pool_levels.shape[0]
    dt = dt_fine_s
    n_fine = 0
    for t in range(n_t):
        n_fine += fine_per_step[t]
    step_end = np.empty(n_t, np.int64)  # routing interval index of each step end
    acc = 0
    for t in range(n_t):
        acc += fine_per_step[t]
        step_end[t] = acc
    buffers = np.zeros((n_buffers, n_fine + 1), np.float64)
    phase = np.zeros(n_buffers, np.float64)
    start_value = np.zeros(n_buffers, np.float64)  # each hydrograph's value at time 0
    free = np.empty(n_buffers, np.int64)
    n_free = n_buffers
    for b in range(n_buffers):
        free[b] = n_buffers - 1 - b
    holder = np.full(n, -1, np.int64)  # buffer accumulating each reach's inflow
    boundary_of = np.full(n, -1, np.int64)
    for kb in range(boundary_reach.shape[0]):
        boundary_of[boundary_reach[kb]] = kb
    scratch = np.zeros(n_fine + 1, np.float64)

    outflow = np.zeros((n, n_t), np.float64)
    outflow_start = np.zeros(n, np.float64)
    lateral_out = np.zeros((n, n_t), np.float64)
    peak = np.zeros(n, np.float64)
    peak_time = np.zeros(n, np.float64)
    celerity = np.zeros(n, np.float64)
    diffusivity = np.zeros(n, np.float64)
    parts_used = np.zeros(n, np.int64)
    regime = np.zeros(n, np.int64)
    storage_start = np.zeros(n, np.float64)
    storage_end = np.zeros(n, np.float64)
    catchment_storage = np.zeros(n, np.float64)
    pool_level_out = np.zeros((n_pools, n_t), np.float64)
    pool_inflow_out = np.zeros((n_pools, n_t), np.float64)
    pool_outflow_out = np.zeros((n_pools, n_t), np.float64)
    pool_peak = np.zeros(n_pools, np.float64)
    pool_s_start = np.zeros(n_pools, np.float64)
    pool_s_end = np.zeros(n_pools, np.float64)
    runoff_volume = 0.0
    lateral_volume = 0.0
    boundary_volume = 0.0
    outlet_volume = 0.0
    dip_volume = 0.0
    i_prev = np.zeros(max_parts, np.float64)
    o_prev = np.zeros(max_parts, np.float64)

    for idx in range(order.shape[0]):
        r = order[idx]
        b = holder[r]
        if b < 0:
            n_free -= 1
            b = free[n_free]
            buffers[b, :] = 0.0
            phase[b] = 0.0
            start_value[b] = 0.0
        buf = buffers[b]
        ph = phase[b]

        # Lateral inflow at this hydrograph's sample times (j + ph): the catchment's linear
        # reservoir, exactly, with the runoff rate changing at step ends; plus base flow.
        k = lag_s[r]
        o = 0.0
        o_coarse = 0.0
        j = 0
        t_next = 0  # the step whose rate applies after the current sample
        rate = runoff_m3s[r, 0]
        if ph > 0.0:  # from time 0 to the first sample
            o = rate * (1.0 - math.exp(-ph * dt / k))
        scratch[0] = o
        for t in range(n_t):
            runoff_volume += runoff_m3s[r, t] * fine_per_step[t] * dt
            decay_step = math.exp(-fine_per_step[t] * dt / k)
            o_coarse = o_coarse * decay_step + runoff_m3s[r, t] * (1.0 - decay_step)
            lateral_out[r, t] = o_coarse + base_m3s[r]
        catchment_storage[r] = k * o_coarse
        decay = math.exp(-dt / k)
        decay_a = math.exp(-(1.0 - ph) * dt / k)
        decay_b = math.exp(-ph * dt / k)
        t_next = 0
        for j in range(1, n_fine + 1):
            # From sample j − 1 to sample j; a step end at interval index j falls inside
            # when ph > 0 (at fraction 1 − ph of the way).
            if ph > 0.0 and t_next < n_t and step_end[t_next] == j:
                o = o * decay_a + rate * (1.0 - decay_a)
                t_next += 1
                rate = runoff_m3s[r, min(t_next, n_t - 1)]
                o = o * decay_b + rate * (1.0 - decay_b)
            else:
                o = o * decay + rate * (1.0 - decay)
                if ph == 0.0 and t_next < n_t and step_end[t_next] == j:
                    t_next += 1
                    rate = runoff_m3s[r, min(t_next, n_t - 1)]
            scratch[j] = o
        for j in range(n_fine + 1):
            scratch[j] += base_m3s[r]
        lateral_volume += _integral(base_m3s[r], scratch, ph, n_fine) * dt
        for j in range(n_fine + 1):
            buf[j] += scratch[j]
        start_value[b] += base_m3s[r]
        kb = boundary_of[r]
        if kb >= 0:
            # Boundary hydrographs are given at step ends; sample them at (j + ph).
            for j in range(n_fine + 1):
                x = j + ph
                if x >= n_fine:
                    scratch[j] = boundary_m3s[kb, n_t - 1]
                    continue
                t = 0
                while step_end[t] <= x:
                    t += 1
                start = 0 if t == 0 else step_end[t - 1]
                before = boundary_m3s[kb, 0] if t == 0 else boundary_m3s[kb, t - 1]
                frac = (x - start) / fine_per_step[t]
                scratch[j] = before + frac * (boundary_m3s[kb, t] - before)
            boundary_volume += _integral(boundary_m3s[kb, 0], scratch, ph, n_fine) * dt
            for j in range(n_fine + 1):
                buf[j] += scratch[j]
            start_value[b] += boundary_m3s[kb, 0]

        # Route the reach in place: buf holds its inflow, then its outflow.
        q0 = start_value[b]
        q_max = q0
        for j in range(n_fine + 1):
            q_max = max(q_max, buf[j])
        pool = pool_of_reach[r]
        if pool >= 0:
            regime[r] = REGIME_LEVEL_POOL
            _to_phase_zero(q0, buf, ph, n_fine)
            ph = 0.0
            levels = pool_levels[pool]
            stor = pool_storage_m3[pool]
            outf = pool_outflow_m3s[pool]
            level_now = pool_initial_level[pool]
            s_now, o_now = _pool_at_level(level_now, levels, stor, outf)
            pool_s_start[pool] = s_now
            pool_peak[pool] = level_now
            i_now = buf[0]
            buf[0] = o_now
            start_value[b] = o_now
            t = 0
            for j in range(1, n_fine + 1):
                i_next = buf[j]
                g = i_now + i_next + 2.0 * s_now / dt - o_now
                level_now, s_now, o_now = _pool_state(g, dt, levels, stor, outf)
                pool_peak[pool] = max(pool_peak[pool], level_now)
                i_now = i_next
                buf[j] = o_now
                if j == step_end[t]:
                    pool_level_out[pool, t] = level_now
                    pool_inflow_out[pool, t] = i_now
                    pool_outflow_out[pool, t] = o_now
                    t += 1
            pool_s_end[pool] = s_now
        elif pass_through[r]:
            regime[r] = REGIME_PASS_THROUGH
        elif q_max <= 0.0:
            regime[r] = REGIME_DRY
        else:
            q_ref = q0 + reference_flow_share * (q_max - q0)
            c, top = _section_at(q_ref, curve_q[r], curve_area[r], curve_top[r])
            c = max(c, 1e-3)
            top = max(top, 1e-3)
            dx = length_m[r]
            d_h = q_ref / (2.0 * top * slope[r])
            celerity[r] = c
            diffusivity[r] = d_h
            courant = c * dt / dx
            reynolds = 2.0 * d_h / (c * dx)
            inflow_volume = _integral(q0, buf, ph, n_fine)
            if courant > 1.5 + reynolds:
                # Translation by K = Δx/c: shift the samples by whole intervals and carry
                # the rest in the phase; then spread by the physical variance 2 D_h Δx / c³.
                regime[r] = REGIME_TRANSLATION
                lag = dx / c / dt
                shift = int(ph + lag)  # ≥ 0: truncation is the floor
                ph = ph + lag - shift
                if shift > 0:
                    for j in range(n_fine, shift - 1, -1):
                        buf[j] = buf[j - shift]
                    for j in range(min(shift, n_fine + 1)):  # before time 0: steady
                        buf[j] = q0
                variance = 2.0 * d_h * dx / (c * c * c) / (dt * dt)
                a = 0.5 * variance  # one three-point pass: variance 2a (a ≤ 1/12 here)
                left = q0
                for j in range(n_fine + 1):
                    right = buf[j + 1] if j < n_fine else buf[n_fine]
                    here = buf[j]
                    buf[j] = a * left + (1.0 - 2.0 * a) * here + a * right
                    left = here
                storage_start[r] = q0 * dx / c
                # The reach holds what entered and has not yet left (exact for a shift).
                storage_end[r] = storage_start[r] + (inflow_volume
                                                     - _integral(q0, buf, ph, n_fine)) * dt
            elif reynolds >= 0.5 * courant * courant:
                # Diffusion spreads the wave by more than half a routing interval² in this
                # reach (variance 2 D_h Δx / c³ ≥ Δt²/2): its diffusion-wave response.
                regime[r] = REGIME_DIFFUSION_KERNEL
                w = diffusion_wave_weights(dx, c, d_h, dt, n_fine + 2)
                n_w = w.shape[0]
                parts_used[r] = n_w
                for j in range(n_fine, -1, -1):  # descending: inputs j − k are still inflow
                    total = 0.0
                    for kk in range(n_w):
                        src = j - kk
                        total += w[kk] * (buf[src] if src >= 0 else q0)
                    buf[j] = total
                storage_start[r] = q0 * dx / c
                storage_end[r] = storage_start[r] + (inflow_volume
                                                     - _integral(q0, buf, ph, n_fine)) * dt
            else:
                regime[r] = REGIME_MUSKINGUM_CUNGE
                p = _parts(courant, reynolds, max_parts)
                parts_used[r] = p
                part_dx = dx / p
                part_reynolds = reynolds * p
                x = 0.5 * (1.0 - part_reynolds)
                part_k = part_dx / c
                c0, c1, c2 = _muskingum_coefficients(c * dt / part_dx, part_reynolds)
                for pp in range(p):
                    i_prev[pp] = q0
                    o_prev[pp] = q0
                storage_start[r] = p * part_k * q0
                first = 0 if ph > 0.0 else 1  # sample 0 lies ph after time 0
                for j in range(first, n_fine + 1):
                    if j == 0:
                        a0, a1, a2 = _muskingum_coefficients(c * ph * dt / part_dx,
                                                             part_reynolds)
                    else:
                        a0, a1, a2 = c0, c1, c2
                    flow = buf[j]
                    for pp in range(p):
                        o_new = a0 * flow + a1 * i_prev[pp] + a2 * o_prev[pp]
                        i_prev[pp] = flow
                        o_prev[pp] = o_new
                        flow = o_new
                    if flow < 0.0:
                        dip_volume -= flow * (dt if j > 0 else ph * dt)
                    buf[j] = flow
                end = 0.0
                for pp in range(p):
                    end += part_k * (x * i_prev[pp] + (1.0 - x) * o_prev[pp])
                storage_end[r] = end
        phase[b] = ph

        # Step-end samples, the peak at the routing resolution, and the hand-over downstream.
        outflow_start[r] = start_value[b]
        for t in range(n_t):
            outflow[r, t] = _value_at(start_value[b], buf, ph, n_fine, float(step_end[t]))
        best = start_value[b]
        best_time = 0.0
        for j in range(n_fine + 1):
            if buf[j] > best:
                best = buf[j]
                best_time = min((j + ph) * dt, n_fine * dt)
        peak[r] = best
        peak_time[r] = best_time
        d = downstream[r]
        if d >= 0 and holder[d] < 0:
            holder[d] = b  # the first reach to reach d hands its buffer on
            continue
        if d >= 0:
            target = buffers[holder[d]]
            target_phase = phase[holder[d]]
            for j in range(n_fine + 1):
                target[j] += _value_at(start_value[b], buf, ph, n_fine, j + target_phase)
            start_value[holder[d]] += start_value[b]
        else:
            outlet_volume += _integral(start_value[b], buf, ph, n_fine) * dt
        free[n_free] = b
        n_free += 1
    return (outflow, outflow_start, lateral_out, peak, peak_time, celerity, diffusivity, parts_used,
            regime, storage_start, storage_end, catchment_storage,
            runoff_volume, lateral_volume, boundary_volume, outlet_volume, dip_volume,
            pool_level_out, pool_inflow_out, pool_outflow_out, pool_peak, pool_s_start,
            pool_s_end)


@njit(cache=True, nogil=True)
def _trapezoid(series: np.ndarray, dt_s: np.ndarray) -> float:
    prev = 0.0
    total = 0.0
    for t in range(series.shape[0]):
        total += 0.5 * (prev + series[t]) * dt_s[t]
        prev = series[t]
    return total


@njit(cache=True, nogil=True)
def trapezoid_volume(series_m3s: np.ndarray, dt_s: np.ndarray) -> np.ndarray:
    """Volume (m³) of each row of a (n, n_t) discharge series that starts from 0 at time 0."""
    n = series_m3s.shape[0]
    out = np.zeros(n, np.float64)
    for j in range(n):
        out[j] = _trapezoid(series_m3s[j], dt_s)
    return out
