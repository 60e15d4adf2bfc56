"""Shelter upgrades: which collective centres to enlarge, make flood-safe or build so that the
fewest evacuees are left without a place, on average per year over design-flood scenarios.

The choice is one mixed-integer linear program. Its transportation part is that of
:func:`floodwarn.risk.evacuation.match_evacuation` (settlements to sites within
``max_distance_km``, among each settlement's ``candidates`` nearest sites, capacities never
exceeded), written once per scenario; binary variables open the candidate actions, which add
places to a site or make it usable in every scenario. With the actions fixed, the program is
that transportation problem in each scenario, so the actions' worth is measured the same way
a forecast's evacuation is matched.

Sizes: y (A actions, binary), q (one per place-adding action on a site that some flood makes
unusable and that has a flood-safe action: its places usable when flooded), x (one flow per
scenario and candidate pair), u (one unplaced amount per scenario and settlement with
evacuees; substituted out of the program handed to the solver). Rows: one demand row per u,
one capacity row per scenario and reachable site, two linearisation rows per q, and the count
and budget limits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse.csgraph import connected_components, maximum_flow
from scipy.spatial import cKDTree

from floodwarn.errors import FloodwarnError, InputError
from floodwarn.logs import get_logger

log = get_logger(__name__)

#: The kinds of action, and whether each adds ``action_places`` places at its site.
ACTION_ADDS_PLACES: dict[str, bool] = {"capacity": True, "flood_safe": False, "new_site": True}
ACTION_KINDS: tuple[str, ...] = tuple(ACTION_ADDS_PLACES)
#: HiGHS's default dual feasibility tolerance: smaller costs cannot steer its solution.
SOLVER_COST_TOLERANCE = 1e-7


class PlanningError(FloodwarnError, RuntimeError):
    """The optimiser could not produce a plan: the solver failed, or found no plan within its
    time limit."""


def _indices(mask: np.ndarray, limit: int = 3) -> str:
    """The first few indices where ``mask`` holds, as text: ``3, 7 and 2 more``."""
    found = np.argwhere(mask)
    shown = ", ".join(str(int(i[0])) if len(i) == 1 else str(tuple(int(v) for v in i))
                      for i in found[:limit])
    return shown + (f" and {len(found) - limit} more" if len(found) > limit else "")


def _numbers(name: str, value: object, shape: tuple[int | None, ...], meaning: str, *,
             nonnegative: bool = True) -> np.ndarray:
    """``value`` as a read-only float64 copy of ``shape`` (None: any length), finite and, if
    asked, ≥ 0; an InputError naming the array, the indices and the fix otherwise."""
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: expected numbers ({meaning}); {exc}.") from exc
    if arr.ndim != len(shape) or any(n is not None and n != k for n, k in zip(shape, arr.shape,
                                                                              strict=True)):
        want = "(" + ", ".join("any" if n is None else str(n) for n in shape) + ")"
        raise InputError(f"{name} has shape {arr.shape}; expected {want}: {meaning}.")
    bad = ~np.isfinite(arr) | ((arr < 0) if nonnegative else False)
    if np.any(bad):
        rule = "finite and ≥ 0" if nonnegative else "finite"
        raise InputError(f"{name} must be {rule} ({meaning}); not so at index "
                         f"{_indices(bad)}.")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class UpgradeProblem:
    """Scenarios, settlements, sites and candidate actions of a shelter-upgrade choice.

    Scenario s has annual weight ``scenario_weight[s]`` (the weights integrate over annual
    exceedance probability, so Σ_s w_s·X_s is an expected annual figure) and
    ``demand[s, i]`` evacuees at settlement i. Site j holds ``site_capacity[j]`` places now
    (0 for a site yet to be built) and can receive people in scenario s as it stands when
    ``site_safe[s, j]``. Action a acts on site ``action_site[a]`` at cost ``action_cost[a]``:
    ``"capacity"`` adds ``action_places[a]`` places (usable when the site is), ``"flood_safe"``
    makes the site usable in every scenario (``action_places`` 0), ``"new_site"`` builds
    ``action_places[a]`` places on a site of capacity 0. Coordinates are projected metres.
    At most one flood-safe action per site.
    """

    scenario_weight: np.ndarray
    demand: np.ndarray
    settlement_xy_m: np.ndarray
    site_xy_m: np.ndarray
    site_capacity: np.ndarray
    site_safe: np.ndarray
    action_site: np.ndarray
    action_kind: np.ndarray
    action_places: np.ndarray
    action_cost: np.ndarray
    max_distance_km: float
    candidates: int
    #: Per site, its flood-safe action's index, or -1 (derived).
    site_flood_safe_action: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        put = object.__setattr__
        w = _numbers("scenario_weight", self.scenario_weight, (None,),
                     "one annual weight per scenario")
        if w.size == 0 or w.sum() <= 0:
            raise InputError("scenario_weight: give at least one scenario with a weight > 0 "
                             "(annual probability weights, e.g. from the return periods).")
        n_s = w.size
        demand = _numbers("demand", self.demand, (n_s, None),
                          f"evacuees per scenario (rows, {n_s} like scenario_weight) and "
                          "settlement (columns)")
        n_n = demand.shape[1]
        settlement_xy = _numbers("settlement_xy_m", self.settlement_xy_m, (n_n, 2),
                                 f"x, y in projected metres of the {n_n} settlements (demand's "
                                 "columns)", nonnegative=False)
        site_xy = _numbers("site_xy_m", self.site_xy_m, (None, 2),
                           "x, y in projected metres of each site", nonnegative=False)
        n_m = site_xy.shape[0]
        capacity = _numbers("site_capacity", self.site_capacity, (n_m,),
                            f"places now at each of the {n_m} sites (0 for one to be built)")
        safe = np.array(self.site_safe)
        if safe.shape != (n_s, n_m):
            raise InputError(f"site_safe has shape {safe.shape}; expected ({n_s}, {n_m}): "
                             "per scenario and site, whether the site can receive people.")
        if safe.dtype != bool:
            if safe.dtype.kind not in "iuf" or not np.all((safe == 0) | (safe == 1)):
                raise InputError("site_safe must be booleans (or 0/1): True where the site "
                                 "can receive people in the scenario.")
            safe = safe.astype(bool)
        safe.setflags(write=False)
        site = _numbers("action_site", self.action_site, (None,),
                        "site index (row of site_xy_m) of each candidate action",
                        nonnegative=False)
        n_a = site.size
        outside = (site < 0) | (site >= n_m) | (site != np.round(site))
        if np.any(outside):
            first = int(np.flatnonzero(outside)[0])
            raise InputError(f"action_site[{first}] = {site[first]:g} but there are {n_m} sites "
                             f"(0…{n_m - 1}); an action acts on an existing site: add the "
                             "site to site_xy_m and site_capacity (capacity 0 for a new one).")
        site = site.astype(np.int64)
        site.setflags(write=False)
        kind = np.asarray(self.action_kind).astype(str)
        if kind.shape != (n_a,):
            raise InputError(f"action_kind has shape {kind.shape}; expected ({n_a},) like "
                             "action_site.")
        unknown = ~np.isin(kind, ACTION_KINDS)
        if np.any(unknown):
            first = int(np.flatnonzero(unknown)[0])
            raise InputError(f"action_kind[{first}] is {str(kind[first])!r}; give one of "
                             f"{', '.join(ACTION_KINDS)}.")
        kind.setflags(write=False)
        places = _numbers("action_places", self.action_places, (n_a,),
                          "places each action adds (0 for flood_safe)")
        cost = _numbers("action_cost", self.action_cost, (n_a,), "cost of each action")
        adds = np.array([ACTION_ADDS_PLACES[k] for k in kind], dtype=bool)
        if np.any(adds & (places <= 0)):
            raise InputError("action_places must be > 0 for capacity and new_site actions; "
                             f"it is 0 at action {_indices(adds & (places <= 0))}.")
        flood_safe = kind == "flood_safe"
        if np.any(flood_safe & (places != 0)):
            raise InputError("a flood_safe action adds no places (action_places 0); give the "
                             "places as a separate capacity action; action "
                             f"{_indices(flood_safe & (places != 0))}.")
        built = (kind == "new_site") & (capacity[site] > 0)
        if np.any(built):
            first = int(np.flatnonzero(built)[0])
            raise InputError(f"action {first} is a new_site on site {site[first]}, which "
                             f"already has {capacity[site[first]]:g} places; a new site starts "
                             "at capacity 0 (use a capacity action to enlarge a site).")
        per_site = np.bincount(site[flood_safe], minlength=n_m)
        if np.any(per_site > 1):
            j = int(np.flatnonzero(per_site > 1)[0])
            twice = np.flatnonzero(flood_safe & (site == j))
            raise InputError(f"site {j} has {per_site[j]} flood_safe actions "
                             f"({', '.join(map(str, twice))}); give at most one per site.")
        fs_action = np.full(n_m, -1, np.int64)
        fs_action[site[flood_safe]] = np.flatnonzero(flood_safe)
        fs_action.setflags(write=False)
        if not (np.isfinite(self.max_distance_km) and self.max_distance_km > 0):
            raise InputError(f"max_distance_km is {self.max_distance_km}; give a distance > 0.")
        if isinstance(self.candidates, bool) or int(self.candidates) != self.candidates \
                or self.candidates < 1:
            raise InputError(f"candidates is {self.candidates}; give a whole number ≥ 1 of "
                             "nearest sites per settlement.")
        for name, value in (("scenario_weight", w), ("demand", demand),
                            ("settlement_xy_m", settlement_xy), ("site_xy_m", site_xy),
                            ("site_capacity", capacity), ("site_safe", safe),
                            ("action_site", site), ("action_kind", kind),
                            ("action_places", places), ("action_cost", cost),
                            ("site_flood_safe_action", fs_action)):
            put(self, name, value)
        put(self, "max_distance_km", float(self.max_distance_km))
        put(self, "candidates", int(self.candidates))

    @property
    def adds_places(self) -> np.ndarray:
        """(A,) bool: the action adds places (capacity, new_site)."""
        return np.isin(self.action_kind, [k for k, v in ACTION_ADDS_PLACES.items() if v])

    def capacity_with(self, chosen: np.ndarray) -> np.ndarray:
        """(S, M) places usable in each scenario at each site once the ``chosen`` actions are
        done: current plus added places where the site is safe or made flood-safe, else 0."""
        chosen = _chosen(self, chosen)
        adds = chosen & self.adds_places
        total = self.site_capacity + np.bincount(self.action_site[adds],
                                                 weights=self.action_places[adds],
                                                 minlength=self.site_capacity.size)
        made_safe = np.zeros(self.site_capacity.size, bool)
        made_safe[self.action_site[chosen & (self.action_kind == "flood_safe")]] = True
        return np.where(self.site_safe | made_safe, total, 0.0)


@dataclass(frozen=True, eq=False)
class UpgradeFlows:
    """People moved in a plan: one row per (scenario, settlement, site) with people > 0."""

    scenario: np.ndarray
    settlement: np.ndarray
    site: np.ndarray
    people: np.ndarray
    distance_km: np.ndarray


@dataclass(frozen=True, eq=False)
class UpgradeChoice:
    """The chosen actions and what they achieve.

    ``expected_unplaced_*`` are people per year without a place (Σ_s w_s·unplaced_s), before
    (no action) and after the plan; ``unplaced_*`` (S,) per scenario and
    ``settlement_unplaced_after`` (S, N). ``action_people[a, s]`` is the people placed in
    scenario s thanks to chosen action a: for capacity and new_site, the site's occupancy above
    what it could hold without the action (at most the places added); for flood_safe, the
    site's occupancy in the scenarios where it would be flooded (people on the same site can
    count for both its flood-safe and its capacity action, both being needed).
    ``action_expected_gain[a]`` is how many more people per year would be left without a place
    were action a dropped and the others kept (0 for actions not chosen); every chosen action's
    gain is > 0 (actions the solver picked that avoid no one are dropped). ``optimal`` is False
    when the time limit stopped the solver, then ``mip_gap`` bounds the relative distance to the
    best plan. ``seconds`` covers the whole choice (the program and the re-solves with the
    actions fixed); ``n_variables`` and ``n_constraints`` are the program's size.
    """

    chosen: np.ndarray
    expected_unplaced_before: float
    expected_unplaced_after: float
    unplaced_before: np.ndarray
    unplaced_after: np.ndarray
    settlement_unplaced_after: np.ndarray
    action_people: np.ndarray
    action_expected_gain: np.ndarray
    total_cost: float
    optimal: bool
    mip_gap: float
    seconds: float
    flows: UpgradeFlows
    site_occupancy: np.ndarray  # (S, M) people placed per scenario and site
    site_capacity_after: np.ndarray  # (S, M) usable places with the plan
    n_variables: int
    n_constraints: int


def _chosen(problem: UpgradeProblem, chosen: np.ndarray) -> np.ndarray:
    arr = np.asarray(chosen)
    n_a = problem.action_site.size
    if arr.shape != (n_a,) or (arr.dtype != bool and not np.all((arr == 0) | (arr == 1))):
        raise InputError(f"chosen must be {n_a} booleans, one per candidate action; got shape "
                         f"{arr.shape}, dtype {arr.dtype}.")
    return arr.astype(bool)


@dataclass(frozen=True, eq=False)
class _Placement:
    """A placement with the actions fixed: flows x (per pair) and unplaced u (per scenario and
    settlement with evacuees) of the rows solved, unplaced per scenario and expected."""

    x: np.ndarray
    u: np.ndarray
    unplaced: np.ndarray
    expected: float


@dataclass(frozen=True, eq=False)
class _Model:
    """The program of :func:`choose_upgrades` without its limits.

    Columns: y (A actions), q (Q), x (P pairs), u (U). ``transport`` holds the rows on x and u:
    first one demand row per u (Σ_j x + u = D), then one capacity row per scenario and site
    reached (Σ_i x ≤ …); ``capacity_actions`` the capacity rows' terms on y and q, and
    ``linking`` the rows q_a ≤ y_a, q_a ≤ z_j. ``component`` labels the connected components
    of the transport rows (settlements and sites joined by pairs): with the actions fixed, each
    is a problem of its own.
    """

    problem: UpgradeProblem
    q_action: np.ndarray
    pair_scenario: np.ndarray
    pair_settlement: np.ndarray
    pair_site: np.ndarray
    pair_km: np.ndarray
    pair_row: np.ndarray  # (P,) demand row of each pair
    pair_cap_row: np.ndarray  # (P,) capacity row of each pair (0 = the first capacity row)
    u_scenario: np.ndarray
    u_settlement: np.ndarray
    cap_scenario: np.ndarray
    cap_site: np.ndarray
    transport: sp.csr_matrix
    capacity_actions: sp.csr_matrix
    linking: sp.csr_matrix
    component: np.ndarray

    @property
    def n_yq(self) -> int:
        return self.problem.action_site.size + self.q_action.size

    @property
    def demand_u(self) -> np.ndarray:
        return self.problem.demand[self.u_scenario, self.u_settlement]

    def transport_cost(self) -> np.ndarray:
        """Costs on x then u with the actions fixed: unplaced people plus ε_s person-km, each
        scenario on its own (they are independent then; see :func:`_epsilon`)."""
        eps = _epsilon(self.problem, weighted=False)
        return np.concatenate([eps[self.pair_scenario] * self.pair_km,
                               np.ones(self.u_scenario.size)])

    def place(self, chosen: np.ndarray, rows: np.ndarray | None = None) -> _Placement:
        """The program with the actions fixed: the transportation problem on the capacities
        the ``chosen`` actions give, solved by the dual simplex (a vertex: whole people for
        whole data), over every row or over the ``rows`` (a union of components)."""
        n_u = self.u_scenario.size
        capacity = self.problem.capacity_with(chosen)[self.cap_scenario, self.cap_site]
        cost = self.transport_cost()
        if rows is None:
            rows = np.ones(self.transport.shape[0], bool)
        columns = np.concatenate([rows[self.pair_row], rows[:n_u]])
        n_x, n_d = int(rows[self.pair_row].sum()), int(rows[:n_u].sum())
        values = np.zeros(0)
        if n_d:
            a = self.transport[rows][:, columns]
            has_ub = n_x > 0
            result = linprog(cost[columns], A_ub=a[n_d:] if has_ub else None,
                             b_ub=capacity[rows[n_u:]] if has_ub else None, A_eq=a[:n_d],
                             b_eq=self.demand_u[rows[:n_u]], bounds=(0, None),
                             method="highs-ds")
            if result.status != 0:
                raise PlanningError("shelter upgrades: the placement with the actions fixed "
                                    f"could not be solved ({result.message}); this is a bug, "
                                    "please report it with the inputs.")
            values = np.round(result.x, 6)
        x, u = values[:n_x], values[n_x:]
        unplaced = np.bincount(self.u_scenario[rows[:n_u]], weights=u,
                               minlength=self.problem.scenario_weight.size)
        return _Placement(x=x, u=u, unplaced=unplaced,
                          expected=float(self.problem.scenario_weight @ unplaced))

    def program(self, rows: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray,
                                                  np.ndarray, np.ndarray, np.ndarray]:
        """The program over the transport ``rows`` (a union of components) without its limits,
        with u = D − Σ_j x substituted (the solver is faster without the u columns): matrix,
        row bounds, costs and column bounds. Columns: y, q, the rows' x, and one column fixed
        at 1 that carries the constant Σ w·D, so that the objective, and the solver's gap, are
        the expected unplaced. Rows: placed per settlement ≤ D, capacity, linking."""
        p = self.problem
        n_u, n_yq = self.u_scenario.size, self.n_yq
        d_rows, c_rows = rows[:n_u], rows[n_u:]
        x_on = rows[self.pair_row]
        n_rows, n_x = int(rows.sum()), int(x_on.sum())
        n_link = self.linking.shape[0]
        transport_x = self.transport[rows][:, np.concatenate([x_on, np.zeros(n_u, bool)])]
        matrix = sp.vstack([
            sp.hstack([sp.vstack([sp.csr_matrix((int(d_rows.sum()), n_yq)),
                                  self.capacity_actions[c_rows]]),
                       transport_x, sp.csr_matrix((n_rows, 1))]),
            sp.hstack([self.linking, sp.csr_matrix((n_link, n_x + 1))]),
        ], format="csr")
        demand = self.demand_u[d_rows]
        places = np.where(p.site_safe[self.cap_scenario, self.cap_site],
                          p.site_capacity[self.cap_site], 0.0)[c_rows]
        lower = np.full(n_rows + n_link, -np.inf)
        upper = np.concatenate([demand, places, np.zeros(n_link)])
        w, eps = p.scenario_weight, _epsilon(p, weighted=True)
        s_x = self.pair_scenario[x_on]
        cost = np.concatenate([np.zeros(n_yq), -w[s_x] * (1.0 - eps[s_x] * self.pair_km[x_on]),
                               [w[self.u_scenario[d_rows]] @ demand]])
        column_lb = np.concatenate([np.zeros(n_yq + n_x), [1.0]])
        column_ub = np.concatenate([np.ones(n_yq), np.full(n_x, np.inf), [1.0]])
        return matrix, lower, upper, cost, column_lb, column_ub

    def unplaced(self, chosen: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """(S,) people left without a place on the ``rows`` (a union of components) with the
        ``chosen`` actions: for whole evacuees and places, by the maximum flow from a source
        through the settlements (D) and the pairs to the sites (capacity) and a sink, the
        transportation problem's placed count (Ford & Fulkerson 1956) in a tenth of the time
        of the linear program; else by the linear program."""
        p = self.problem
        capacity = p.capacity_with(chosen)[self.cap_scenario, self.cap_site]
        n_u, n_r = self.u_scenario.size, self.cap_site.size
        demand = self.demand_u
        whole = (np.all(demand == np.round(demand)) and np.all(capacity == np.round(capacity))
                 and max(demand.max(initial=0), capacity.max(initial=0)) < 2**30)
        if not whole:
            return self.place(chosen, rows).unplaced
        d_rows, c_rows = np.flatnonzero(rows[:n_u]), np.flatnonzero(rows[n_u:])
        on = rows[self.pair_row]
        sink = n_u + n_r + 1
        graph = sp.csr_matrix(
            (np.concatenate([demand[d_rows], demand[self.pair_row[on]], capacity[c_rows]]
                            ).astype(np.int32),
             (np.concatenate([np.zeros(d_rows.size, np.int64), 1 + self.pair_row[on],
                              1 + n_u + c_rows]),
              np.concatenate([1 + d_rows, 1 + n_u + self.pair_cap_row[on],
                              np.full(c_rows.size, sink)]))), shape=(sink + 1, sink + 1))
        placed = maximum_flow(graph, 0, sink).flow[[0], 1:1 + n_u].toarray().ravel()
        return np.bincount(self.u_scenario[d_rows], weights=demand[d_rows] - placed[d_rows],
                           minlength=p.scenario_weight.size)

    def rows_of_site(self, site: int, scenarios: np.ndarray) -> np.ndarray:
        """Transport rows (bool) of the components that hold ``site`` in the ``scenarios``
        (S,) bool."""
        n_u = self.u_scenario.size
        held = (self.cap_site == site) & scenarios[self.cap_scenario]
        return np.isin(self.component, self.component[n_u + np.flatnonzero(held)])

    def occupancy(self, placement: _Placement) -> np.ndarray:
        """(S, M) people placed per scenario and site by a placement of every row."""
        n_s, n_m = self.problem.site_safe.shape
        return np.bincount(self.pair_scenario * n_m + self.pair_site, weights=placement.x,
                           minlength=n_s * n_m).reshape(n_s, n_m)


def _epsilon(problem: UpgradeProblem, *, weighted: bool) -> np.ndarray:
    """Weight ε of a person-km against one unplaced person, per scenario (S,).

    Every flow is within ``max_distance_km`` (d), so scenario s's person-km K_s ≤ d·D_s, D_s its
    evacuees.

    *Each scenario on its own* (actions fixed), ε_s = 1 / (10·d·D_s) makes ε_s·K_s ≤ 1/10 < 1.
    With whole evacuees and places the transportation matrix is totally unimodular (Hitchcock
    1941), so the trade-off between placed people F and least person-km K(F) is convex and
    piecewise linear with breaks at whole F, and the minimum of U + ε_s·K lies on a break;
    leaving one more person unplaced costs 1 and saves at most ε_s·K_s < 1: it never pays.
    The scenario's unplaced count is thus the least possible, and among placements that
    achieve it the one with the fewest person-km is returned.

    *In the whole program* (choosing actions), Σ_s w_s·(U_s + ε·K_s) with
    ε = min_s w_s / (10·d·Σ_s w_s·D_s) makes the whole distance term ≤ min_s w_s / 10 people per
    year: a plan that leaves one more person without a place in some scenario and no fewer in
    any is worse by ≥ min_s w_s, so it is never preferred for shorter trips, and the plan
    returned is within min_s w_s / 10 people per year of the fewest expected unplaced. It is
    the fewest whenever the weights are multiples of some δ > min_s w_s / 10 (the plans'
    expected unplaced then differ by multiples of δ), e.g. trapezoid weights of the 2…100-year
    floods, multiples of 0.005 with a smallest of 0.015.

    That ε is tiny on a large problem: the program then leaves the distance out (ε = 0) when
    the most a person-trip can weigh, ε·max_s w_s·d, is below HiGHS's dual feasibility
    tolerance, :data:`SOLVER_COST_TOLERANCE`: the solver would treat such costs as zero
    anyway, and on the benchmark (ε·w·d ≈ 3e-8) they made it several times slower. The flows
    of the chosen plan always get their own, larger ε_s (actions fixed, above).
    """
    w, demand = problem.scenario_weight, problem.demand
    d = problem.max_distance_km
    per_scenario = demand.sum(axis=1)
    if not weighted:
        return 1.0 / (10.0 * d * np.maximum(per_scenario, 1.0))
    expected_demand = float(w @ per_scenario)
    smallest = float(w[w > 0].min())
    eps = smallest / (10.0 * d * max(expected_demand, np.finfo(float).tiny))
    return np.full(w.size, eps if eps * w.max() * d >= SOLVER_COST_TOLERANCE else 0.0)


def _candidate_pairs(problem: UpgradeProblem) -> tuple[np.ndarray, ...]:
    """(scenario, settlement, site, km) of every pair that may carry people: per scenario,
    each settlement with evacuees to its ``candidates`` nearest sites within
    ``max_distance_km`` among those open as they stand (places and safe) — exactly the pairs
    of :func:`~floodwarn.risk.evacuation.match_evacuation`, so that with no action the plan is
    the scenario's own — and, besides, to its ``candidates`` nearest among the sites only an
    action can open there (new places, or a flood-safe action on a site that floods)."""
    p = problem
    n_m = p.site_capacity.size
    ever = (p.site_capacity > 0) | (np.bincount(p.action_site[p.adds_places], minlength=n_m) > 0)
    protectable = p.site_flood_safe_action >= 0
    parts: list[tuple[np.ndarray, ...]] = []
    for s in range(p.scenario_weight.size):
        needing = np.flatnonzero(p.demand[s] > 0)
        open_now = (p.site_capacity > 0) & p.site_safe[s]
        openable = ever & (p.site_safe[s] | protectable) & ~open_now
        for group in (np.flatnonzero(open_now), np.flatnonzero(openable)):
            if not needing.size or not group.size:
                continue
            k = min(p.candidates, group.size)
            dist, nearest = cKDTree(p.site_xy_m[group]).query(
                p.settlement_xy_m[needing], k=k,
                distance_upper_bound=p.max_distance_km * 1000.0)
            dist = np.asarray(dist).reshape(needing.size, k).ravel()
            nearest = np.asarray(nearest).reshape(needing.size, k).ravel()
            ok = np.isfinite(dist)
            parts.append((np.full(int(ok.sum()), s), np.repeat(needing, k)[ok],
                          group[np.minimum(nearest, group.size - 1)][ok], dist[ok] / 1000.0))
    if not parts:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, np.zeros(0)
    return tuple(np.concatenate(col) for col in zip(*parts, strict=True))


def _build_model(problem: UpgradeProblem) -> _Model:
    """The rows of the program (see :func:`choose_upgrades`), from sparse incidence matrices
    over all pairs at once."""
    p = problem
    n_s, n_n = p.demand.shape
    n_m, n_a = p.site_capacity.size, p.action_site.size
    ps, pi, pj, pkm = _candidate_pairs(p)
    n_p = pkm.size
    # u: one per scenario and settlement with evacuees, in (scenario, settlement) order.
    flat = np.flatnonzero(p.demand.ravel() > 0)
    us, ui = np.divmod(flat, n_n)
    n_u = flat.size
    u_of = np.full(n_s * n_n, -1, np.int64)
    u_of[flat] = np.arange(n_u)
    pair_row = u_of[ps * n_n + pi]
    # Capacity rows: one per scenario and site some pair reaches.
    keys, cap_row = np.unique(ps * n_m + pj, return_inverse=True)
    rs, rj = np.divmod(keys, n_m)
    n_r = keys.size
    transport = sp.csr_matrix(
        (np.ones(2 * n_p + n_u), (np.concatenate([pair_row, n_u + cap_row, np.arange(n_u)]),
                                  np.concatenate([np.arange(n_p), np.arange(n_p),
                                                  n_p + np.arange(n_u)]))),
        shape=(n_u + n_r, n_p + n_u))
    # q: places of an action usable on its site when flooded, if the site has a flood-safe
    # action (else they stay unusable there and q would always be 0).
    fs_of_site = p.site_flood_safe_action
    adds = p.adds_places
    q_action = np.flatnonzero(adds & (fs_of_site[p.action_site] >= 0)
                              & ~p.site_safe[:, p.action_site].all(axis=0))
    n_q = q_action.size
    # Safe in s: Σ_i x ≤ C_j + Σ places·y. Flooded in s: Σ_i x ≤ C_j·z_j + Σ places·q. Site
    # incidence of the rows (safe or flooded) times the actions' places on each site.
    safe_r = p.site_safe[rs, rj]

    def incidence(mask: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((np.ones(int(mask.sum())), (np.flatnonzero(mask), rj[mask])),
                             shape=(n_r, n_m))

    place_actions = np.flatnonzero(adds)
    places = sp.csr_matrix((p.action_places[place_actions],
                            (p.action_site[place_actions], place_actions)), shape=(n_m, n_a))
    fs = np.flatnonzero(p.action_kind == "flood_safe")
    protected = sp.csr_matrix((p.site_capacity[p.action_site[fs]], (p.action_site[fs], fs)),
                              shape=(n_m, n_a))
    q_places = sp.csr_matrix((p.action_places[q_action],
                              (p.action_site[q_action], np.arange(n_q))), shape=(n_m, n_q))
    # Coefficient tightening: a row never holds more than the evacuees its pairs reach, R, so
    # an action's places count for at most what R leaves beyond the site's own places (valid
    # for whole y; it stops the relaxation opening 1/6 of a 600-place site for 100 people).
    reach = np.bincount(cap_row, weights=p.demand[ps, pi], minlength=n_r)
    beyond = np.maximum(reach - p.site_capacity[rj], 0.0)

    def tightened(matrix: sp.csr_matrix, most: np.ndarray) -> sp.coo_matrix:
        coo = matrix.tocoo()
        coo.data = np.minimum(coo.data, most[coo.row])
        return coo

    capacity_actions = -sp.hstack([
        tightened(incidence(safe_r) @ places + incidence(~safe_r) @ protected,
                  np.where(safe_r, beyond, reach)),
        tightened(incidence(~safe_r) @ q_places, beyond)], format="csr")
    capacity_actions.eliminate_zeros()
    # q_a ≤ y_a and q_a ≤ z_j (the flood-safe action of its site): q_a ≤ y_a·z_j.
    link = np.arange(2 * n_q)
    linking = sp.csr_matrix(
        (np.concatenate([np.ones(2 * n_q), -np.ones(2 * n_q)]),
         (np.concatenate([link, link]),
          np.concatenate([n_a + np.arange(n_q), n_a + np.arange(n_q),
                          q_action, fs_of_site[p.action_site[q_action]]]))),
        shape=(2 * n_q, n_a + n_q))
    graph = sp.csr_matrix((np.ones(n_p), (pair_row, n_u + cap_row)),
                          shape=(n_u + n_r, n_u + n_r))
    _, component = connected_components(graph, directed=False)
    return _Model(problem=p, q_action=q_action, pair_scenario=ps, pair_settlement=pi,
                  pair_site=pj, pair_km=pkm, pair_row=pair_row,
                  pair_cap_row=cap_row, u_scenario=us, u_settlement=ui,
                  cap_scenario=rs, cap_site=rj, transport=transport,
                  capacity_actions=capacity_actions, linking=linking, component=component)


def expected_unplaced(problem: UpgradeProblem, chosen: np.ndarray) -> tuple[float, np.ndarray]:
    """People per year left without a place once the ``chosen`` actions (A,) bool are done,
    and per scenario (S,): the program with the actions fixed, i.e. in each scenario the
    evacuation transportation problem on the capacities they give (Hitchcock 1941, solved by
    HiGHS, Huangfu & Hall 2018)."""
    placement = _build_model(problem).place(_chosen(problem, chosen))
    return placement.expected, placement.unplaced


def choose_upgrades(problem: UpgradeProblem, *, max_actions: int | None = None,
                    budget: float | None = None, time_limit_s: float = 60.0,
                    mip_rel_gap: float = 5e-3) -> UpgradeChoice:
    """The actions that leave the fewest people per year without a place, with at most
    ``max_actions`` actions and/or a total cost within ``budget`` (at least one limit).

    minimise  Σ_s w_s Σ_i u_is + ε Σ_s w_s Σ_ij d_ij x_ijs
    subject to  Σ_j x_ijs + u_is = D_is;  Σ_i x_ijs ≤ usable capacity of j in s;
    Σ_a y_a ≤ max_actions;  Σ_a cost_a y_a ≤ budget;  y binary;  x, u ≥ 0,
    where the usable capacity is C_j + Σ places_a·y_a on a site safe in s, and
    C_j·z_j + Σ places_a·q_a on a flooded one, z_j the y of its flood-safe action and
    q_a ≤ y_a, q_a ≤ z_j, q_a ∈ [0, 1] (the product y_a·z_j linearised; continuous suffices as
    more capacity never hurts). ε is small enough never to leave a person unplaced for shorter
    trips (:func:`_epsilon`). The solver gets it with u = D − Σ_j x substituted, each capacity
    row's action coefficients tightened to the evacuees its pairs reach, and without the
    settlements and sites where everyone finds a place with no action (they always will:
    actions only add places).

    Solved by HiGHS branch and cut within ``time_limit_s`` seconds and ``mip_rel_gap`` (relative
    to the expected unplaced: 0.5 % by default, about one person a year on the problems planners
    bring, where proving the last fraction costs minutes); when the time runs out first, the
    best plan found is returned with ``optimal`` False and its gap. Then, with the actions fixed
    (:func:`expected_unplaced`): chosen actions that avoid no one are dropped, and the flows,
    the before and after figures and each action's gain (re-solved only on the settlements and
    sites its site is connected to, in the scenarios its places are used) are computed — a few
    seconds more on a large problem, outside ``time_limit_s``.

    Raises InputError for a bad limit, PlanningError if no plan comes out of the solver.

    References
    ----------
    Hitchcock, F.L. (1941) The distribution of a product from several sources to numerous
    localities. J. Math. Phys. 20, 224-230. Ford, L.R. & Fulkerson, D.R. (1956) Maximal flow
    through a network. Canadian J. Math. 8, 399-404. Church, R. & ReVelle, C. (1974) The maximal
    covering location problem. Papers of the Regional Science Association 32, 101-118.
    Sherali, H.D., Carter, T.B. & Hobeika, A.G. (1991) A location-allocation model and algorithm
    for evacuation planning under hurricane/flood conditions. Transportation Research B 25(6),
    439-452. Daskin, M.S. (2013) Network and Discrete Location, 2nd ed., Wiley. Huangfu, Q. &
    Hall, J.A.J. (2018) Parallelizing the dual revised simplex method. Math. Prog. Comp. 10,
    119-142 (HiGHS).
    """
    start = time.perf_counter()
    if max_actions is None and budget is None:
        raise InputError("shelter upgrades: give max_actions, budget or both; without a limit "
                         "every action would be chosen.")
    if max_actions is not None and (isinstance(max_actions, bool) or max_actions < 0
                                    or int(max_actions) != max_actions):
        raise InputError(f"max_actions is {max_actions}; give a whole number ≥ 0.")
    if budget is not None and not (np.isfinite(budget) and budget >= 0):
        raise InputError(f"budget is {budget}; give a cost ≥ 0 in the actions' cost units.")
    if not (time_limit_s > 0 and 0 <= mip_rel_gap < 1):
        raise InputError(f"time_limit_s {time_limit_s} and mip_rel_gap {mip_rel_gap}: give a "
                         "time > 0 s and a relative gap in [0, 1).")
    p = problem
    model = _build_model(p)
    n_a = p.action_site.size
    before = model.place(np.zeros(n_a, bool))
    # Components where everyone finds a place with no action stay so with any plan (actions
    # only add places): they are left out of the program.
    n_u = model.u_scenario.size
    short = np.isin(model.component, model.component[:n_u][before.u > 0])
    matrix, lower, upper, cost, column_lb, column_ub = model.program(short)
    limits, limit_ub = [], []
    if max_actions is not None:
        limits.append(np.ones(n_a))
        limit_ub.append(float(max_actions))
    if budget is not None:
        limits.append(p.action_cost)
        limit_ub.append(float(budget))
    matrix = sp.vstack([matrix, sp.hstack([sp.csr_matrix(np.vstack(limits)), sp.csr_matrix(
        (len(limits), matrix.shape[1] - n_a))])], format="csr")
    picked, optimal, gap = np.zeros(n_a, bool), True, 0.0
    if n_a and short.any():  # else there is nothing to choose, or nothing to gain
        integrality = np.zeros(matrix.shape[1])
        integrality[:n_a] = 1
        result = milp(cost, integrality=integrality, bounds=Bounds(column_lb, column_ub),
                      constraints=LinearConstraint(matrix, np.concatenate(
                          [lower, np.full(len(limits), -np.inf)]),
                          np.concatenate([upper, limit_ub])),
                      options={"time_limit": float(time_limit_s),
                               "mip_rel_gap": float(mip_rel_gap)})
        if result.x is None or result.status not in (0, 1):
            hint = (f" within {time_limit_s:g} s; allow more time" if result.status == 1
                    else "; this is a bug, please report it with the inputs")
            raise PlanningError(f"shelter upgrades: no plan came out of the solver "
                                f"({result.message}){hint}.")
        picked, optimal = result.x[:n_a] > 0.5, result.status == 0
        gap = float(result.mip_gap) if result.mip_gap is not None else 0.0
    chosen, after, gain = _needed_actions(model, picked, before.expected)
    occupancy = model.occupancy(after)
    capacity_after = p.capacity_with(chosen)
    settlement_unplaced = np.zeros(p.demand.shape)
    settlement_unplaced[model.u_scenario, model.u_settlement] = after.u
    moved = after.x > 0
    flows = UpgradeFlows(scenario=model.pair_scenario[moved],
                         settlement=model.pair_settlement[moved], site=model.pair_site[moved],
                         people=after.x[moved], distance_km=model.pair_km[moved])
    seconds = time.perf_counter() - start
    log.info("shelter upgrades chosen", extra={
        "actions": int(chosen.sum()), "candidates": n_a, "optimal": optimal, "mip_gap": gap,
        "expected_unplaced_before": round(before.expected, 3),
        "expected_unplaced_after": round(after.expected, 3), "duration_s": round(seconds, 3)})
    return UpgradeChoice(
        chosen=chosen, expected_unplaced_before=before.expected,
        expected_unplaced_after=after.expected, unplaced_before=before.unplaced,
        unplaced_after=after.unplaced, settlement_unplaced_after=settlement_unplaced,
        action_people=_action_people(p, chosen, occupancy, capacity_after),
        action_expected_gain=gain, total_cost=float(p.action_cost[chosen].sum()),
        optimal=optimal, mip_gap=gap, seconds=seconds, flows=flows, site_occupancy=occupancy,
        site_capacity_after=capacity_after, n_variables=matrix.shape[1],
        n_constraints=matrix.shape[0])


def _needed_actions(model: _Model, chosen: np.ndarray, expected_before: float
                    ) -> tuple[np.ndarray, _Placement, np.ndarray]:
    """The chosen actions without those that avoid no one (the program is indifferent to
    them: dropped the most expensive first, each only if the rest still do as well), their
    placement, and each remaining action's gain."""
    tol = 1e-6 * max(1.0, expected_before)
    chosen = chosen.copy()
    plan = model.place(chosen)
    gain = _gains(model, chosen, plan)
    idle = np.flatnonzero(chosen & (gain <= tol))
    if idle.size:
        for a in idle[np.argsort(-model.problem.action_cost[idle], kind="stable")]:
            if _gain(model, chosen, plan, int(a)) <= tol:
                chosen[a] = False
                plan = model.place(chosen)
        gain = _gains(model, chosen, plan)
    return chosen, plan, gain


def _gains(model: _Model, chosen: np.ndarray, plan: _Placement) -> np.ndarray:
    gain = np.zeros(chosen.size)
    for a in np.flatnonzero(chosen):
        gain[a] = _gain(model, chosen, plan, int(a))
    return gain


def _gain(model: _Model, chosen: np.ndarray, plan: _Placement, action: int) -> float:
    """More people per year without a place if ``action`` were dropped from ``chosen``
    (whose placement is ``plan``). Where the plan's flows still fit without it, they stay
    optimal (the feasible set only shrank): only the scenarios where its site would be
    overfull are re-solved, and there only the components its site is in."""
    p = model.problem
    site = int(p.action_site[action])
    fewer = chosen.copy()
    fewer[action] = False
    overfull = model.occupancy(plan)[:, site] > p.capacity_with(fewer)[:, site] + 1e-6
    if not overfull.any():
        return 0.0
    rows = model.rows_of_site(site, overfull)
    n_u = model.u_scenario.size
    kept = np.bincount(model.u_scenario[rows[:n_u]], weights=plan.u[rows[:n_u]],
                       minlength=p.scenario_weight.size)
    return max(float(p.scenario_weight @ (model.unplaced(fewer, rows) - kept)), 0.0)


def _action_people(problem: UpgradeProblem, chosen: np.ndarray, occupancy: np.ndarray,
                   capacity_after: np.ndarray) -> np.ndarray:
    """(A, S) people placed thanks to each chosen action (see :class:`UpgradeChoice`)."""
    p = problem
    people = np.zeros((p.action_site.size, p.scenario_weight.size))
    adding = np.flatnonzero(chosen & p.adds_places)
    j = p.action_site[adding]
    usable = capacity_after[:, j] > 0
    without = capacity_after[:, j] - p.action_places[adding] * usable
    people[adding] = np.clip(occupancy[:, j] - without, 0.0, p.action_places[adding]).T
    protecting = np.flatnonzero(chosen & (p.action_kind == "flood_safe"))
    j = p.action_site[protecting]
    people[protecting] = (occupancy[:, j] * ~p.site_safe[:, j]).T
    return people


# Plain reasons, Spanish then English: what the action does, whom it shelters in which floods
# and what it avoids per year. Numbers as the alerts write them (decimal point, as in El
# Salvador).
_WHAT = {
    "es": {"capacity": "Amplía en {places} plazas", "new_site": "Abre un albergue nuevo de "
           "{places} plazas", "flood_safe": "Protege el albergue de las inundaciones{current}"},
    "en": {"capacity": "Adds {places} places", "new_site": "Opens a new shelter of {places} "
           "places", "flood_safe": "Makes the shelter flood-safe{current}"},
}
_CURRENT = {"es": " ({places} plazas actuales)", "en": " ({places} current places)"}
_SHELTERS = {"es": ("acoge a {n} personas", "acoge de {lo} a {n} personas",
                    "no acoge a nadie en estos escenarios"),
             "en": ("shelters {n} people", "shelters {lo} to {n} people",
                    "shelters no one in these scenarios")}
_FLOODS = {"es": ("en la crecida de {a} años", "en las crecidas de {a} a {b} años",
                  "en las crecidas de {list} años", ", ", " y "),
           "en": ("in the {a}-year flood", "in the {a}- to {b}-year floods",
                  "in the {list}-year floods", "-, ", "- and ")}
_AVOIDS = {"es": "evita {gain} personas sin plaza por año",
           "en": "avoids {gain} people without a place per year"}


def _amount(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value >= 0.1 else f"{value:.2g}"


def _floods(periods: np.ndarray, used: np.ndarray, lang: str) -> str:
    one, span, several, sep, last = _FLOODS[lang]
    order = np.argsort(periods, kind="stable")
    labels = [f"{t:g}" for t in periods[order][used[order]]]
    positions = np.flatnonzero(used[order])
    if len(labels) == 1:
        return one.format(a=labels[0])
    if positions[-1] - positions[0] == len(labels) - 1:
        return span.format(a=labels[0], b=labels[-1])
    return several.format(list=sep.join(labels[:-1]) + last + labels[-1])


def upgrade_reason(problem: UpgradeProblem, choice: UpgradeChoice, action: int,
                   return_periods: np.ndarray) -> str:
    """A short plain reason for a chosen ``action``, in Spanish then English: what it does,
    how many people it shelters in which floods (``return_periods`` (S,) years label the
    scenarios) and how many fewer people per year are left without a place, e.g. "Amplía en
    120 plazas: acoge a 85 personas en las crecidas de 25 a 100 años; evita 3.2 personas sin
    plaza por año. / Adds 120 places: shelters 85 people in the 25- to 100-year floods; avoids
    3.2 people without a place per year." """
    periods = np.asarray(return_periods, np.float64)
    if periods.shape != problem.scenario_weight.shape:
        raise InputError(f"return_periods has shape {periods.shape}; give one per scenario "
                         f"({problem.scenario_weight.size}).")
    if not 0 <= action < choice.chosen.size or not choice.chosen[action]:
        raise InputError(f"action {action} is not among the chosen actions "
                         f"{np.flatnonzero(choice.chosen).tolist()}.")
    kind = str(problem.action_kind[action])
    people = choice.action_people[action]
    used = people >= 0.5
    parts = []
    for lang in ("es", "en"):
        current = problem.site_capacity[problem.action_site[action]]
        what = _WHAT[lang][kind].format(
            places=f"{problem.action_places[action]:,.0f}",
            current=_CURRENT[lang].format(places=f"{current:,.0f}") if current > 0 else "")
        whole, ranged, nobody = _SHELTERS[lang]
        if used.any():
            lo, hi = float(people[used].min()), float(people[used].max())
            text = (whole if round(lo) == round(hi) else ranged).format(
                n=f"{hi:,.0f}", lo=f"{lo:,.0f}")
            shelters = f"{text} {_floods(periods, used, lang)}"
        else:
            shelters = nobody
        avoids = _AVOIDS[lang].format(gain=_amount(float(choice.action_expected_gain[action])))
        parts.append(f"{what}: {shelters}; {avoids}.")
    return " / ".join(parts)
