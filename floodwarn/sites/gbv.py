"""Gender-based violence (GBV) risk flags of collective centres, from their profile.

Each flag marks a condition the humanitarian guidance names as raising the risk of GBV in a
collective centre. A flag is True when the profile shows the condition, False when it shows the
site is fine, and NA when the profile does not say: unknown is not "fine", and the count of
unknowns is reported next to the count of risks so that a site nobody surveyed does not look
safe.

References:
    IASC (2015) Guidelines for Integrating Gender-Based Violence Interventions in Humanitarian
    Action, thematic areas "Camp Coordination and Camp Management" and "Shelter, Settlement
    and Recovery": adequate lighting, doors that lock from inside, separate toilets and
    bathing areas for women and men, private spaces for families and women, no overcrowding.
    Sphere Association (2018) The Sphere Handbook: Shelter and settlement standard 3 (living
    space, 3.5 m² of covered space per person) and WASH, Excreta management standard 3.2
    (toilets segregated by sex, lockable from inside, lit).
    CCCM Cluster (2010) Collective Centre Guidelines, UNHCR / IOM: minimum conditions of a
    collective centre (privacy partitions, lighting, separate sanitation).
"""

from __future__ import annotations

import pandas as pd

from floodwarn.errors import InputError

#: The flags :func:`gbv_flags` returns, in order.
GBV_FLAGS = ("gbv_no_lighting", "gbv_no_lockable_doors", "gbv_mixed_toilets",
             "gbv_no_private_space", "gbv_overcrowded")
#: Spanish, then English, label of each flag (for people reading a table or a map).
GBV_FLAG_LABELS = {
    "gbv_no_lighting": ("sin iluminación", "no lighting"),
    "gbv_no_lockable_doors": ("sin puertas con llave", "no lockable doors"),
    "gbv_mixed_toilets": ("sin inodoros separados por sexo", "no separate toilets by sex"),
    "gbv_no_private_space": ("sin espacio privado", "no private space"),
    "gbv_overcrowded": ("hacinamiento", "overcrowded"),
}


def _column(sites: pd.DataFrame, name: str, dtype: str) -> pd.Series:
    """``sites[name]`` as a nullable ``dtype``; all NA (unknown) when the frame lacks it."""
    if name not in sites.columns:
        return pd.Series(pd.NA, index=sites.index, dtype=dtype)
    return sites[name].astype(dtype)


def gbv_flags(sites: pd.DataFrame, *, min_area_per_person_m2: float) -> pd.DataFrame:
    """GBV risk flags per site (index aligned with ``sites``), pandas "boolean", NA = unknown:

    - ``gbv_no_lighting``: ``lighting`` is False;
    - ``gbv_no_lockable_doors``: ``lockable_doors`` is False;
    - ``gbv_mixed_toilets``: no toilets kept for one sex — ``toilets_female`` == 0 or
      ``toilets_male`` == 0 (so also a site with no toilets at all); known as soon as either
      count is 0, else NA while either is unknown;
    - ``gbv_no_private_space``: ``private_space`` is False;
    - ``gbv_overcrowded``: ``people_present`` × ``min_area_per_person_m2`` > ``covered_area_m2``
      (Sphere 2018, Shelter and settlement standard 3: 3.5 m² per person); False when nobody
      is present, NA when the people or the area are unknown;

    plus ``gbv_risk_count`` (True flags) and ``gbv_unknown_count`` (NA flags), int64.
    Missing columns count as unknown. ``sites`` is a site profile or latest-state frame.

    References:
        IASC (2015) Guidelines for Integrating GBV Interventions in Humanitarian Action.
        Sphere Association (2018) Shelter and settlement standard 3; WASH, Excreta management
        standard 3.2.
        CCCM Cluster (2010) Collective Centre Guidelines.
    """
    if not min_area_per_person_m2 > 0:
        raise InputError(f"min_area_per_person_m2 is {min_area_per_person_m2}; it must be > 0 "
                         "(Sphere 2018: 3.5 m² per person).")
    female = _column(sites, "toilets_female", "Int64")
    male = _column(sites, "toilets_male", "Int64")
    people = _column(sites, "people_present", "Float64")
    area = _column(sites, "covered_area_m2", "Float64")
    # Kleene logic: True | NA is True, False | NA stays unknown.
    mixed = (female == 0) | (male == 0)
    crowded = (people * min_area_per_person_m2 > area).astype("boolean")
    crowded = crowded.mask((people == 0).fillna(False), False)
    flags = pd.DataFrame({
        "gbv_no_lighting": ~_column(sites, "lighting", "boolean"),
        "gbv_no_lockable_doors": ~_column(sites, "lockable_doors", "boolean"),
        "gbv_mixed_toilets": mixed.astype("boolean"),
        "gbv_no_private_space": ~_column(sites, "private_space", "boolean"),
        "gbv_overcrowded": crowded,
    }, index=sites.index)
    flags["gbv_risk_count"] = flags[list(GBV_FLAGS)].fillna(False).sum(axis=1).astype("int64")
    flags["gbv_unknown_count"] = flags[list(GBV_FLAGS)].isna().sum(axis=1).astype("int64")
    return flags


def gbv_by_municipality(sites_with_flags: pd.DataFrame) -> pd.DataFrame:
    """Per ``municipality_id`` (the index): ``sites``, the number of sites with each flag
    True (columns named as the flags), ``sites_flagged`` (at least one flag True) and
    ``sites_unknown`` (at least one flag unknown); plus ``municipality``, ``department`` and
    ``department_code`` when the frame has them. ``sites_with_flags`` is a site frame joined
    with :func:`gbv_flags`.

    References:
        IASC (2015) Guidelines for Integrating GBV Interventions in Humanitarian Action
        (monitor risk factors per site and area).
    """
    needed = ["municipality_id", *GBV_FLAGS, "gbv_risk_count", "gbv_unknown_count"]
    missing = [c for c in needed if c not in sites_with_flags.columns]
    if missing:
        raise InputError(f"gbv_by_municipality: column(s) {missing} missing; join the sites "
                         "with gbv_flags(sites) first.")
    frame = sites_with_flags
    counts = pd.DataFrame({
        "municipality_id": frame["municipality_id"],
        "sites": 1,
        **{f: frame[f].fillna(False).astype("int64") for f in GBV_FLAGS},
        "sites_flagged": (frame["gbv_risk_count"] > 0).astype("int64"),
        "sites_unknown": (frame["gbv_unknown_count"] > 0).astype("int64"),
    })
    out = counts.groupby("municipality_id", sort=True).sum()
    names = [c for c in ("municipality", "department", "department_code") if c in frame.columns]
    if names:
        first = frame.groupby("municipality_id", sort=True)[names].first()
        out = first.join(out)
    return out
