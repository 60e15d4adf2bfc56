"""GBV risk flags per site (unknown stays unknown) and their sums per municipality."""

from __future__ import annotations

import pandas as pd
import pytest

from floodwarn.errors import InputError
from floodwarn.sites.gbv import GBV_FLAGS, gbv_by_municipality, gbv_flags

NA = pd.NA


@pytest.fixture
def sites() -> pd.DataFrame:
    """Five sites: A fine, B every risk, C never surveyed, D and E partly known."""
    return pd.DataFrame({
        "municipality_id": ["M1", "M1", "M2", "M2", "M2"],
        "municipality": ["Uno", "Uno", "Dos", "Dos", "Dos"],
        "lighting": pd.array([True, False, NA, NA, True], dtype="boolean"),
        "lockable_doors": pd.array([True, False, NA, True, NA], dtype="boolean"),
        "toilets_female": pd.array([3, 0, NA, NA, 4], dtype="Int64"),
        "toilets_male": pd.array([3, 0, NA, 0, NA], dtype="Int64"),
        "private_space": pd.array([True, False, NA, NA, True], dtype="boolean"),
        "people_present": pd.array([10, 40, NA, 0, 20], dtype="Int64"),
        "covered_area_m2": pd.array([100.0, 100.0, NA, NA, NA], dtype="Float64"),
    }, index=pd.Index(["A", "B", "C", "D", "E"], name="site_id"))


def test_flags_by_hand(sites):
    flags = gbv_flags(sites, min_area_per_person_m2=3.5)
    assert flags.index.equals(sites.index)
    expected = pd.DataFrame({
        "gbv_no_lighting": [False, True, NA, NA, False],
        "gbv_no_lockable_doors": [False, True, NA, False, NA],
        # B: 0 and 0 toilets; D: no male toilet, so not separate whatever the female count;
        # E: 4 female, male unknown → unknown.
        "gbv_mixed_toilets": [False, True, NA, True, NA],
        "gbv_no_private_space": [False, True, NA, NA, False],
        # A: 10 × 3.5 = 35 m² ≤ 100; B: 40 × 3.5 = 140 > 100; D: nobody there; E: no area.
        "gbv_overcrowded": [False, True, NA, False, NA],
    }, index=sites.index, dtype="boolean")
    pd.testing.assert_frame_equal(flags[list(GBV_FLAGS)], expected)
    assert flags["gbv_risk_count"].tolist() == [0, 5, 0, 1, 0]
    assert flags["gbv_unknown_count"].tolist() == [0, 0, 5, 2, 3]


def test_missing_columns_are_unknown_not_fine():
    flags = gbv_flags(pd.DataFrame({"lighting": pd.array([False], dtype="boolean")}),
                      min_area_per_person_m2=3.5)
    assert flags["gbv_no_lighting"].tolist() == [True]
    assert flags["gbv_risk_count"].tolist() == [1] and flags["gbv_unknown_count"].tolist() == [4]


def test_sums_per_municipality(sites):
    table = gbv_by_municipality(sites.join(gbv_flags(sites, min_area_per_person_m2=3.5)))
    assert table.loc["M1"].to_dict() == {
        "municipality": "Uno", "sites": 2, "gbv_no_lighting": 1, "gbv_no_lockable_doors": 1,
        "gbv_mixed_toilets": 1, "gbv_no_private_space": 1, "gbv_overcrowded": 1,
        "sites_flagged": 1, "sites_unknown": 0}
    # M2: C, D, E — only D has a known risk (mixed toilets); all three lack some data.
    assert table.loc["M2", ["sites", "gbv_mixed_toilets", "gbv_no_lighting", "sites_flagged",
                            "sites_unknown"]].tolist() == [3, 1, 0, 1, 3]


def test_sums_need_the_flags():
    with pytest.raises(InputError, match="gbv_flags"):
        gbv_by_municipality(pd.DataFrame({"municipality_id": ["M1"]}))
