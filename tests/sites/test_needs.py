"""Sphere needs per site and per area, against hand computations from the shipped figures
(models/sphere_standards.yaml: 15 l/person/day, 3.5 m²/person, 1 toilet per 20 people with
3 women's to 1 men's, one hygiene and one NFI kit per household, one menstrual hygiene kit per
woman or girl 12–49; planning: 3 days, 3.6 persons per household, 27 % women and girls 12–49,
18–49 = 0.762 of 18–59, 12–17 = 0.5 of 6–17)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from floodwarn.errors import InputError
from floodwarn.parameters import SphereStandards, load_parameters
from floodwarn.paths import models_dir
from floodwarn.sites.needs import BANDS, area_needs, site_needs


@pytest.fixture(scope="module")
def standards() -> SphereStandards:
    return load_parameters(SphereStandards)


def _sites(rows: list[dict]) -> pd.DataFrame:
    """Sites' latest state with the contract's dtypes; omitted fields are NA (not reported)."""
    table = pd.DataFrame(rows)
    for column in ("people_present", "households_present", *BANDS, "toilets_female",
                   "toilets_male"):
        table[column] = pd.array(table.get(column, pd.Series([None] * len(table))),
                                 dtype="Int64")
    table["covered_area_m2"] = pd.array(table.get("covered_area_m2",
                                                  pd.Series([None] * len(table))),
                                        dtype="Float64")
    return table


BANDS_35 = {"female_0_5": 3, "male_0_5": 2, "female_6_17": 4, "male_6_17": 4,
            "female_18_59": 10, "male_18_59": 8, "female_60_plus": 2, "male_60_plus": 2}


def test_shipped_figures_cite_sphere(standards):
    assert standards.water_l_per_person_day == 15
    assert "Water supply standard 2.1" in standards.water.source
    assert standards.covered_area_m2_per_person == 3.5
    assert "Shelter and settlement standard 3" in standards.covered_space.source
    assert standards.people_per_toilet == 20
    assert standards.toilets.female_per_male == 3
    assert "Excreta management standard 3.2" in standards.toilets.source
    assert standards.hygiene.bathing_soap_g_per_person_month == 250
    assert standards.hygiene.laundry_soap_g_per_person_month == 200
    assert "1.3" in standards.menstrual_hygiene.source
    assert standards.planning_days == 3
    assert standards.household_size == 3.6
    assert "EHPM" in standards.planning.household_size.replace_with


def test_site_with_people_but_no_households_or_breakdown(standards):
    sites = _sites([{"site_id": "s1", "people_present": 45, "people_arriving": 30,
                     "covered_area_m2": 100.0, "toilets_female": 1, "toilets_male": 1}])
    row = site_needs(sites, standards).iloc[0]
    assert row["people_total"] == 75                       # 45 + 30
    # ⌈45 / 3.6⌉ = ⌈12.5⌉ = 13 present, ⌈30 / 3.6⌉ = ⌈8.33⌉ = 9 arriving
    assert row["households_total"] == 22
    assert row["women_girls_12_49"] == 21                  # ⌈75 × 0.27 = 20.25⌉
    assert row["water_l_per_day"] == 1125                  # 75 × 15
    assert row["water_l_planning"] == 3375                 # × 3 days
    assert row["covered_space_needed_m2"] == 262.5         # 75 × 3.5
    assert row["covered_space_gap_m2"] == 162.5            # 262.5 − 100
    assert row["toilets_needed"] == 4                      # ⌈75 / 20⌉
    # 3:1 → men's share 4/4 = 1, women's 3; has 1 and 1 → 2 women's missing
    assert (row["toilets_female_needed"], row["toilets_male_needed"]) == (3, 1)
    assert row["toilets_gap"] == 2
    assert row["hygiene_kits"] == 22                       # 13 + 9 households
    assert row["menstrual_hygiene_kits"] == 21
    assert row["nfi_kits"] == 22
    assert row["estimates_used"] == "households; women_girls_12_49"


def test_fully_reported_site_uses_its_bands(standards):
    sites = _sites([{"site_id": "s2", "people_present": 35, "households_present": 9,
                     **BANDS_35, "people_arriving": 0, "covered_area_m2": 200.0,
                     "toilets_female": 1, "toilets_male": 2}])
    row = site_needs(sites, standards).iloc[0]
    assert row["households_total"] == 9
    # 10 women 18–59 × 0.762 + 4 girls 6–17 × 0.5 = 7.62 + 2 = 9.62 → 10
    assert row["women_girls_12_49"] == 10
    assert row["covered_space_gap_m2"] == 0                # 122.5 m² needed, 200 m² covered
    # ⌈35/20⌉ = 2 toilets: 1 women's + 1 men's (at least one for men from two on); it has
    # 1 women's and 2 men's → nothing missing (a spare men's toilet is not counted for women)
    assert row["toilets_needed"] == 2
    assert (row["toilets_female_needed"], row["toilets_male_needed"]) == (1, 1)
    assert row["toilets_gap"] == 0
    assert row["estimates_used"] == ""


def test_site_without_report_counts_arrivals_only_and_is_flagged(standards):
    sites = _sites([{"site_id": "s3", "people_arriving": 10}])
    row = site_needs(sites, standards).iloc[0]
    assert row["people_total"] == 10
    assert row["households_total"] == 3                    # ⌈10 / 3.6 = 2.78⌉
    assert row["women_girls_12_49"] == 3                   # ⌈2.7⌉
    assert pd.isna(row["covered_space_gap_m2"])            # area unknown
    assert pd.isna(row["toilets_gap"])                     # toilets unknown
    assert row["toilets_needed"] == 1
    assert row["estimates_used"] == "people_present"


def test_whole_results_are_not_rounded_up_by_float_noise(standards):
    # 36 / 3.6 and 100 × 0.27 are 10 and 27 exactly, though not in binary floating point.
    sites = _sites([{"site_id": "s4", "people_present": 36, "people_arriving": 0},
                    {"site_id": "s5", "people_present": 0, "households_present": 0,
                     "people_arriving": 100}])
    needs = site_needs(sites, standards)
    assert needs["households_total"].tolist() == [10, 28]  # 10; ⌈100 / 3.6 = 27.8⌉
    assert needs["women_girls_12_49"].tolist() == [10, 27]  # ⌈9.72⌉; 27
    assert needs["estimates_used"].tolist() == ["households; women_girls_12_49", ""]


def test_area_needs_sum_sites_and_add_the_unplaced(standards):
    sites = _sites([
        {"site_id": "s1", "people_present": 45, "people_arriving": 30,
         "covered_area_m2": 100.0, "toilets_female": 1, "toilets_male": 1},
        {"site_id": "s2", "people_present": 35, "households_present": 9, **BANDS_35,
         "people_arriving": 0, "covered_area_m2": 200.0, "toilets_female": 1,
         "toilets_male": 2},
        {"site_id": "s3", "people_arriving": 10},
    ])
    needs = site_needs(sites, standards).assign(municipality_id=["M1", "M1", "M2"])
    areas = area_needs(needs, "municipality_id", standards=standards,
                       unplaced_people=pd.Series({"M2": 10.0, "M3": 7.0}))
    assert list(areas.index) == ["M1", "M2", "M3"]
    m1, m2, m3 = (areas.loc[m] for m in ("M1", "M2", "M3"))
    # M1 = s1 + s2
    assert m1["people_total"] == 110                       # 75 + 35
    assert m1["households_total"] == 31                    # 22 + 9
    assert m1["water_l_per_day"] == 1650                   # 110 × 15
    assert m1["covered_space_gap_m2"] == 162.5             # 162.5 + 0
    assert m1["toilets_gap"] == 2                          # 2 + 0
    assert m1["hygiene_kits"] == 31 and m1["menstrual_hygiene_kits"] == 31  # 21 + 10
    assert m1["emergency_shelter_kits"] == 0
    assert (m1["sites"], m1["sites_with_estimates"]) == (2, 1)
    # M2 = s3 + 10 unplaced: ⌈10/3.6⌉ = 3 households without a place → 3 shelter kits
    assert m2["people_total"] == 10 and m2["people_unplaced"] == 10
    assert m2["emergency_shelter_kits"] == 3
    assert m2["water_l_per_day"] == 300                    # (10 + 10) × 15
    assert m2["water_l_planning"] == 900
    assert m2["hygiene_kits"] == 6                         # 3 + 3 households
    assert m2["menstrual_hygiene_kits"] == 6               # 3 + ⌈2.7⌉
    assert m2["nfi_kits"] == 3                             # sites only
    assert (m2["sites_space_unknown"], m2["sites_toilets_unknown"]) == (1, 1)
    # M3: 7 unplaced and no site
    assert m3["sites"] == 0 and m3["emergency_shelter_kits"] == 2  # ⌈7/3.6 = 1.94⌉
    assert m3["water_l_per_day"] == 105


def test_area_needs_per_department_equal_the_sum_of_municipalities(standards):
    rng = np.random.default_rng(3)
    n = 200
    sites = _sites([{"site_id": f"s{i}", "people_present": int(rng.integers(0, 300)),
                     "people_arriving": int(rng.integers(0, 100))} for i in range(n)])
    municipality = rng.choice([f"M{k}" for k in range(30)], n)
    needs = site_needs(sites, standards).assign(municipality_id=municipality,
                                                department_code=pd.Series(municipality)
                                                .str[1].to_numpy())
    by_municipality = area_needs(needs, "municipality_id", standards=standards)
    by_department = area_needs(needs, "department_code", standards=standards)
    department_of = by_municipality.index.str[1]
    summed = by_municipality.groupby(department_of)[["people_total", "hygiene_kits",
                                                     "water_l_per_day"]].sum()
    pd.testing.assert_frame_equal(summed, by_department[summed.columns], check_names=False)
    assert by_department["sites"].sum() == n


def test_bad_sites_are_refused(standards):
    good = {"site_id": "s1", "people_present": 5, "people_arriving": 0}
    with pytest.raises(InputError, match=r"people_arriving is missing .*give 0"):
        site_needs(_sites([{**good, "people_arriving": None}]), standards)
    with pytest.raises(InputError, match=r"people_present is negative for sites \[0\]"):
        site_needs(_sites([{**good, "people_present": -1}]), standards)
    with pytest.raises(InputError, match=r"columns \['toilets_male'\] are missing"):
        site_needs(_sites([good]).drop(columns="toilets_male"), standards)
    needs = site_needs(_sites([good]), standards)
    with pytest.raises(InputError, match="municipality_id"):
        area_needs(needs, "municipality_id", standards=standards)


def test_planning_assumption_out_of_range_is_refused(tmp_path):
    text = (models_dir() / "sphere_standards.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "sphere.yaml"
    bad.write_text(text.replace("value: 3.6", "value: 36"), encoding="utf-8")
    with pytest.raises(InputError, match=r"household_size.value 36.0 lies outside 1…15"):
        load_parameters(SphereStandards, bad)
