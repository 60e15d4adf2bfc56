"""Data sharing, DTM style: occupancy of collective centres aggregated per site, municipality or
department, small counts suppressed so that no export identifies a household, written as CSV
with HXL hashtags and as GeoJSON.

What an export may show is :class:`floodwarn.parameters.DataSharingRules`
(``models/data_sharing.yaml``). Free text (report notes, authors) never enters these tables:
:func:`aggregate_sites` builds them from a fixed list of count columns.

References
----------
IASC (2023) Operational Guidance on Data Responsibility in Humanitarian Action. OCHA Centre for
Humanitarian Data (2019) Guidance Note: Statistical Disclosure Control. HXL Standard 1.1
(Humanitarian Exchange Language). IETF RFC 7946 (2016) The GeoJSON Format.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from floodwarn.errors import InputError
from floodwarn.parameters import DataSharingRules
from floodwarn.sites.needs import BANDS

FEMALE_BANDS = tuple(b for b in BANDS if b.startswith("female_"))
MALE_BANDS = tuple(b for b in BANDS if b.startswith("male_"))

#: Count columns of an aggregate and the column of the sites' latest state each sums.
SITE_COUNTS: dict[str, str] = {"people": "people_present", "households": "households_present",
                               **{band: band for band in BANDS}, "disabled": "disabled_present"}

#: Sort key of a shown zero when a complementary cell must be chosen: any non-zero count first.
_ZERO_LAST = 1e300


def _hide_smallest(values: np.ndarray, shown: np.ndarray) -> np.ndarray:
    """Per row, the column of the smallest shown non-zero value, else of a shown zero (−1 when
    nothing is shown)."""
    key = np.where(shown & (values > 0), values, np.where(shown, _ZERO_LAST, np.inf))
    pick = np.argmin(key, axis=1)
    return np.where(np.isfinite(key[np.arange(len(key)), pick]), pick, -1)


def _secondary_in_groups(values: np.ndarray, hidden: np.ndarray,
                         groups: list[tuple[int, np.ndarray]]) -> bool:
    """One pass of complementary suppression over the additive groups (in place); True when
    a cell was hidden."""
    changed = False
    for total, parts in groups:
        members = np.concatenate([[total], parts])
        applies = ~np.isnan(values[:, members]).any(axis=1)
        leaks = np.flatnonzero(applies & (hidden[:, members].sum(axis=1) == 1))
        if not leaks.size:
            continue
        pick = _hide_smallest(values[np.ix_(leaks, parts)], ~hidden[np.ix_(leaks, parts)])
        ok = pick >= 0
        hidden[leaks[ok], parts[pick[ok]]] = True
        changed = changed or bool(ok.any())
    return changed


def _secondary_within(values: np.ndarray, hidden: np.ndarray, area: np.ndarray) -> bool:
    """One pass of complementary suppression down each column within each area (in place): an
    area's total, published elsewhere, minus its sites' shown cells must not give one site's
    suppressed cell. True when a cell was hidden."""
    changed = False
    for j in range(values.shape[1]):
        known = ~np.isnan(values[:, j]) & (area >= 0)
        hidden_here = np.bincount(area[known], weights=hidden[known, j].astype(np.float64),
                                  minlength=int(area.max(initial=-1)) + 1)
        candidates = np.flatnonzero(known & ~hidden[:, j] & (hidden_here[area] == 1))
        if not candidates.size:
            continue
        v = values[candidates, j]
        key = np.where(v > 0, v, _ZERO_LAST)
        order = np.lexsort((key, area[candidates]))
        _, first = np.unique(area[candidates[order]], return_index=True)
        hidden[candidates[order[first]], j] = True
        changed = True
    return changed


def suppress_small_counts(table: pd.DataFrame, rules: DataSharingRules, *,
                          within: str | None = None) -> pd.DataFrame:
    """Suppress small counts so that no cell of 1…min_count−1 is shown or can be recomputed.

    Primary suppression: every count (``rules.count_columns`` present in ``table``) with
    1 ≤ n < ``rules.min_count`` becomes NA; 0 is shown. Where a group's total is itself
    suppressed, its parts are suppressed too (a small total says who the few people are).
    Secondary (complementary) suppression, repeated until nothing changes: in every row where an
    additive group (``rules.additive_groups``; all its columns present and known) has exactly
    one hidden cell, which the others would give by subtraction, the smallest shown non-zero
    part is hidden as well (a shown zero if no non-zero part is left). With ``within`` (a column
    such as ``municipality_id``), the same rule also runs down each count column among the rows
    of each area, for a table of sites published next to its area totals. A group applies to
    the rows where all its columns are known (not NA).

    Returns a copy of ``table`` with the count columns as pandas Int64 (NA = suppressed or
    not counted) and ``suppressed_cells``, the number of known counts suppressed per row.

    This is the threshold rule with the usual complementary-suppression heuristic; it makes
    each group of the table safe against subtraction, not against every combination of
    several tables published separately.

    References
    ----------
    OCHA Centre for Humanitarian Data (2019) Guidance Note: Statistical Disclosure Control
    (threshold rule, secondary suppression). IASC (2023) Operational Guidance on Data
    Responsibility in Humanitarian Action. Hundepool, A. et al. (2012) Statistical Disclosure
    Control, Wiley, ch. 4 (cell suppression in tabular data).
    """
    columns = [c for c in rules.count_columns if c in table.columns]
    if within is not None and within not in table.columns:
        raise InputError(f"suppress small counts: no column {within!r} to suppress within.")
    try:
        values = np.column_stack([table[c].to_numpy(dtype=np.float64, na_value=np.nan)
                                  for c in columns]) if columns else np.zeros((len(table), 0))
    except (TypeError, ValueError) as exc:
        raise InputError(f"suppress small counts: count columns {columns} must be numbers "
                         f"({exc}).") from None
    known = ~np.isnan(values)
    bad = known & ((values < 0) | (values != np.round(values)))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InputError(f"suppress small counts: {columns[col]} is {values[row, col]} in row "
                         f"{table.index[row]!r}; counts are whole numbers ≥ 0.")
    small = known & (values >= 1) & (values < rules.min_count)
    hidden = ~known | small
    position = {c: j for j, c in enumerate(columns)}
    groups = [(position[g.total], np.array([position[p] for p in g.parts], dtype=np.intp))
              for g in rules.additive_groups
              if g.total in position and all(p in position for p in g.parts)]
    for total, parts in groups:
        hidden[np.ix_(small[:, total], parts)] = True
    area = pd.factorize(table[within])[0] if within is not None else None
    changed = True
    while changed:
        changed = _secondary_in_groups(values, hidden, groups)
        if area is not None:
            changed = _secondary_within(values, hidden, area) or changed
    out = table.copy()
    for j, column in enumerate(columns):
        out[column] = pd.arrays.IntegerArray(np.where(hidden[:, j], 0, values[:, j])
                                             .astype(np.int64), hidden[:, j])
    out["suppressed_cells"] = (hidden & known).sum(axis=1).astype(np.int64)
    return out


def _count(latest: pd.DataFrame, column: str) -> np.ndarray:
    return latest[column].to_numpy(dtype=np.float64, na_value=np.nan)


def aggregate_sites(latest: pd.DataFrame, by: str | None) -> pd.DataFrame:
    """Occupancy counts of the sites' latest state, per site (``by=None``) or summed per
    ``municipality_id`` / ``department_code``, with no free text.

    Counts (from the latest report): ``people``, ``households``, the eight sex × age bands,
    ``female_total``, ``male_total`` (sums of the bands) and ``disabled``; ``sites_reporting``
    (sites with a report). Per site the index is ``latest``'s, with ``site_id`` first; a site
    without a report has NA counts. Per area the index is the area code, with ``sites``,
    ``sites_reporting``, ``last_report_at`` (latest) and the sums over reporting sites (NA
    where none reports). An area's bands (and their totals) or ``disabled`` are NA unless every
    reporting site with people counted them, so that the parts always add up to ``people``.
    """
    required = ["site_id", *SITE_COUNTS.values()]
    if by is not None:
        required.append(by)
    missing = [c for c in required if c not in latest.columns]
    if missing:
        raise InputError(f"aggregate sites: columns {missing} are missing from the sites' "
                         "latest state.")
    counts = {name: _count(latest, column) for name, column in SITE_COUNTS.items()}
    counts["female_total"] = np.sum([counts[b] for b in FEMALE_BANDS], axis=0)
    counts["male_total"] = np.sum([counts[b] for b in MALE_BANDS], axis=0)
    reporting = ~np.isnan(counts["people"])
    order = ["people", "households", *BANDS, "female_total", "male_total", "disabled"]
    if by is None:
        out = pd.DataFrame({"site_id": latest["site_id"].astype(str)}, index=latest.index)
        for name in order:
            out[name] = pd.arrays.IntegerArray(
                np.nan_to_num(counts[name]).astype(np.int64), np.isnan(counts[name]))
        out["sites_reporting"] = reporting.astype(np.int64)
        return out

    codes, areas = pd.factorize(latest[by], sort=True)
    if (codes < 0).any():
        where = list(latest["site_id"][codes < 0][:5])
        raise InputError(f"aggregate sites: sites {where} have no {by}.")
    size = len(areas)

    def per_area(values: np.ndarray) -> np.ndarray:
        return np.bincount(codes, weights=values, minlength=size)

    with_people = reporting & (np.nan_to_num(counts["people"]) > 0)
    incomplete = {
        "bands": per_area((with_people & np.isnan(counts["female_total"])
                           | with_people & np.isnan(counts["male_total"])).astype(np.float64)),
        "disabled": per_area((with_people & np.isnan(counts["disabled"])).astype(np.float64)),
    }
    sites_reporting = per_area(reporting.astype(np.float64))
    out = pd.DataFrame(index=pd.Index(areas, name=by))
    out["sites"] = per_area(np.ones(len(latest))).astype(np.int64)
    out["sites_reporting"] = sites_reporting.astype(np.int64)
    for name in order:
        unknown = sites_reporting == 0
        if name in (*BANDS, "female_total", "male_total"):
            unknown = unknown | (incomplete["bands"] > 0)
        elif name == "disabled":
            unknown = unknown | (incomplete["disabled"] > 0)
        total = per_area(np.where(reporting, np.nan_to_num(counts[name]), 0.0))
        out[name] = pd.arrays.IntegerArray(np.round(total).astype(np.int64), unknown)
    if "last_report_at" in latest.columns:
        out["last_report_at"] = latest.groupby(codes)["last_report_at"].max().to_numpy()
    return out


def _check_export(table: pd.DataFrame, rules: DataSharingRules, columns: list[str]) -> None:
    absent = [c for c in columns if c not in table.columns]
    if absent:
        raise InputError(f"export: columns {absent} are not in the table.")
    unknown = [c for c in columns if c not in rules.columns]
    if unknown:
        raise InputError(f"export: columns {unknown} have no label and HXL hashtag in "
                         f"models/data_sharing.yaml; add them there or leave them out.")
    for column in (c for c in columns if c in rules.count_columns):
        values = table[column].to_numpy(dtype=np.float64, na_value=np.nan)
        if ((values >= 1) & (values < rules.min_count)).any():
            raise InputError(f"export: {column} has counts below {rules.min_count}; run "
                             "suppress_small_counts on the table before exporting it.")


def _iso_dates(table: pd.DataFrame) -> pd.DataFrame:
    """Timestamps as ISO 8601 text (UTC with Z where they carry a time zone)."""
    out = table.copy()
    for column in out.columns:
        dtype = out[column].dtype
        if isinstance(dtype, pd.DatetimeTZDtype):
            out[column] = out[column].dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif pd.api.types.is_datetime64_dtype(dtype):
            out[column] = out[column].dt.strftime("%Y-%m-%dT%H:%M:%S")
    return out


def to_hxl_csv(table: pd.DataFrame, rules: DataSharingRules, columns: list[str]) -> bytes:
    """``columns`` of ``table`` as CSV (UTF-8, RFC 4180): a row of labels (Spanish / English),
    the row of HXL hashtags, then the data; suppressed (NA) cells are empty, timestamps ISO
    8601. Refuses a table whose counts were not suppressed.

    References
    ----------
    HXL Standard 1.1 (hashtag row directly above the data); IETF RFC 4180 (2005) CSV.
    """
    _check_export(table, rules, columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([rules.columns[c].label for c in columns])
    writer.writerow([rules.columns[c].hxl for c in columns])
    _iso_dates(table[columns]).to_csv(buffer, header=False, index=False, na_rep="",
                                      lineterminator="\r\n")
    return buffer.getvalue().encode("utf-8")


def to_geojson(table: gpd.GeoDataFrame, columns: list[str], *,
               rules: DataSharingRules | None = None) -> dict[str, Any]:
    """A GeoJSON FeatureCollection (WGS 84) of ``table``'s geometries with only ``columns`` as
    properties; suppressed (NA) values are null, timestamps ISO 8601. With ``rules``, refuses
    columns it has no hashtag for and counts that were not suppressed.

    References
    ----------
    IETF RFC 7946 (2016) The GeoJSON Format.
    """
    if not isinstance(table, gpd.GeoDataFrame):
        raise InputError("export: GeoJSON needs a GeoDataFrame with geometries.")
    absent = [c for c in columns if c not in table.columns]
    if absent:
        raise InputError(f"export: columns {absent} are not in the table.")
    if rules is not None:
        _check_export(table, rules, columns)
    if table.crs is None:
        raise InputError("export: the table has no CRS; set it (e.g. EPSG:4326) first.")
    if not table.crs.equals("EPSG:4326"):
        table = table.to_crs("EPSG:4326")
    properties = json.loads(pd.DataFrame(_iso_dates(table[columns]))
                            .to_json(orient="records", date_format="iso"))
    geometries = json.loads(table.geometry.to_json())["features"]
    return {"type": "FeatureCollection",
            "features": [{"type": "Feature", "geometry": g["geometry"], "properties": p}
                         for g, p in zip(geometries, properties, strict=True)]}
