"""DTM-style sharing: small counts suppressed so none can be read or recomputed, aggregates
without free text, HXL CSV and GeoJSON exports."""

from __future__ import annotations

import csv
import io

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.linalg import null_space
from shapely.geometry import Point

from floodwarn.errors import InputError
from floodwarn.parameters import DataSharingRules, load_parameters
from floodwarn.sites.needs import BANDS
from floodwarn.sites.sharing import (
    aggregate_sites,
    suppress_small_counts,
    to_geojson,
    to_hxl_csv,
)

RULES = load_parameters(DataSharingRules)
FEMALE = [b for b in BANDS if b.startswith("female")]
MALE = [b for b in BANDS if b.startswith("male")]


def _table(bands: np.ndarray, households: list[int] | None = None,
           disabled: list[int] | None = None) -> pd.DataFrame:
    """A table of counts whose totals add up: people = bands, female/male totals."""
    table = pd.DataFrame(bands, columns=list(BANDS))
    table["people"] = table[list(BANDS)].sum(axis=1)
    table["female_total"] = table[FEMALE].sum(axis=1)
    table["male_total"] = table[MALE].sum(axis=1)
    table["households"] = households if households is not None else 10
    table["disabled"] = disabled if disabled is not None else 0
    return table


def _shown(table: pd.DataFrame, column: str) -> list:
    return [None if pd.isna(v) else int(v) for v in table[column]]


def test_shipped_rules():
    assert RULES.min_count == 5
    assert RULES.columns["people"].hxl == "#affected +idps +ind"
    assert RULES.columns["female_6_17"].hxl == "#affected +idps +f +children"
    assert RULES.columns["male_60_plus"].hxl == "#affected +idps +m +elderly"
    assert RULES.columns["municipality_id"].hxl == "#adm2 +code"
    assert "Statistical Disclosure Control" in RULES.source
    assert "Data Responsibility" in RULES.source


def test_small_cell_and_its_complement_are_suppressed():
    # Row 0: bands f0_5=3 (small) m0_5=10 f6_17=6 m6_17=7 f18_59=8 m18_59=9, 60+ none;
    # people 43, women 17, men 26. Hiding 3 alone would let 43 − (10+6+7+8+9) give it back,
    # so the smallest other non-zero band, f6_17 = 6, is hidden too; among the women's bands
    # two are then hidden, so 17 − 8 = 9 = f0_5 + f6_17 says nothing about either.
    table = _table(np.array([[3, 10, 6, 7, 8, 9, 0, 0]]), households=[12])
    out = suppress_small_counts(table, RULES)
    row = out.iloc[0]
    assert pd.isna(row["female_0_5"]) and pd.isna(row["female_6_17"])
    assert [row[c] for c in ("male_0_5", "male_6_17", "female_18_59", "male_18_59",
                             "female_60_plus", "people", "female_total", "male_total")] == \
        [10, 7, 8, 9, 0, 43, 17, 26]
    assert row["suppressed_cells"] == 2


def test_a_small_total_hides_its_whole_group():
    # Two people: people, both totals and every band (even the zeros, which would tell who the
    # two are) are hidden; 1 household too; 0 people with disabilities is shown.
    table = _table(np.array([[1, 1, 0, 0, 0, 0, 0, 0]]), households=[1])
    row = suppress_small_counts(table, RULES).iloc[0]
    assert all(pd.isna(row[c]) for c in ("people", "female_total", "male_total", "households",
                                         *BANDS))
    assert row["disabled"] == 0
    assert row["suppressed_cells"] == 12


def test_zero_is_shown_and_large_counts_untouched():
    table = _table(np.array([[0, 0, 0, 0, 20, 20, 0, 0]]), disabled=[0])
    out = suppress_small_counts(table, RULES)
    assert out.iloc[0]["suppressed_cells"] == 0
    assert _shown(out, "people") == [40] and _shown(out, "female_0_5") == [0]


def test_sites_within_a_municipality_are_protected_from_its_total():
    # Two sites of M1 with 3 and 30 households: the municipality's total (33) would give the
    # 3 back, so the 30 is hidden too; M2's single site shows its 8.
    table = _table(np.array([[0, 0, 0, 0, 20, 20, 0, 0]] * 3), households=[3, 30, 8])
    table["municipality_id"] = ["M1", "M1", "M2"]
    out = suppress_small_counts(table, RULES, within="municipality_id")
    assert _shown(out, "households") == [None, None, 8]
    plain = suppress_small_counts(table.drop(columns="municipality_id"), RULES)
    assert _shown(plain, "households") == [None, 30, 8]


def _determined(row: pd.Series, shown: pd.Series) -> list[str]:
    """Hidden counts of ``row`` that the additive groups and the shown cells pin down: x_k is
    determined iff every solution of the groups' equations over the hidden cells has the same
    x_k, i.e. the null space of the equations restricted to the hidden cells is 0 at k."""
    columns = list(RULES.count_columns)
    hidden = [c for c in columns if pd.isna(shown[c]) and not pd.isna(row[c])]
    if not hidden:
        return []
    equations = []
    for group in RULES.additive_groups:
        members = [group.total, *group.parts]
        if any(pd.isna(row[c]) for c in members):
            continue
        coefficients = {group.total: 1.0, **{p: -1.0 for p in group.parts}}
        equations.append([coefficients.get(c, 0.0) for c in hidden])
    if not equations:
        return []
    free = null_space(np.array(equations))
    return [c for k, c in enumerate(hidden)
            if free.shape[1] == 0 or np.abs(free[k]).max() < 1e-9]


band_rows = st.lists(
    st.one_of(st.lists(st.integers(0, 12), min_size=8, max_size=8),
              st.lists(st.integers(0, 3), min_size=8, max_size=8),
              st.none()),
    min_size=1, max_size=12)


@given(rows=band_rows, households=st.lists(st.integers(0, 9), min_size=12, max_size=12),
       areas=st.lists(st.sampled_from(["A", "B", "C"]), min_size=12, max_size=12),
       within=st.booleans())
def test_no_small_count_is_shown_or_recomputable(rows, households, areas, within):
    n = len(rows)
    bands = np.array([r if r is not None else [np.nan] * 8 for r in rows], dtype=float)
    table = pd.DataFrame(bands, columns=list(BANDS)).astype("Int64")
    no_breakdown = np.isnan(bands).any(axis=1)
    # Sites without a breakdown still count their people: 7 each.
    table["people"] = pd.array(np.where(no_breakdown, 7, np.nan_to_num(bands).sum(axis=1)),
                               dtype="Int64")
    female = np.where(no_breakdown, np.nan, np.nan_to_num(bands[:, 0::2]).sum(axis=1))
    male = np.where(no_breakdown, np.nan, np.nan_to_num(bands[:, 1::2]).sum(axis=1))
    table["female_total"] = pd.array(np.where(no_breakdown, None, female), dtype="Int64")
    table["male_total"] = pd.array(np.where(no_breakdown, None, male), dtype="Int64")
    table["households"] = households[:n]
    table["disabled"] = pd.array([min(h, 3) for h in households[:n]], dtype="Int64")
    table["area"] = areas[:n]
    out = suppress_small_counts(table, RULES, within="area" if within else None)

    counts = list(RULES.count_columns)
    shown = out[counts].to_numpy(dtype=float, na_value=np.nan)
    assert not ((shown >= 1) & (shown < RULES.min_count)).any()
    original = table[counts].to_numpy(dtype=float, na_value=np.nan)
    assert np.array_equal(shown[~np.isnan(shown)], original[~np.isnan(shown)])
    assert (out["suppressed_cells"].to_numpy()
            == (np.isnan(shown) & ~np.isnan(original)).sum(axis=1)).all()
    for i in range(n):
        assert _determined(table.iloc[i], out.iloc[i]) == []
    if within:
        for column in counts:
            for _, cells in out.groupby("area")[column]:
                known = ~table.loc[cells.index, column].isna()
                if known.sum() >= 2:
                    assert (cells[known].isna().sum()) != 1


def _latest() -> pd.DataFrame:
    """Sites' latest state: s1 and s2 in M1 (s2 reported no breakdown), s3 in M2 with a
    breakdown, s4 in M2 without a report."""
    rows = [
        {"site_id": "s1", "municipality_id": "M1", "people_present": 12,
         "households_present": 4, **dict(zip(BANDS, [1, 2, 3, 2, 2, 1, 1, 0], strict=True)),
         "disabled_present": 1, "note": "María, 34, con su bebé"},
        {"site_id": "s2", "municipality_id": "M1", "people_present": 20,
         "households_present": 6, "disabled_present": 2, "note": "texto libre"},
        {"site_id": "s3", "municipality_id": "M2", "people_present": 8,
         "households_present": 2, **dict(zip(BANDS, [0, 0, 1, 1, 3, 3, 0, 0], strict=True)),
         "disabled_present": 0, "note": ""},
        {"site_id": "s4", "municipality_id": "M2"},
    ]
    latest = pd.DataFrame(rows)
    for column in ("people_present", "households_present", *BANDS, "disabled_present"):
        latest[column] = pd.array(latest[column], dtype="Int64")
    latest["last_report_at"] = pd.to_datetime(
        ["2024-06-17T10:00Z", "2024-06-17T12:30Z", "2024-06-16T08:00Z", None], utc=True)
    return latest


def test_aggregate_per_site_and_per_municipality_without_free_text():
    latest = _latest()
    sites = aggregate_sites(latest, None)
    assert "note" not in sites.columns
    assert _shown(sites, "people") == [12, 20, 8, None]
    assert _shown(sites, "female_total") == [7, None, 4, None]  # 1+3+2+1; s3: 0+1+3+0
    assert _shown(sites, "male_total") == [5, None, 4, None]
    assert sites["sites_reporting"].tolist() == [1, 1, 1, 0]

    areas = aggregate_sites(latest, "municipality_id")
    assert "note" not in areas.columns
    assert list(areas.index) == ["M1", "M2"]
    assert areas["sites"].tolist() == [2, 2] and areas["sites_reporting"].tolist() == [2, 1]
    assert _shown(areas, "people") == [32, 8]
    assert _shown(areas, "households") == [10, 2]
    assert _shown(areas, "disabled") == [3, 0]
    # s2 has 20 people without a breakdown: M1's bands would not add up to its 32 people.
    assert _shown(areas, "female_total") == [None, 4]
    assert _shown(areas, "female_18_59") == [None, 3]
    assert areas.loc["M1", "last_report_at"] == pd.Timestamp("2024-06-17T12:30Z")


def _suppressed_sites() -> pd.DataFrame:
    latest = _latest()
    counts = aggregate_sites(latest, None)
    table = latest[["site_id", "municipality_id", "last_report_at"]].join(
        counts.drop(columns="site_id"))
    return suppress_small_counts(table, RULES)


def test_hxl_csv_has_labels_then_hashtags_then_data_with_empty_suppressed_cells():
    table = _suppressed_sites()
    columns = ["site_id", "municipality_id", "last_report_at", "people", "households",
               "female_0_5", "suppressed_cells"]
    rows = list(csv.reader(io.StringIO(to_hxl_csv(table, RULES, columns).decode("utf-8"))))
    assert rows[0] == ["Código del sitio / Site code", "Código del municipio / Municipality code",
                       "Último reporte / Last report", "Personas / People", "Hogares / Households",
                       "Niñas 0–5 / Girls 0–5", "Celdas suprimidas / Suppressed cells"]
    assert rows[1] == ["#loc +code", "#adm2 +code", "#date +reported", "#affected +idps +ind",
                       "#affected +idps +hh", "#affected +idps +f +infants",
                       "#meta +suppressed +num"]
    # s1: 12 people, 4 households (small → empty), f0_5 = 1 (small → empty).
    assert rows[2][:6] == ["s1", "M1", "2024-06-17T10:00:00Z", "12", "", ""]
    # s4 has no report: nothing to show.
    assert rows[5] == ["s4", "M2", "", "", "", "", "0"]
    assert len(rows) == 6


def test_exports_refuse_unsuppressed_counts_and_unknown_columns():
    latest = _latest()
    raw = aggregate_sites(latest, None)
    with pytest.raises(InputError, match="run suppress_small_counts"):
        to_hxl_csv(raw, RULES, ["site_id", "people", "households"])
    with pytest.raises(InputError, match=r"\['note'\] have no label and HXL hashtag"):
        to_hxl_csv(latest, RULES, ["site_id", "note"])


def test_geojson_has_only_the_given_properties_and_null_for_suppressed():
    table = _suppressed_sites()
    geo = gpd.GeoDataFrame(table, geometry=[Point(-89.2, 13.7), Point(-89.1, 13.7),
                                            Point(-88.2, 13.5), Point(-88.1, 13.5)],
                           crs="EPSG:4326").to_crs("EPSG:32616")
    collection = to_geojson(geo, ["site_id", "people", "households", "last_report_at"],
                            rules=RULES)
    assert collection["type"] == "FeatureCollection"
    first = collection["features"][0]
    assert first["properties"] == {"site_id": "s1", "people": 12, "households": None,
                                   "last_report_at": "2024-06-17T10:00:00Z"}
    # Reprojected back to WGS 84 (RFC 7946).
    assert first["geometry"]["type"] == "Point"
    assert first["geometry"]["coordinates"] == pytest.approx([-89.2, 13.7])
    with pytest.raises(InputError, match="run suppress_small_counts"):
        to_geojson(geo.assign(people=3), ["people"], rules=RULES)
