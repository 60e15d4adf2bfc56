"""Shelter-upgrade benchmark: choose 40 of 500 candidate actions over six flood scenarios.

    python benchmarks/upgrades.py                 # the default synthetic problem, seed 0
    python benchmarks/upgrades.py --seed 3 --max-actions 60 --time-limit 30

A reproducible synthetic problem of realistic size over an area like El Salvador's
(250 × 100 km, projected metres): 2,000 settlements, a few hundred of them along seven rivers
with evacuees growing with the return period (2, 5, 10, 25, 50, 100 years, weighted by the
trapezoid rule over annual exceedance probability); 400 existing collective centres, the
ones near a river flooded from some return period on; 500 candidate actions (enlargements,
flood-proofing of the centres that flood, new sites near the rivers); 8 candidate sites
within 15 km per settlement. Prints the seconds of :func:`choose_upgrades` (target: under
10 s on 2 cores), the program's size, whether it is optimal and its gap, and the expected
people per year without a place before and after.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

RETURN_PERIODS = np.array([2, 5, 10, 25, 50, 100])


def trapezoid_weights(return_periods: np.ndarray) -> np.ndarray:
    """Annual weights w_s with Σ_s w_s·X_s the trapezoid rule for ∫ X dp over annual
    exceedance probability p = 1/T, X taken as 0 for floods more frequent than the first
    and as the last scenario's for rarer ones than the last."""
    p = 1.0 / np.asarray(return_periods, np.float64)
    edges = np.concatenate([[p[0]], p, [0.0]])
    w = (edges[:-2] - edges[2:]) / 2.0
    w[-1] += p[-1] / 2.0
    return w


def synthetic_problem(seed: int, n_actions: int):
    from floodwarn.planning.upgrades import UpgradeProblem

    rng = np.random.default_rng(seed)
    width, height = 250_000.0, 100_000.0
    n_settlements, n_sites = 2_000, 400
    settlements = rng.uniform([0, 0], [width, height], (n_settlements, 2))
    population = rng.lognormal(5.8, 0.9, n_settlements).round()
    # Seven rivers crossing the country from north to south, gently meandering.
    river_x = rng.uniform(20_000, width - 20_000, 7)

    def river_distance(xy: np.ndarray) -> np.ndarray:
        bend = 8_000 * np.sin(xy[:, 1:2] / 15_000 + np.arange(7))
        return np.abs(xy[:, :1] - river_x - bend).min(axis=1)

    s_dist = river_distance(settlements)
    # Flooded from the return period whose reach (1.5 km for 2 years … 4 km for 100) covers it.
    reach_m = 1_500 + 2_500 * np.log(RETURN_PERIODS / 2) / np.log(50)
    share = np.linspace(0.05, 0.35, RETURN_PERIODS.size)  # of the people, evacuated
    flooded = s_dist[None, :] <= reach_m[:, None]
    demand = np.where(flooded, np.round(population[None, :] * share[:, None]), 0.0)
    sites = rng.uniform([0, 0], [width, height], (n_sites, 2))
    capacity = rng.integers(50, 400, n_sites).astype(np.float64)
    c_dist = river_distance(sites)
    safe = c_dist[None, :] > reach_m[:, None] * 0.8
    # Candidate new sites near the rivers but above the 100-year flood.
    n_new = n_actions // 3
    new_xy = np.column_stack([river_x[rng.integers(0, 7, n_new)]
                              + rng.choice([-1, 1], n_new) * rng.uniform(4_500, 9_000, n_new),
                              rng.uniform(0, height, n_new)])
    all_xy = np.vstack([sites, new_xy])
    all_cap = np.concatenate([capacity, np.zeros(n_new)])
    all_safe = np.hstack([safe, np.ones((RETURN_PERIODS.size, n_new), bool)])
    flooding = np.flatnonzero(~safe.all(axis=0))
    n_fs = min(flooding.size, n_actions // 6)
    n_cap = n_actions - n_new - n_fs
    cap_sites = rng.choice(n_sites, n_cap, replace=False)
    cap_places = rng.choice([50, 100, 200, 300], n_cap).astype(np.float64)
    fs_sites = rng.choice(flooding, n_fs, replace=False)
    new_places = rng.choice([200, 400, 600], n_new).astype(np.float64)
    return UpgradeProblem(
        scenario_weight=trapezoid_weights(RETURN_PERIODS), demand=demand,
        settlement_xy_m=settlements, site_xy_m=all_xy, site_capacity=all_cap,
        site_safe=all_safe,
        action_site=np.concatenate([cap_sites, fs_sites, n_sites + np.arange(n_new)]),
        action_kind=np.array(["capacity"] * n_cap + ["flood_safe"] * n_fs
                             + ["new_site"] * n_new),
        action_places=np.concatenate([cap_places, np.zeros(n_fs), new_places]),
        action_cost=np.concatenate([cap_places * 1_000, capacity[fs_sites] * 600 + 50_000,
                                    new_places * 1_500 + 100_000]),
        max_distance_km=15.0, candidates=8)


def main() -> None:
    from floodwarn.planning.upgrades import choose_upgrades, upgrade_reason

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--actions", type=int, default=500)
    parser.add_argument("--max-actions", type=int, default=40)
    parser.add_argument("--budget", type=float, default=None)
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    start = time.perf_counter()
    problem = synthetic_problem(args.seed, args.actions)
    built = time.perf_counter() - start
    n_s, n_n = problem.demand.shape
    print(f"{n_s} scenarios (return periods {', '.join(map(str, RETURN_PERIODS))}; weights "
          f"{', '.join(f'{w:.3f}' for w in problem.scenario_weight)}), {n_n:,} settlements "
          f"({int((problem.demand > 0).any(axis=0).sum())} with evacuees; "
          f"{problem.demand.sum(axis=1).astype(int).tolist()} per scenario), "
          f"{problem.site_capacity.size} sites ({int((problem.site_capacity > 0).sum())} "
          f"existing, {int(problem.site_capacity.sum()):,} places), "
          f"{problem.action_site.size} actions; built in {built:.2f} s")
    best = np.inf
    choice = None
    for _ in range(args.repeat):
        choice = choose_upgrades(problem, max_actions=args.max_actions, budget=args.budget,
                                 time_limit_s=args.time_limit)
        best = min(best, choice.seconds)
    assert choice is not None
    kinds = {str(k): int(((problem.action_kind == k) & choice.chosen).sum())
             for k in ("capacity", "flood_safe", "new_site")}
    print(f"choose_upgrades (max {args.max_actions} actions"
          f"{'' if args.budget is None else f', budget {args.budget:,.0f}'}): {best:.2f} s "
          f"(target 10 s); {choice.n_variables:,} variables, {choice.n_constraints:,} "
          f"constraints; optimal {choice.optimal}, gap {choice.mip_gap:.2e}")
    print(f"  chosen {int(choice.chosen.sum())} actions {kinds}, cost {choice.total_cost:,.0f}")
    print(f"  expected people per year without a place: {choice.expected_unplaced_before:,.1f} "
          f"before, {choice.expected_unplaced_after:,.1f} after; per scenario before "
          f"{choice.unplaced_before.astype(int).tolist()}, after "
          f"{choice.unplaced_after.astype(int).tolist()}")
    top = np.argsort(-choice.action_expected_gain)[:3]
    for a in top:
        print(f"  action {a}: {upgrade_reason(problem, choice, int(a), RETURN_PERIODS)}")


if __name__ == "__main__":
    main()
