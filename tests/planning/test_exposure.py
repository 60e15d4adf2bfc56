"""Expected annual exposure: the Delft-FIAT integration against hand-integrated cases and a
fine numerical quadrature, and the tables built on it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from floodwarn.errors import InputError
from floodwarn.planning.exposure import (
    annual_probability_weights,
    area_exposure,
    centre_exposure,
    expected_annual,
    first_return_period,
    reach_exposure,
    settlement_exposure,
)


def _quadrature(periods, values, n=400_001):
    """∫ X(f) df on [0, 1] with X = 0 above f1, Xn below fn, linear in ln f between: a fine
    trapezoid sum over f, independent of the closed form."""
    f_known = 1.0 / np.asarray(periods, float)
    f = np.linspace(f_known[-1], f_known[0], n)
    # np.interp needs increasing abscissae: ln f rises as T falls.
    x = np.interp(np.log(f), np.log(f_known[::-1]), np.asarray(values, float)[::-1])
    return np.trapezoid(x, f) + f_known[-1] * values[-1]


def test_two_return_periods_by_hand():
    # X = 0 at 2 years and 100 at 10 years. On [0.1, 0.5]: X = 100 (ln 0.5 − ln f) / ln 5,
    # ∫ (ln 0.5 − ln f) df = 0.4 ln 0.5 − [f ln f − f] from 0.1 to 0.5 = 0.239056, so
    # 100 · 0.239056 / 1.609438 = 14.8534; the tail below f = 0.1 adds 0.1 · 100 = 10.
    weights = annual_probability_weights([2, 10])
    assert expected_annual(np.array([0.0, 100.0]), weights) == pytest.approx(24.8534, abs=1e-4)
    # Constant X over every flood at least as rare as the first: X / T1.
    assert weights.sum() == pytest.approx(0.5)


@pytest.mark.parametrize("values", [[0, 571, 18885, 27327, 37150, 47783],
                                    [5, 5, 5, 5, 5, 5], [0, 0, 0, 0, 0, 1000]])
def test_weights_match_a_fine_quadrature(values):
    periods = [2, 5, 10, 25, 50, 100]
    weights = annual_probability_weights(periods)
    assert expected_annual(np.array(values, float), weights) == pytest.approx(
        _quadrature(periods, values), rel=1e-6)


def test_weights_are_checked():
    for bad in ([1, 10], [10, 2], [5, 5], []):
        with pytest.raises(InputError, match="increasing values > 1 year"):
            annual_probability_weights(bad)


def test_first_return_period_and_none():
    flags = np.array([[False, False, True], [True, False, True]])
    np.testing.assert_array_equal(first_return_period(flags, [10, 100]), [100, np.nan, 10])


def _towns(people, evacuees, unmet, levels, ids=("1", "2", "3")):
    return pd.DataFrame({
        "id": list(ids), "name": ["A", "B", "C"], "municipality_id": ["M1", "M1", "M2"],
        "municipality": ["El Rosario", "El Rosario", "El Rosario"],
        "department": ["Cuscatlán", "Cuscatlán", "La Paz"],
        "department_code": ["SV-CU", "SV-CU", "SV-PA"], "population": [1000, 500, 200],
        "people_exposed": people, "evacuees": evacuees, "unmet_evacuees": unmet,
        "level": levels})


def test_settlement_and_area_tables_add_up():
    by_rp = {2: _towns([0, 0, 10], [0, 0, 0], [0, 0, 0], ["verde", "verde", "amarilla"]),
             10: _towns([100, 0, 50], [100, 0, 0], [40, 0, 0], ["naranja", "verde", "amarilla"])}
    table = settlement_exposure(by_rp)
    w = annual_probability_weights([2, 10])
    assert table["eae_people_exposed"].tolist() == pytest.approx(
        [round(100 * w[1], 2), 0.0, round(10 * w[0] + 50 * w[1], 2)])
    assert table["exposed_from_rp"].tolist()[0] == 10 and np.isnan(table["exposed_from_rp"][1])
    assert table["evacuation_from_rp"].tolist()[0] == 10
    assert table["level_rp10"].tolist() == ["naranja", "verde", "amarilla"]
    munis = area_exposure(table, "municipality")
    # Namesakes stay apart: two El Rosario, keyed by id.
    assert set(munis["municipality_id"]) == {"M1", "M2"}
    m1 = munis.set_index("municipality_id").loc["M1"]
    assert m1["population"] == 1500 and m1["people_exposed_rp10"] == 100
    assert m1["unplaced_evacuees_rp10"] == 40 and m1["settlements"] == 2
    assert m1["settlements_exposed_by_rp100"] == 1
    departments = area_exposure(table, "department")
    assert departments["eae_people_exposed"].sum() == pytest.approx(
        table["eae_people_exposed"].sum())
    with pytest.raises(InputError, match="differ"):
        settlement_exposure({2: by_rp[2], 10: _towns([0] * 3, [0] * 3, [0] * 3, ["verde"] * 3,
                                                      ids=("1", "2", "4"))})


def test_centres_unsafe_from_their_first_flooding_scenario():
    def centres(status, occupancy):
        return pd.DataFrame({"id": ["a", "b", "c"], "name": ["x", "y", "z"],
                             "status": status, "occupancy": occupancy})

    table = centre_exposure({5: centres(["safe", "at_risk", "safe"], [0, 0, 0]),
                             25: centres(["unsafe", "at_risk", "safe"], [0, 10, 3]),
                             100: centres(["unsafe", "unsafe", "safe"], [0, 0, 9])})
    assert table["unsafe_from_rp"].tolist()[:2] == [25, 100]
    assert table["at_risk_from_rp"].tolist()[:2] == [25, 5]
    assert np.isnan(table["unsafe_from_rp"][2]) and np.isnan(table["at_risk_from_rp"][2])
    assert table["occupancy_rp100"].tolist() == [0, 0, 9]


def test_reaches_ranked_by_expected_annual_people():
    people = {2: np.array([0.0, 10.0, 0.0, 0.0]), 100: np.array([500.0, 10.0, 0.0, 0.2])}
    table = reach_exposure(people, np.array([1, 2, 3, 4]))
    w = annual_probability_weights([2, 100])
    # Reach 1: 500 w2 = 500 · (0.01 + segment share); reach 2: 10 everywhere = 10 · 0.5.
    assert table["reach_id"].tolist() == [1, 2]  # 3 and 4 flood nobody (0.2 rounds to 0)
    assert table["eae_people_exposed"].tolist() == pytest.approx(
        [round(500 * w[1], 2), round(10 * w.sum(), 2)])
    assert table["rank"].tolist() == [1, 2]
    assert table["exposed_from_rp"].tolist() == [100, 2]
