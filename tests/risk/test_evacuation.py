"""Evacuation matching: optimal against brute force, capacities kept, unmet demand."""

import itertools

import numpy as np
import pytest

from floodwarn.errors import InputError
from floodwarn.risk.evacuation import UNMET_PENALTY_KM, match_evacuation


def _brute_force(dist_km, demand, capacity):
    """Cheapest integer assignment by enumerating every split of every settlement's people."""
    n, m = dist_km.shape
    best = np.inf
    options = []
    for i in range(n):
        splits = [s for s in itertools.product(range(demand[i] + 1), repeat=m)
                  if sum(s) <= demand[i]]
        options.append(splits)
    for choice in itertools.product(*options):
        flows = np.array(choice)
        if np.any(flows.sum(axis=0) > capacity):
            continue
        unmet = demand - flows.sum(axis=1)
        best = min(best, float((flows * dist_km).sum() + UNMET_PENALTY_KM * unmet.sum()))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_optimal_against_brute_force_and_never_over_capacity(seed):
    rng = np.random.default_rng(seed)
    settlements = rng.uniform(0, 10_000, (3, 2))
    centres = rng.uniform(0, 10_000, (3, 2))
    demand = rng.integers(0, 5, 3)
    capacity = rng.integers(0, 5, 3)
    plan = match_evacuation(settlements, demand, centres, capacity, max_distance_km=100,
                            candidates=3)
    dist = np.linalg.norm(settlements[:, None] - centres[None], axis=2) / 1000
    expected = _brute_force(dist, demand, capacity)
    got = plan.total_person_km + UNMET_PENALTY_KM * plan.unmet.sum()
    assert got == pytest.approx(expected, abs=1e-6)
    assert np.all(plan.occupancy <= capacity + 1e-9)
    np.testing.assert_allclose(plan.people, np.round(plan.people))  # whole people
    placed = np.bincount(plan.settlement, weights=plan.people, minlength=3)
    np.testing.assert_allclose(placed + plan.unmet, demand)


def test_not_greedy_nearest():
    # A is nearest to centre 0 but B can only reach centre 0: optimum sends A to centre 1.
    settlements = np.array([[0.0, 0.0], [-3000.0, 0.0]])
    centres = np.array([[-1000.0, 0.0], [2000.0, 0.0]])
    plan = match_evacuation(settlements, np.array([10, 10]), centres, np.array([10, 10]),
                            max_distance_km=2.5, candidates=2)
    flows = {(int(i), int(j)): p for i, j, p in zip(plan.settlement, plan.centre, plan.people,
                                                    strict=True)}
    assert flows == {(0, 1): 10.0, (1, 0): 10.0}
    assert plan.unmet.sum() == 0


def test_unmet_when_capacity_or_distance_runs_out():
    plan = match_evacuation(np.array([[0.0, 0.0], [100_000.0, 0.0]]), np.array([30, 5]),
                            np.array([[1000.0, 0.0]]), np.array([20]), max_distance_km=30,
                            candidates=5)
    np.testing.assert_allclose(plan.unmet, [10, 5])  # capacity 20; the far town reaches none
    assert plan.occupancy[0] == 20
    with pytest.raises(InputError, match="≥ 0"):
        match_evacuation(np.zeros((1, 2)), np.array([-1]), np.zeros((1, 2)), np.array([5]),
                         max_distance_km=10, candidates=1)
