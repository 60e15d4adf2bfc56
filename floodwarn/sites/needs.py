"""Sphere needs of the people in collective centres: those present (latest report) and those the
evacuation plan sends there, per site, and summed per municipality or department together with
the evacuees the plan found no place for.

Figures come from :class:`floodwarn.parameters.SphereStandards` (``models/sphere_standards.yaml``),
each citing The Sphere Handbook 2018; where a report leaves a figure out (households, the sex and
age breakdown) it is estimated from the planning assumptions there and the estimate is named in
``estimates_used``, so an estimate never passes for a reported fact.

References
----------
Sphere Association (2018) The Sphere Handbook: Humanitarian Charter and Minimum Standards in
Humanitarian Response, 4th ed., Geneva: WASH Water supply standard 2.1, Excreta management
standard 3.2, Hygiene promotion standards 1.2 and 1.3; Shelter and settlement standards 1, 3, 4.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from floodwarn.errors import InputError
from floodwarn.parameters import SphereStandards

#: The sex × age-band counts of a site report, in the order of the data contract.
BANDS = ("female_0_5", "male_0_5", "female_6_17", "male_6_17", "female_18_59", "male_18_59",
         "female_60_plus", "male_60_plus")

#: Columns :func:`site_needs` reads (municipality_id and department_code are not needed there;
#: :func:`area_needs` groups by whichever the caller attaches).
SITE_INPUT_COLUMNS = ("people_present", "households_present", *BANDS, "people_arriving",
                      "covered_area_m2", "toilets_female", "toilets_male")

#: Count columns :func:`site_needs` returns (pandas Int64).
COUNT_NEEDS = ("people_total", "households_total", "women_girls_12_49", "toilets_needed",
               "toilets_female_needed", "toilets_male_needed", "toilets_gap", "hygiene_kits",
               "menstrual_hygiene_kits", "nfi_kits")
#: Quantity columns :func:`site_needs` returns (litres and square metres).
QUANTITY_NEEDS = ("water_l_per_day", "water_l_planning", "covered_space_needed_m2",
                  "covered_space_gap_m2")

#: Figures of the people present that a report may leave out, as named in ``estimates_used``:
#: no report at all (people present counted as 0), no households, no sex and age breakdown.
ESTIMATE_NAMES = ("people_present", "households", "women_girls_12_49")

#: Columns :func:`area_needs` sums from the sites (the gaps only over sites where known).
AREA_SUMMED = ("people_total", "households_total", "women_girls_12_49", "water_l_per_day",
               "water_l_planning", "covered_space_needed_m2", "covered_space_gap_m2",
               "toilets_needed", "toilets_gap", "hygiene_kits", "menstrual_hygiene_kits",
               "nfi_kits")


def _ceil(x: np.ndarray) -> np.ndarray:
    """Whole units, rounding up — after rounding away floating-point noise, so that
    36 / 3.6 gives 10 households and 100 × 0.27 gives 27 kits, not one more."""
    return np.ceil(np.round(x, 6))


def _values(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].to_numpy(dtype=np.float64, na_value=np.nan)


def _int64(values: np.ndarray, index: pd.Index) -> pd.Series:
    unknown = np.isnan(values)
    return pd.Series(pd.arrays.IntegerArray(np.where(unknown, 0, values).astype(np.int64),
                                            unknown), index=index)


def _check_sites(sites: pd.DataFrame) -> None:
    missing = [c for c in SITE_INPUT_COLUMNS if c not in sites.columns]
    if missing:
        raise InputError(f"site needs: columns {missing} are missing; the sites' latest state "
                         f"needs {list(SITE_INPUT_COLUMNS)} (NA where not reported).")
    arriving = _values(sites, "people_arriving")
    if np.isnan(arriving).any():
        where = list(sites.index[np.isnan(arriving)][:5])
        raise InputError(f"site needs: people_arriving is missing for sites {where}; give 0 "
                         "where the evacuation plan sends nobody.")
    for column in SITE_INPUT_COLUMNS:
        negative = _values(sites, column) < 0
        if negative.any():
            where = list(sites.index[negative][:5])
            raise InputError(f"site needs: {column} is negative for sites {where}; counts and "
                             "areas are ≥ 0.")


def site_needs(sites: pd.DataFrame, standards: SphereStandards) -> pd.DataFrame:
    """Sphere needs per collective centre of the people present and those forecast to arrive.

    ``sites`` is the sites' latest state (one row per site): ``people_present`` and
    ``households_present`` (NA = no report; people are then counted as 0 and the row flagged),
    the eight sex × age-band counts (NA = not counted), ``people_arriving`` (≥ 0, from the
    evacuation plan), ``covered_area_m2``, ``toilets_female``, ``toilets_male`` (NA = unknown).

    Returns, on the same index:

    - ``people_total`` = present + arriving;
    - ``households_total`` = households present (reported, else ⌈present / household_size⌉)
      + ⌈arriving / household_size⌉;
    - ``women_girls_12_49``: of those present, from the bands where counted
      (female_18_59 × share_18_49_of_female_18_59 + female_6_17 × share_12_17_of_female_6_17),
      else present × share_women_girls_12_49; plus arriving × share_women_girls_12_49 (rounded
      up once);
    - ``water_l_per_day`` = people_total × 15 l (Water supply standard 2.1) and
      ``water_l_planning`` = × planning_days;
    - ``covered_space_needed_m2`` = people_total × 3.5 m² (Shelter and settlement standard 3) and
      ``covered_space_gap_m2`` = max(needed − covered_area_m2, 0), NA where the area is unknown;
    - ``toilets_needed`` = ⌈people_total / 20⌉ (Excreta management standard 3.2), split 3:1
      into ``toilets_female_needed`` and ``toilets_male_needed`` (the men's share rounded to
      the nearest toilet, at least one from two toilets on: 3 → 2 + 1, 26 → 19 + 7), and
      ``toilets_gap`` = the shortfall of each sex added (spare men's toilets do not make up for
      missing women's), NA where either count is unknown;
    - ``hygiene_kits`` = households_total × 1 a month (Hygiene promotion standard 1.2),
      ``menstrual_hygiene_kits`` = women_girls_12_49 × 1 a month (standard 1.3), ``nfi_kits`` =
      households_total × 1 (Shelter and settlement standard 4);
    - ``estimates_used``: which figures of the people present were estimated, among
      ``people_present`` (no report), ``households``, ``women_girls_12_49``, joined by "; "
      (empty when the report gave them all). People forecast to arrive never come with
      households or a breakdown, so their share always uses the planning assumptions.

    References
    ----------
    Sphere Association (2018) The Sphere Handbook, 4th ed.: WASH Water supply standard 2.1,
    Excreta management standard 3.2, Hygiene promotion standards 1.2 and 1.3; Shelter and
    settlement standards 3 and 4.
    """
    _check_sites(sites)
    index = sites.index
    plan = standards.planning
    household_size = plan.household_size.value
    share_women = plan.share_women_girls_12_49.value

    people_present = _values(sites, "people_present")
    reported = ~np.isnan(people_present)
    present = np.nan_to_num(people_present)
    arriving = np.round(_values(sites, "people_arriving"))
    people_total = present + arriving

    households_reported = _values(sites, "households_present")
    households_unknown = np.isnan(households_reported)
    households_present = np.where(households_unknown, _ceil(present / household_size),
                                  households_reported)
    households_total = households_present + _ceil(arriving / household_size)

    girls_6_17 = _values(sites, "female_6_17")
    women_18_59 = _values(sites, "female_18_59")
    bands_counted = ~np.isnan(girls_6_17) & ~np.isnan(women_18_59)
    women_present = np.where(
        bands_counted,
        np.nan_to_num(women_18_59) * plan.share_18_49_of_female_18_59.value
        + np.nan_to_num(girls_6_17) * plan.share_12_17_of_female_6_17.value,
        present * share_women)
    women_girls = _ceil(women_present + arriving * share_women)

    water_day = people_total * standards.water.l_per_person_day
    space_needed = people_total * standards.covered_space.m2_per_person
    space_gap = np.maximum(space_needed - _values(sites, "covered_area_m2"), 0.0)

    toilets = standards.toilets
    toilets_needed = _ceil(people_total / toilets.people_per_toilet)
    # 3:1 with the men's share rounded to the nearest whole toilet and at least one for men
    # from two toilets on: 3 toilets are 2 + 1, not 3 + 0; 26 are 19 + 7.
    male_share = toilets_needed / (toilets.female_per_male + 1)
    male_needed = np.where(toilets_needed >= 2,
                           np.maximum(1.0, np.floor(male_share + 0.5)), 0.0)
    female_needed = toilets_needed - male_needed
    # NaN (unknown count) propagates through the sum: the gap is then unknown.
    toilets_gap = (np.maximum(female_needed - _values(sites, "toilets_female"), 0.0)
                   + np.maximum(male_needed - _values(sites, "toilets_male"), 0.0))

    estimated = (~reported,
                 reported & households_unknown & (present > 0),
                 reported & ~bands_counted & (present > 0))
    code = sum(mask.astype(np.int64) << bit for bit, mask in enumerate(estimated))
    labels = np.array(["; ".join(name for bit, name in enumerate(ESTIMATE_NAMES) if c >> bit & 1)
                       for c in range(1 << len(ESTIMATE_NAMES))], dtype=object)

    counts = {
        "people_total": people_total,
        "households_total": households_total,
        "women_girls_12_49": women_girls,
        "toilets_needed": toilets_needed,
        "toilets_female_needed": female_needed,
        "toilets_male_needed": male_needed,
        "toilets_gap": toilets_gap,
        "hygiene_kits": _ceil(households_total * standards.hygiene.kits_per_household_month),
        "menstrual_hygiene_kits": _ceil(women_girls * standards.menstrual_hygiene.kits_per_unit),
        "nfi_kits": _ceil(households_total * standards.household_items.kits_per_unit),
    }
    out = pd.DataFrame({name: _int64(values, index) for name, values in counts.items()},
                       index=index)
    out["water_l_per_day"] = water_day
    out["water_l_planning"] = water_day * plan.planning_days.value
    out["covered_space_needed_m2"] = space_needed
    out["covered_space_gap_m2"] = pd.arrays.FloatingArray(np.nan_to_num(space_gap),
                                                          np.isnan(space_gap))
    out["estimates_used"] = labels[code]
    return out[["people_total", "households_total", "women_girls_12_49", "water_l_per_day",
                "water_l_planning", "covered_space_needed_m2", "covered_space_gap_m2",
                "toilets_needed", "toilets_female_needed", "toilets_male_needed", "toilets_gap",
                "hygiene_kits", "menstrual_hygiene_kits", "nfi_kits", "estimates_used"]]


def area_needs(needs: pd.DataFrame, by: str, *, unplaced_people: pd.Series | None = None,
               standards: SphereStandards) -> pd.DataFrame:
    """Site needs summed per area, plus the needs of evacuees left without a place there.

    ``needs`` is :func:`site_needs`' output with the column ``by`` (``municipality_id`` or
    ``department_code``) attached; ``unplaced_people`` (indexed by the same area codes) counts
    the evacuees the plan found no place for. Returns one row per area (index named ``by``,
    sorted; areas with unplaced people but no site included) with the sums of
    :data:`AREA_SUMMED` — the space and toilet gaps over the sites where they are known, with
    ``sites_space_unknown`` and ``sites_toilets_unknown`` counting the others — and ``sites``,
    ``sites_with_estimates``, ``people_unplaced``, ``households_unplaced`` =
    ⌈unplaced / household_size⌉ and ``emergency_shelter_kits`` = households_unplaced × 1
    (Shelter and settlement standards 1 and 4). Water, hygiene and menstrual hygiene kits
    include the unplaced people (15 l a day each, a hygiene kit per household, a menstrual
    hygiene kit per woman or girl 12–49 at the planning share); ``people_total`` and
    ``households_total`` count only people in sites.

    References
    ----------
    Sphere Association (2018) The Sphere Handbook, 4th ed.: Shelter and settlement standards 1
    and 4, WASH Water supply standard 2.1, Hygiene promotion standards 1.2 and 1.3.
    """
    missing = [c for c in (by, *AREA_SUMMED, "estimates_used") if c not in needs.columns]
    if missing:
        raise InputError(f"area needs: columns {missing} are missing; pass site_needs' output "
                         f"with a {by!r} column attached.")
    codes, areas = pd.factorize(needs[by], sort=True)
    if (codes < 0).any():
        where = list(needs.index[codes < 0][:5])
        raise InputError(f"area needs: sites {where} have no {by}; every site needs one.")
    unplaced = pd.Series(dtype=np.float64) if unplaced_people is None else \
        unplaced_people.astype(np.float64).fillna(0.0)
    if (unplaced < 0).any():
        raise InputError("area needs: unplaced_people must be ≥ 0; "
                         f"{list(unplaced.index[unplaced < 0][:5])} are negative.")
    index = pd.Index(areas).union(pd.Index(unplaced.index)).rename(by)
    slot = index.get_indexer(areas)[codes]
    size = len(index)

    def per_area(values: np.ndarray) -> np.ndarray:
        return np.bincount(slot, weights=values, minlength=size)

    sums = {c: per_area(np.nan_to_num(_values(needs, c))) for c in AREA_SUMMED}
    sites = per_area(np.ones(len(needs)))
    with_estimates = per_area((needs["estimates_used"].to_numpy() != "").astype(np.float64))
    space_unknown = per_area(np.isnan(_values(needs, "covered_space_gap_m2")).astype(np.float64))
    toilets_unknown = per_area(np.isnan(_values(needs, "toilets_gap")).astype(np.float64))

    plan = standards.planning
    people_unplaced = np.round(unplaced.reindex(index, fill_value=0.0).to_numpy())
    households_unplaced = _ceil(people_unplaced / plan.household_size.value)
    water_unplaced = people_unplaced * standards.water.l_per_person_day
    sums["water_l_per_day"] += water_unplaced
    sums["water_l_planning"] += water_unplaced * plan.planning_days.value
    sums["hygiene_kits"] += _ceil(households_unplaced
                                  * standards.hygiene.kits_per_household_month)
    women_unplaced = _ceil(people_unplaced * plan.share_women_girls_12_49.value)
    sums["menstrual_hygiene_kits"] += _ceil(women_unplaced
                                            * standards.menstrual_hygiene.kits_per_unit)

    out = pd.DataFrame(index=index)
    for column in AREA_SUMMED:
        quantity = column in QUANTITY_NEEDS
        out[column] = sums[column] if quantity else sums[column].round().astype(np.int64)
    out["people_unplaced"] = people_unplaced.astype(np.int64)
    out["households_unplaced"] = households_unplaced.astype(np.int64)
    out["emergency_shelter_kits"] = _ceil(
        households_unplaced * standards.emergency_shelter.kits_per_unit).astype(np.int64)
    out["sites"] = sites.astype(np.int64)
    out["sites_with_estimates"] = with_estimates.astype(np.int64)
    out["sites_space_unknown"] = space_unknown.astype(np.int64)
    out["sites_toilets_unknown"] = toilets_unknown.astype(np.int64)
    return out
