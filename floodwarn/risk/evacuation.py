"""Evacuation matching: people of threatened settlements to safe collective centres, by
capacity and distance, as a minimum-cost transportation problem (not greedy nearest)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog
from scipy.spatial import cKDTree

from floodwarn.errors import InputError

#: Cost of one person left without a place, in person-km: above any real trip, so the optimum
#: always shelters as many people as capacity and distance allow.
UNMET_PENALTY_KM = 1e4


@dataclass(frozen=True)
class EvacuationPlan:
    """Flows ``(settlement index, centre index, people, distance_km)`` and, per settlement,
    ``unmet`` people; per centre ``occupancy``. ``total_person_km`` is the objective."""

    settlement: np.ndarray
    centre: np.ndarray
    people: np.ndarray
    distance_km: np.ndarray
    unmet: np.ndarray
    occupancy: np.ndarray
    total_person_km: float


def match_evacuation(
    demand_xy_m: np.ndarray, demand: np.ndarray, centre_xy_m: np.ndarray, capacity: np.ndarray,
    *, max_distance_km: float, candidates: int,
) -> EvacuationPlan:
    """Assign ``demand`` people at points ``demand_xy_m`` (n, 2; projected metres) to centres
    of ``capacity`` at ``centre_xy_m`` (m, 2), minimising total person-km, never exceeding a
    capacity, within ``max_distance_km`` and among each settlement's ``candidates`` nearest
    centres. People who cannot be placed are ``unmet``.

    The transportation problem  min Σ d_ij x_ij + M Σ u_i  s.t.  Σ_j x_ij + u_i = D_i,
    Σ_i x_ij ≤ C_j, x, u ≥ 0  is solved as a linear program (HiGHS dual simplex). Its
    constraint matrix is totally unimodular, so a basic optimal solution is integral for
    integer demands and capacities (interior point with crossover, dual simplex as fallback).

    References
    ----------
    Hitchcock, F.L. (1941) The distribution of a product from several sources to numerous
    localities. J. Math. Phys. 20, 224-230. Huangfu, Q. & Hall, J.A.J. (2018) Parallelizing
    the dual revised simplex method. Math. Prog. Comp. 10, 119-142 (HiGHS).
    """
    d_xy = np.asarray(demand_xy_m, np.float64).reshape(-1, 2)
    c_xy = np.asarray(centre_xy_m, np.float64).reshape(-1, 2)
    dem = np.asarray(demand, np.float64)
    cap = np.asarray(capacity, np.float64)
    if dem.shape != (d_xy.shape[0],) or cap.shape != (c_xy.shape[0],):
        raise InputError("evacuation: one demand per settlement and one capacity per centre.")
    if np.any(dem < 0) or np.any(cap < 0) or not np.all(np.isfinite(dem)) \
            or not np.all(np.isfinite(cap)):
        raise InputError("evacuation: demands and capacities must be finite and ≥ 0.")
    n, m = dem.size, cap.size
    needing = np.flatnonzero(dem > 0)
    open_centres = np.flatnonzero(cap > 0)
    rows_i: list[np.ndarray] = []
    rows_j: list[np.ndarray] = []
    rows_d: list[np.ndarray] = []
    if needing.size and open_centres.size:
        k = min(candidates, open_centres.size)
        dist, nearest = cKDTree(c_xy[open_centres]).query(
            d_xy[needing], k=k, distance_upper_bound=max_distance_km * 1000.0)
        dist = np.asarray(dist).reshape(needing.size, k)
        nearest = np.asarray(nearest).reshape(needing.size, k)
        ok = np.isfinite(dist)
        rows_i.append(np.repeat(needing, k)[ok.ravel()])
        rows_j.append(open_centres[np.minimum(nearest, open_centres.size - 1)].ravel()[ok.ravel()])
        rows_d.append(dist.ravel()[ok.ravel()] / 1000.0)
    pi = np.concatenate(rows_i) if rows_i else np.zeros(0, np.int64)
    pj = np.concatenate(rows_j) if rows_j else np.zeros(0, np.int64)
    pd_km = np.concatenate(rows_d) if rows_d else np.zeros(0)
    n_pairs = pi.size
    # Variables: one flow per candidate pair, then one unmet amount per settlement.
    cost = np.concatenate([pd_km, np.full(n, UNMET_PENALTY_KM)])
    pair = np.arange(n_pairs)
    ones = np.ones(n_pairs)
    a_eq = sp.hstack([sp.csr_matrix((ones, (pi, pair)), shape=(n, n_pairs)),
                      sp.identity(n, format="csr")]).tocsr()
    a_ub = sp.hstack([sp.csr_matrix((ones, (pj, pair)), shape=(m, n_pairs)),
                      sp.csr_matrix((m, n))]).tocsr()
    # Interior point with crossover is several times faster than simplex here and ends on a
    # vertex; should it ever return a fractional split, the dual simplex is used instead.
    for method in ("highs-ipm", "highs-ds"):
        result = linprog(cost, A_ub=a_ub, b_ub=cap, A_eq=a_eq, b_eq=dem, bounds=(0, None),
                         method=method)
        if result.status != 0:
            raise InputError(
                f"evacuation: the assignment could not be solved ({result.message}).")
        integral = np.abs(result.x - np.round(result.x)).max(initial=0.0) < 1e-6
        if integral or not np.allclose(dem, np.round(dem)) or not np.allclose(cap, np.round(cap)):
            break
    x = np.round(result.x[:n_pairs], 6)
    unmet = np.round(result.x[n_pairs:], 6)
    used = x > 0
    occupancy = np.bincount(pj[used], weights=x[used], minlength=m)
    return EvacuationPlan(settlement=pi[used], centre=pj[used], people=x[used],
                          distance_km=pd_km[used], unmet=unmet, occupancy=occupancy,
                          total_person_km=float(pd_km[used] @ x[used]))
