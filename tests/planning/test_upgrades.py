"""Shelter upgrades: the program against brute force and greedy, worked cases, bad input."""

import dataclasses
import itertools

import numpy as np
import pytest
from scipy.optimize import milp as scipy_milp

import floodwarn.planning.upgrades as upgrades
from floodwarn.errors import FloodwarnError, InputError
from floodwarn.planning.upgrades import (
    PlanningError,
    UpgradeProblem,
    choose_upgrades,
    expected_unplaced,
    upgrade_reason,
)
from floodwarn.risk.evacuation import match_evacuation

# Weights that are multiples of 0.05 with a smallest of 0.05: the program's distance term
# can then never trade people between scenarios (see upgrades._epsilon).
WEIGHTS = np.array([0.3, 0.15, 0.05])


def _problem(**given) -> UpgradeProblem:
    """One settlement of 100 people at the origin; site 0 (40 places, 1 km east) floods in
    scenarios 1 and 2; site 1 (no places yet, 3 km east) never floods. Override any field."""
    fields = dict(
        scenario_weight=WEIGHTS, demand=np.full((3, 1), 100.0),
        settlement_xy_m=np.array([[0.0, 0.0]]),
        site_xy_m=np.array([[1000.0, 0.0], [3000.0, 0.0]]),
        site_capacity=np.array([40.0, 0.0]),
        site_safe=np.array([[True, True], [False, True], [False, True]]),
        action_site=np.array([0, 0, 1]),
        action_kind=np.array(["capacity", "flood_safe", "new_site"]),
        action_places=np.array([30.0, 0.0, 25.0]), action_cost=np.array([3.0, 2.0, 5.0]),
        max_distance_km=15.0, candidates=4)
    fields.update(given)
    return UpgradeProblem(**fields)


def _random_problem(seed: int) -> UpgradeProblem:
    """3 scenarios, 6 settlements and 5 sites in a 12 km square, sites flooding from a
    scenario on; two sites to build (new_site), flood-proofing for up to two flooded sites,
    enlargements for the rest of 6–8 actions."""
    rng = np.random.default_rng(seed)
    n_n, n_m = 6, 5
    base = rng.integers(0, 25, n_n)
    demand = np.round(base[None, :] * np.array([1.0, 1.6, 2.4])[:, None])
    capacity = rng.integers(5, 30, n_m).astype(float)
    to_build = rng.choice(n_m, 2, replace=False)
    capacity[to_build] = 0.0
    flood_from = rng.integers(1, 4, n_m)  # 3: never floods
    safe = np.arange(3)[:, None] < flood_from[None, :]
    flooding = np.flatnonzero(flood_from < 3)
    protect = rng.choice(flooding, min(2, flooding.size), replace=False)
    n_cap = int(rng.integers(6, 9)) - to_build.size - protect.size
    sites = np.concatenate([to_build, protect, rng.integers(0, n_m, n_cap)])
    kinds = ["new_site"] * to_build.size + ["flood_safe"] * protect.size + ["capacity"] * n_cap
    places = np.where(np.array(kinds) == "flood_safe", 0.0, rng.integers(5, 25, sites.size))
    return UpgradeProblem(
        scenario_weight=WEIGHTS, demand=demand,
        settlement_xy_m=rng.uniform(0, 12_000, (n_n, 2)),
        site_xy_m=rng.uniform(0, 12_000, (n_m, 2)), site_capacity=capacity, site_safe=safe,
        action_site=sites, action_kind=np.array(kinds), action_places=places,
        action_cost=rng.integers(1, 10, sites.size).astype(float), max_distance_km=8.0,
        candidates=3)


def _subsets(n: int):
    for size in range(n + 1):
        for combo in itertools.combinations(range(n), size):
            chosen = np.zeros(n, bool)
            chosen[list(combo)] = True
            yield chosen


def _greedy(problem: UpgradeProblem, *, max_actions=None, budget=None):
    """Add, one at a time, the admissible action that lowers the expected unplaced most."""
    chosen = np.zeros(problem.action_site.size, bool)
    current = expected_unplaced(problem, chosen)[0]
    while True:
        best = None
        for a in np.flatnonzero(~chosen):
            trial = chosen.copy()
            trial[a] = True
            if (max_actions is not None and trial.sum() > max_actions) or \
                    (budget is not None and problem.action_cost[trial].sum() > budget):
                continue
            value = expected_unplaced(problem, trial)[0]
            if value < current - 1e-9 and (best is None or value < best[0]):
                best = (value, a)
        if best is None:
            return chosen, current
        current, a = best
        chosen[a] = True


@pytest.mark.parametrize(("seed", "max_actions", "budget"),
                         [(0, 1, None), (1, 2, None), (2, 3, None), (3, 2, None),
                          (4, None, 12.0), (5, 3, 10.0)])
def test_optimal_against_brute_force(seed, max_actions, budget):
    problem = _random_problem(seed)
    choice = choose_upgrades(problem, max_actions=max_actions, budget=budget)
    best = np.inf
    for chosen in _subsets(problem.action_site.size):
        if (max_actions is not None and chosen.sum() > max_actions) or \
                (budget is not None and problem.action_cost[chosen].sum() > budget):
            continue
        best = min(best, expected_unplaced(problem, chosen)[0])
    assert choice.optimal
    assert choice.expected_unplaced_after == pytest.approx(best, rel=1e-6, abs=1e-9)
    assert choice.expected_unplaced_after < choice.expected_unplaced_before  # not trivial
    if max_actions is not None:
        assert choice.chosen.sum() <= max_actions
    if budget is not None:
        assert choice.total_cost <= budget
        assert choice.total_cost == pytest.approx(problem.action_cost[choice.chosen].sum())
    # Each chosen action's gain is what dropping it alone costs (solved in full here, on its
    # site's components there); every chosen action avoids someone.
    for a in np.flatnonzero(choice.chosen):
        without = choice.chosen.copy()
        without[a] = False
        worse = expected_unplaced(problem, without)[0]
        assert choice.action_expected_gain[a] == pytest.approx(
            worse - choice.expected_unplaced_after, abs=1e-9)
        assert choice.action_expected_gain[a] > 0
    assert np.all(choice.action_expected_gain[~choice.chosen] == 0)
    # The plan's flows: whole people, capacities kept, demand balanced.
    flows = choice.flows
    np.testing.assert_allclose(flows.people, np.round(flows.people))
    assert np.all(flows.distance_km <= problem.max_distance_km)
    assert np.all(choice.site_occupancy <= choice.site_capacity_after + 1e-9)
    placed = np.zeros(problem.demand.shape)
    np.add.at(placed, (flows.scenario, flows.settlement), flows.people)
    np.testing.assert_allclose(placed + choice.settlement_unplaced_after, problem.demand)


def test_gains_with_fractional_evacuees():
    # Expected evacuees need not be whole: the gains then come from the linear program.
    whole = _random_problem(1)
    problem = dataclasses.replace(whole, demand=whole.demand * 1.37)
    choice = choose_upgrades(problem, max_actions=3)
    assert choice.chosen.sum() >= 1
    for a in np.flatnonzero(choice.chosen):
        without = choice.chosen.copy()
        without[a] = False
        assert choice.action_expected_gain[a] == pytest.approx(
            expected_unplaced(problem, without)[0] - choice.expected_unplaced_after, abs=1e-9)


def test_greedy_is_wrong_where_two_actions_only_help_together():
    # Site 0 (10 places) is flooded: flood-proofing alone saves 10, enlarging it alone saves
    # no one, the new site 1 alone saves 30 — greedy takes it first, then flood-proofing (40
    # placed); together the flooded site's two actions place 90.
    problem = _problem(
        scenario_weight=np.array([0.5]), demand=np.array([[100.0]]),
        site_capacity=np.array([10.0, 0.0]), site_safe=np.array([[False, True]]),
        action_site=np.array([0, 0, 1]),
        action_kind=np.array(["flood_safe", "capacity", "new_site"]),
        action_places=np.array([0.0, 80.0, 30.0]))
    greedy, greedy_value = _greedy(problem, max_actions=2)
    assert greedy.tolist() == [True, False, True]
    assert greedy_value == pytest.approx(0.5 * 60)
    choice = choose_upgrades(problem, max_actions=2)
    assert choice.chosen.tolist() == [True, True, False]
    assert choice.expected_unplaced_after == pytest.approx(0.5 * 10)
    assert choice.expected_unplaced_after < greedy_value


def test_greedy_is_wrong_where_two_small_actions_beat_one_big_one():
    # Budget 10: one 60-place site at 10, or two 50-place sites at 5 each.
    problem = _problem(
        scenario_weight=np.array([0.5]), demand=np.array([[100.0]]),
        site_xy_m=np.array([[1000.0, 0.0], [0.0, 1000.0], [-1000.0, 0.0]]),
        site_capacity=np.zeros(3), site_safe=np.ones((1, 3), bool),
        action_site=np.array([0, 1, 2]), action_kind=np.array(["new_site"] * 3),
        action_places=np.array([60.0, 50.0, 50.0]), action_cost=np.array([10.0, 5.0, 5.0]))
    greedy, greedy_value = _greedy(problem, budget=10.0)
    assert greedy.tolist() == [True, False, False]
    assert greedy_value == pytest.approx(0.5 * 40)
    choice = choose_upgrades(problem, budget=10.0)
    assert choice.chosen.tolist() == [False, True, True]
    assert choice.expected_unplaced_after == 0.0
    assert choice.total_cost == 10.0


def test_flood_safe_restores_exactly_the_capacity_where_the_site_floods():
    problem = _problem(action_site=np.array([0]), action_kind=np.array(["flood_safe"]),
                       action_places=np.array([0.0]), action_cost=np.array([2.0]))
    choice = choose_upgrades(problem, max_actions=1)
    assert choice.chosen.tolist() == [True]
    np.testing.assert_array_equal(choice.unplaced_before, [60, 100, 100])
    np.testing.assert_array_equal(choice.unplaced_after, [60, 60, 60])
    np.testing.assert_array_equal(choice.action_people[0], [0, 40, 40])
    assert choice.action_expected_gain[0] == pytest.approx(0.15 * 40 + 0.05 * 40)
    assert upgrade_reason(problem, choice, 0, np.array([2, 10, 100])) == (
        "Protege el albergue de las inundaciones (40 plazas actuales): acoge a 40 personas "
        "en las crecidas de 10 a 100 años; evita 8.0 personas sin plaza por año. / Makes the "
        "shelter flood-safe (40 current places): shelters 40 people in the 10- to 100-year "
        "floods; avoids 8.0 people without a place per year.")


def test_places_on_a_flooded_site_count_only_once_it_is_flood_safe():
    problem = _problem(action_site=np.array([0, 0]),
                       action_kind=np.array(["capacity", "flood_safe"]),
                       action_places=np.array([30.0, 0.0]), action_cost=np.array([3.0, 2.0]))
    results = {tuple(c): expected_unplaced(problem, np.array(c))[1].tolist()
               for c in [(False, False), (True, False), (False, True), (True, True)]}
    assert results == {(False, False): [60, 100, 100], (True, False): [30, 100, 100],
                       (False, True): [60, 60, 60], (True, True): [30, 30, 30]}
    # One action: the enlargement (0.3·30 + 0.15·100 + 0.05·100 = 29) beats flood-proofing
    # (0.5·60 = 30); two: both, and each places its share.
    one = choose_upgrades(problem, max_actions=1)
    assert one.chosen.tolist() == [True, False]
    assert one.expected_unplaced_after == pytest.approx(29.0)
    both = choose_upgrades(problem, max_actions=2)
    assert both.chosen.tolist() == [True, True]
    np.testing.assert_array_equal(both.action_people, [[30, 30, 30], [0, 70, 70]])
    np.testing.assert_array_equal(both.site_capacity_after[:, 0], [70, 70, 70])


def test_new_site_on_an_empty_site():
    problem = _problem(demand=np.full((3, 1), 40.0), site_capacity=np.array([0.0, 0.0]),
                       action_site=np.array([1]), action_kind=np.array(["new_site"]),
                       action_places=np.array([25.0]), action_cost=np.array([5.0]))
    choice = choose_upgrades(problem, budget=5.0)
    assert choice.chosen.tolist() == [True]
    np.testing.assert_array_equal(choice.unplaced_before, [40, 40, 40])
    np.testing.assert_array_equal(choice.unplaced_after, [15, 15, 15])
    np.testing.assert_array_equal(choice.action_people[0], [25, 25, 25])
    assert choice.action_expected_gain[0] == pytest.approx(0.5 * 25)
    assert upgrade_reason(problem, choice, 0, np.array([2, 10, 100])).startswith(
        "Abre un albergue nuevo de 25 plazas: acoge a 25 personas en las crecidas de 2 a 100 "
        "años; evita 12.5 personas sin plaza por año. / Opens a new shelter of 25 places: "
        "shelters 25 people in the 2- to 100-year floods")


def test_reasons_name_the_floods_a_site_serves_in():
    periods = np.array([2, 10, 100, 25])  # scenarios need not be in order
    floods = upgrades._floods
    assert floods(periods, np.array([False, False, True, False]), "es") == \
        "en la crecida de 100 años"
    assert floods(periods, np.array([False, True, True, True]), "en") == \
        "in the 10- to 100-year floods"
    assert floods(periods, np.array([True, False, True, False]), "es") == \
        "en las crecidas de 2 y 100 años"
    assert floods(periods, np.array([True, True, True, False]), "en") == \
        "in the 2-, 10- and 100-year floods"


def test_of_equally_good_plans_the_nearer_site_is_built():
    # Two empty sites, 8 km and 2 km away, either able to take all 50 people.
    problem = _problem(demand=np.full((3, 1), 50.0),
                       site_xy_m=np.array([[8000.0, 0.0], [2000.0, 0.0]]),
                       site_capacity=np.zeros(2), site_safe=np.ones((3, 2), bool),
                       action_site=np.array([0, 1]), action_kind=np.array(["new_site"] * 2),
                       action_places=np.array([50.0, 50.0]), action_cost=np.array([1.0, 1.0]))
    choice = choose_upgrades(problem, max_actions=1)
    assert choice.chosen.tolist() == [False, True]
    assert choice.expected_unplaced_after == 0.0
    np.testing.assert_array_equal(choice.flows.distance_km, [2.0, 2.0, 2.0])


def test_shorter_trips_never_leave_anyone_without_a_place():
    # A (10 people) reaches N at 1 km and F at 14 km; B (10) only N, 14 km away. Short trips
    # (A to N) would leave B unplaced: everyone goes far instead, 280 person-km.
    problem = _problem(
        scenario_weight=np.array([1.0]), demand=np.array([[10.0, 10.0]]),
        settlement_xy_m=np.array([[0.0, 0.0], [15_000.0, 0.0]]),
        site_xy_m=np.array([[1000.0, 0.0], [-14_000.0, 0.0]]),
        site_capacity=np.array([10.0, 10.0]), site_safe=np.ones((1, 2), bool),
        action_site=np.zeros(0, int), action_kind=np.zeros(0, str),
        action_places=np.zeros(0), action_cost=np.zeros(0))
    choice = choose_upgrades(problem, max_actions=0)
    assert choice.expected_unplaced_after == 0.0
    flows = {(int(i), int(j)): p for i, j, p in zip(choice.flows.settlement, choice.flows.site,
                                                     choice.flows.people, strict=True)}
    assert flows == {(0, 1): 10.0, (1, 0): 10.0}


def test_nearest_of_several_existing_sites_within_a_plan():
    problem = _problem(demand=np.full((3, 1), 30.0), site_capacity=np.array([50.0, 50.0]),
                       site_safe=np.ones((3, 2), bool),
                       action_kind=np.array(["capacity", "flood_safe", "capacity"]))
    choice = choose_upgrades(problem, max_actions=1)
    assert choice.expected_unplaced_before == 0.0
    assert not choice.chosen.any()  # nothing to gain: no action is kept
    np.testing.assert_array_equal(choice.flows.site, [0, 0, 0])


@pytest.mark.parametrize("seed", range(3))
def test_expected_figures_are_weighted_sums_and_agree_with_evacuation_matching(seed):
    problem = _random_problem(seed)
    choice = choose_upgrades(problem, max_actions=2)
    w = problem.scenario_weight
    assert choice.expected_unplaced_before == pytest.approx(w @ choice.unplaced_before)
    assert choice.expected_unplaced_after == pytest.approx(w @ choice.unplaced_after)
    np.testing.assert_allclose(choice.settlement_unplaced_after.sum(axis=1),
                               choice.unplaced_after)
    # Without candidate actions, each scenario is the forecast's evacuation matching on the
    # centres that are safe in it (the same candidate sites).
    plain = dataclasses.replace(problem, action_site=np.zeros(0, int),
                                action_kind=np.zeros(0, str), action_places=np.zeros(0),
                                action_cost=np.zeros(0))
    _, unplaced = expected_unplaced(plain, np.zeros(0, bool))
    for s in range(3):
        plan = match_evacuation(plain.settlement_xy_m, plain.demand[s], plain.site_xy_m,
                                np.where(plain.site_safe[s], plain.site_capacity, 0.0),
                                max_distance_km=plain.max_distance_km,
                                candidates=plain.candidates)
        assert unplaced[s] == pytest.approx(plan.unmet.sum())


def test_time_limit_returns_the_plan_found_and_flags_it(monkeypatch):
    def stopped(*args, **kwargs):
        result = scipy_milp(*args, **kwargs)
        if kwargs.get("integrality") is not None:
            result.status, result.mip_gap = 1, 0.03
        return result

    monkeypatch.setattr(upgrades, "milp", stopped)
    choice = choose_upgrades(_problem(), max_actions=1, time_limit_s=1.0)
    assert not choice.optimal
    assert choice.mip_gap == 0.03
    assert choice.chosen.sum() == 1


def test_no_plan_from_the_solver_is_a_planning_error(monkeypatch):
    def failed(*args, **kwargs):
        result = scipy_milp(*args, **kwargs)
        result.status, result.x, result.message = 1, None, "Time limit reached."
        return result

    monkeypatch.setattr(upgrades, "milp", failed)
    with pytest.raises(PlanningError, match=r"no plan came out of the solver.*allow more time"):
        choose_upgrades(_problem(), max_actions=1, time_limit_s=1.0)
    assert issubclass(PlanningError, FloodwarnError)


@pytest.mark.parametrize(("given", "message"), [
    ({"demand": np.full((3, 2), 5.0)}, r"settlement_xy_m has shape \(1, 2\); expected \(2, 2\)"),
    ({"demand": np.full((2, 1), 5.0)}, r"demand has shape \(2, 1\); expected \(3, any\)"),
    ({"site_safe": np.ones((3, 3), bool)}, r"site_safe has shape \(3, 3\); expected \(3, 2\)"),
    ({"action_cost": np.ones(2)}, r"action_cost has shape \(2,\); expected \(3\)"),
    ({"demand": np.array([[5.0], [-1.0], [5.0]])},
     r"demand must be finite and ≥ 0 .*index \(1, 0\)"),
    ({"site_capacity": np.array([40.0, -3.0])}, r"site_capacity must be finite and ≥ 0.*index 1"),
    ({"scenario_weight": np.zeros(3)}, "at least one scenario with a weight > 0"),
    ({"action_kind": np.array(["capacity", "enlarge", "new_site"])},
     r"action_kind\[1\] is 'enlarge'; give one of capacity, flood_safe, new_site"),
    ({"action_site": np.array([0, 0, 9])}, r"action_site\[2\] = 9 but there are 2 sites"),
    ({"action_site": np.array([0, 0, 1.5])}, r"action_site\[2\] = 1.5 but there are 2"),
    ({"action_site": np.array([0, 0, np.nan])}, r"action_site must be finite.*index 2"),
    ({"action_kind": np.array(["flood_safe", "flood_safe", "new_site"]),
      "action_places": np.array([0.0, 0.0, 25.0])},
     r"site 0 has 2 flood_safe actions \(0, 1\); give at most one per site"),
    ({"action_site": np.array([0, 0, 0])}, "new_site on site 0, which already has 40 places"),
    ({"action_places": np.array([30.0, 5.0, 25.0])}, "a flood_safe action adds no places"),
    ({"action_places": np.array([0.0, 0.0, 25.0])}, "must be > 0 for capacity and new_site"),
    ({"max_distance_km": 0.0}, "max_distance_km is 0.0; give a distance > 0"),
    ({"candidates": 0}, "candidates is 0; give a whole number ≥ 1"),
])
def test_bad_problems_are_refused_with_a_clear_message(given, message):
    with pytest.raises(InputError, match=message):
        _problem(**given)


def test_bad_limits_and_queries_are_refused():
    problem = _problem()
    with pytest.raises(InputError, match="give max_actions, budget or both"):
        choose_upgrades(problem)
    with pytest.raises(InputError, match="max_actions is -1"):
        choose_upgrades(problem, max_actions=-1)
    with pytest.raises(InputError, match="budget is -5"):
        choose_upgrades(problem, budget=-5.0)
    with pytest.raises(InputError, match="chosen must be 3 booleans"):
        expected_unplaced(problem, np.array([True, False]))
    choice = choose_upgrades(problem, max_actions=1)
    unchosen = int(np.flatnonzero(~choice.chosen)[0])
    with pytest.raises(InputError, match=f"action {unchosen} is not among the chosen"):
        upgrade_reason(problem, choice, unchosen, np.array([2, 10, 100]))
    with pytest.raises(InputError, match="return_periods has shape"):
        upgrade_reason(problem, choice, int(np.flatnonzero(choice.chosen)[0]), np.array([2]))


def test_problem_arrays_are_read_only_copies():
    demand = np.full((3, 1), 100.0)
    problem = _problem(demand=demand)
    demand[0, 0] = 0.0
    assert problem.demand[0, 0] == 100.0
    with pytest.raises(ValueError, match="read-only"):
        problem.demand[0, 0] = 1.0
