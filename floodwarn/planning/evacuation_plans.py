"""Community evacuation plans: for each municipality, where the people of each settlement at
risk go in the 10-, 25- and 100-year floods, how much of each centre they fill, and how many
are left without a place — a CSV and a printable page per municipality, for the local
emergency committees, who keep them on paper.

The plans are read from a scenario folder (``floodwarn scenarios run --out``): each
return period's ``settlements.gpkg`` (people exposed, evacuees, unmet demand, level),
``centres.gpkg`` (name, kind, capacity, occupancy) and ``evacuation.csv`` (settlement →
centre flows, an empty centre for people with no place), as the scenario's evacuation
matching (:mod:`floodwarn.risk.evacuation`) left them. Nothing is recomputed: the pages show
the scenarios' own plan, so they agree with the planner's report and the API.

Municipalities are keyed by their geoBoundaries id, never by name (El Rosario is three
municipalities; San Isidro, El Carmen, San Fernando and San Lorenzo two each).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from floodwarn.errors import DataFileError, InputError
from floodwarn.io.forecast_outputs import CENTRES_FILE, EVACUATION_FILE, SETTLEMENTS_FILE
from floodwarn.logs import get_logger, timed_step
from floodwarn.planning.report import (
    ScenarioFolder,
    annual_chance,
    read_scenario_folder,
    render_page,
    spanish_date,
    write_text_atomic,
)

log = get_logger(__name__)

#: The floods a plan covers by default; the first selects the settlements at risk.
PLAN_RETURN_PERIODS = (10, 25, 100)
#: The page listing every municipality's plan.
INDEX_FILE = "index.html"
#: The file name of settlements that lie in no municipality (outside El Salvador's polygons).
OUTSIDE_MUNICIPALITIES = "sin-municipio"
#: The columns of a municipality's plan CSV (see :func:`evacuation_plan_table`).
PLAN_COLUMNS = (
    "municipality_id", "municipality", "department", "department_code",
    "settlement_id", "settlement", "population",
    "return_period_years", "annual_chance_pct", "level", "people_exposed", "evacuees",
    "centre_id", "centre_name", "centre_kind", "centre_municipality_id", "centre_municipality",
    "distance_km", "people_sent", "centre_capacity", "capacity_share_pct", "centre_occupancy",
    "people_without_place",
)
#: A settlement is at risk when its people are exposed or asked to evacuate.
_SETTLEMENT_COLUMNS = ["id", "name", "population", "municipality_id", "municipality",
                       "department", "department_code", "people_exposed", "evacuees",
                       "unmet_evacuees", "level"]
_CENTRE_COLUMNS = ["id", "name", "kind", "capacity", "municipality_id", "municipality",
                   "occupancy"]


@dataclass(frozen=True)
class EvacuationPlans:
    """The plans of a scenario folder: one row per settlement, flood and destination
    (:data:`PLAN_COLUMNS`), the floods present and those asked for but absent."""

    table: pd.DataFrame
    return_periods: tuple[int, ...]
    missing_return_periods: tuple[int, ...]
    folder: ScenarioFolder


def evacuation_plan_table(scenarios_dir: str | Path, *,
                          return_periods: Sequence[int] = PLAN_RETURN_PERIODS
                          ) -> EvacuationPlans:
    """The evacuation plans of every settlement at risk in the first of ``return_periods``
    (default the 10-year flood: people exposed or evacuees > 0), in each of
    ``return_periods`` the folder has; an error naming the first if it is absent.

    One row per settlement, flood and destination: each centre the scenario's plan sends
    people to, and one row without a centre for the people left without a place (or, when
    the level calls for no evacuation, for the settlement alone). Columns:

    - ``municipality_id`` (geoBoundaries id: the key), ``municipality``, ``department``
      (official names), ``department_code`` (ISO 3166-2);
    - ``settlement_id``, ``settlement`` (name), ``population``;
    - ``return_period_years`` (T), ``annual_chance_pct`` (100/T: the chance of that flood or
      a worse one in any year), ``level`` (warning level in that flood), ``people_exposed``
      and ``evacuees`` (the settlement's totals, repeated on each of its rows for that
      flood);
    - ``centre_id``, ``centre_name``, ``centre_kind`` (school, health_unit, hall, church,
      other), ``centre_municipality_id``, ``centre_municipality`` (where the centre is:
      often another municipality), empty on the no-place row;
    - ``distance_km`` (straight line from the settlement to the centre, km; the road is
      longer), ``people_sent`` (people of this settlement sent there);
    - ``centre_capacity`` (places), ``capacity_share_pct`` (people_sent / centre_capacity ×
      100: the share of the centre this settlement fills), ``centre_occupancy`` (people the
      plan sends there from every settlement: the centre is shared when it exceeds
      people_sent);
    - ``people_without_place`` (evacuees no safe centre within reach could take; only on
      the no-place row, empty on centre rows, so that the column sums to the total).

    ``people_sent`` and ``people_without_place`` of a settlement and flood add up to its
    ``evacuees``. Rows are ordered by municipality id, settlement name, flood, then people
    sent (most first), the no-place row last.
    """
    folder = read_scenario_folder(scenarios_dir)
    wanted = sorted({int(t) for t in return_periods})
    if not wanted or wanted[0] < 1:
        raise InputError(f"return periods {list(return_periods)}: give whole years ≥ 1, "
                         "e.g. 10 25 100.")
    available = folder.return_periods
    selecting = wanted[0]
    if selecting not in available:
        raise InputError(
            f"{folder.path}: no {selecting}-year scenario (rp{selecting}/), which selects the "
            f"settlements of the evacuation plans; the folder has "
            f"{', '.join(f'rp{t}' for t in available)}. Run `floodwarn scenarios run "
            f"--return-periods {' '.join(str(t) for t in sorted({*available, *wanted}))}`.")
    present = tuple(t for t in wanted if t in available)
    missing = tuple(t for t in wanted if t not in available)
    if missing:
        log.warning("scenarios missing from the evacuation plans",
                    extra={"missing": list(missing), "folder": str(folder.path)})
    layers = {t: _read_scenario(folder, t) for t in present}
    towns = layers[selecting][0]
    at_risk = towns.loc[(towns["people_exposed"] > 0) | (towns["evacuees"] > 0), "id"]
    parts = [_plan_rows(*layers[t], at_risk, t) for t in present]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if len(table):
        table = table.assign(
            _name=table["settlement"].map(_sort_key),
            _noplace=table["centre_id"].isna(),
            _people=-table["people_sent"].fillna(0)).sort_values(
            ["municipality_id", "_name", "settlement_id", "return_period_years", "_noplace",
             "_people", "distance_km"], kind="stable").drop(
            columns=["_name", "_noplace", "_people"]).reset_index(drop=True)
    return EvacuationPlans(table=table.reindex(columns=list(PLAN_COLUMNS)),
                           return_periods=present, missing_return_periods=missing,
                           folder=folder)


def write_evacuation_plans(scenarios_dir: str | Path, out_dir: str | Path, *,
                           return_periods: Sequence[int] = PLAN_RETURN_PERIODS,
                           today: date | None = None) -> list[Path]:
    """Write the community evacuation plans of a scenario folder to ``out_dir``: per
    municipality with a settlement at risk in the first of ``return_periods`` (default the
    10-year flood), ``{municipality_id}.csv`` (:func:`evacuation_plan_table`'s columns, UTF-8
    with a byte-order mark so that spreadsheet programs show the accents) and
    ``{municipality_id}.html`` (an A4 page to print: Spanish first, English smaller; the
    municipality's and department's official names; the date; SINTÉTICO / SYNTHETIC when the
    scenarios are; what each return period means), and ``index.html`` listing them.

    Files of municipalities no longer at risk are left as they are: write into an empty
    folder to replace a set. ``today`` dates the pages (default: today). Returns every file
    written, the index last.
    """
    out = Path(out_dir)
    day = today or date.today()
    with timed_step(log, "evacuation_plans", out=str(out)) as fields:
        plans = evacuation_plan_table(scenarios_dir, return_periods=return_periods)
        table = plans.table
        written: list[Path] = []
        entries = []
        common = _page_context(plans, day)
        for municipality_id, rows in table.groupby("municipality_id", sort=False):
            key = str(municipality_id) or OUTSIDE_MUNICIPALITIES
            csv_path = out / f"{key}.csv"
            csv_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = csv_path.with_name(csv_path.name + ".tmp")
            rows.to_csv(tmp, index=False, encoding="utf-8-sig")
            tmp.replace(csv_path)
            first = rows.iloc[0]
            page = render_page("evacuation_plan.html", **common,
                               municipality_id=key, municipality=first["municipality"],
                               department=first["department"],
                               settlements=_settlement_blocks(rows, plans.return_periods),
                               csv_name=csv_path.name)
            html_path = write_text_atomic(out / f"{key}.html", page)
            written += [csv_path, html_path]
            entries.append(_index_entry(key, rows, plans.return_periods))
        entries.sort(key=lambda e: (_sort_key(e["department"]), _sort_key(e["municipality"]),
                                    e["municipality_id"]))
        index = render_page("evacuation_index.html", **common, entries=entries)
        written.append(write_text_atomic(out / INDEX_FILE, index))
        fields.update(municipalities=len(entries),
                      settlements=int(table["settlement_id"].nunique()) if len(table) else 0)
    return written


# --------------------------------------------------------------------------- reading


def _read_scenario(folder: ScenarioFolder, years: int
                   ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """One flood's settlements, centres (no geometry) and evacuation flows."""
    import geopandas as gpd

    rp = folder.scenario(years)
    paths = [rp / SETTLEMENTS_FILE, rp / CENTRES_FILE, rp / EVACUATION_FILE]
    absent = [p.name for p in paths if not p.exists()]
    if absent:
        raise DataFileError(f"{rp}: no {', '.join(absent)}; the scenario run was incomplete or "
                            "had no settlement in its domain; run `floodwarn scenarios run` "
                            "again.")
    towns = pd.DataFrame(gpd.read_file(paths[0], ignore_geometry=True, engine="pyogrio"))
    centres = pd.DataFrame(gpd.read_file(paths[1], ignore_geometry=True, engine="pyogrio"))
    flows = pd.read_csv(paths[2], dtype={"centre_id": str})
    for frame, columns, path in ((towns, _SETTLEMENT_COLUMNS, paths[0]),
                                 (centres, _CENTRE_COLUMNS, paths[1]),
                                 (flows, ["settlement_id", "centre_id", "people",
                                          "distance_km"], paths[2])):
        lacking = [c for c in columns if c not in frame.columns]
        if lacking:
            raise DataFileError(f"{path}: lacks columns {lacking}; it was not written by "
                                "`floodwarn scenarios run` of this version; run it again.")
    towns["id"] = towns["id"].astype(np.int64)
    centres["id"] = centres["id"].astype(str)
    flows["settlement_id"] = flows["settlement_id"].astype(np.int64)
    flows["centre_id"] = flows["centre_id"].fillna("").astype(str).str.strip()
    return towns, centres, flows


def _plan_rows(towns: pd.DataFrame, centres: pd.DataFrame, flows: pd.DataFrame,
               at_risk: pd.Series, years: int) -> pd.DataFrame:
    """One flood's rows of :func:`evacuation_plan_table` for the settlements ``at_risk``."""
    ids = set(at_risk.astype(np.int64))
    places = towns[towns["id"].isin(ids)]
    missing = ids - set(places["id"])
    if missing:
        raise DataFileError(f"rp{years}: settlements {sorted(missing)[:5]} of the first "
                            "scenario are absent; run every return period on the same layers.")
    base = pd.DataFrame({
        "municipality_id": places["municipality_id"].fillna("").astype(str),
        "municipality": places["municipality"], "department": places["department"],
        "department_code": places["department_code"], "settlement_id": places["id"],
        "settlement": places["name"], "population": places["population"].astype(np.int64),
        "return_period_years": years, "annual_chance_pct": round(100.0 / years, 2),
        "level": places["level"], "people_exposed": places["people_exposed"].astype(np.int64),
        "evacuees": places["evacuees"].astype(np.int64),
        "_unmet": places["unmet_evacuees"].astype(np.int64)})
    sent = flows[flows["settlement_id"].isin(ids) & (flows["centre_id"] != "")]
    unknown = set(sent["centre_id"]) - set(centres["id"])
    if unknown:
        raise DataFileError(f"rp{years}: evacuation.csv sends people to centres "
                            f"{sorted(unknown)[:5]} that centres.gpkg lacks; run the scenario "
                            "again.")
    site = centres.set_index("id")
    capacity = site.loc[sent["centre_id"], "capacity"].to_numpy(np.float64)
    people = sent["people"].to_numpy(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(capacity > 0, np.round(100.0 * people / capacity, 1), np.nan)
    destinations = pd.DataFrame({
        "settlement_id": sent["settlement_id"].to_numpy(),
        "centre_id": sent["centre_id"].to_numpy(),
        "centre_name": site.loc[sent["centre_id"], "name"].to_numpy(),
        "centre_kind": site.loc[sent["centre_id"], "kind"].to_numpy(),
        "centre_municipality_id": site.loc[sent["centre_id"], "municipality_id"].to_numpy(),
        "centre_municipality": site.loc[sent["centre_id"], "municipality"].to_numpy(),
        "distance_km": sent["distance_km"].to_numpy(np.float64),
        "people_sent": sent["people"].to_numpy(np.int64),
        "centre_capacity": capacity.astype(np.int64),
        "capacity_share_pct": share,
        "centre_occupancy": site.loc[sent["centre_id"], "occupancy"].to_numpy(np.int64)})
    rows = base.merge(destinations, on="settlement_id", how="inner")
    # The no-place row: people without a place, or the settlement alone when nobody goes.
    alone = base[(base["_unmet"] > 0) | ~base["settlement_id"].isin(
        destinations["settlement_id"])]
    alone = alone.assign(people_without_place=alone["_unmet"])
    table = pd.concat([rows, alone], ignore_index=True).drop(columns="_unmet")
    for column in ("people_sent", "centre_capacity", "centre_occupancy",
                   "people_without_place"):
        table[column] = table[column].astype("Int64")
    return table


# --------------------------------------------------------------------------- pages


def _sort_key(name: Any) -> str:
    """Names compared as a Spanish reader orders them: accents and case ignored."""
    decomposed = unicodedata.normalize("NFKD", str(name).casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _page_context(plans: EvacuationPlans, day: date) -> dict[str, Any]:
    folder = plans.folder
    return {"synthetic": folder.synthetic, "today": spanish_date(day),
            "today_iso": day.isoformat(), "computed": spanish_date(folder.modified.date()),
            "periods": list(plans.return_periods),
            "missing": list(plans.missing_return_periods),
            "selecting": plans.return_periods[0],
            "chances": [annual_chance(t) for t in plans.return_periods],
            "rain_factor": float(folder.record.get("rain_factor", 1.0)),
            "folder_name": folder.path.resolve().name}


def _settlement_blocks(rows: pd.DataFrame, periods: Sequence[int]) -> list[dict[str, Any]]:
    """A municipality's rows grouped for its page: settlement → flood → destinations."""
    blocks = []
    for settlement_id, own in rows.groupby("settlement_id", sort=False):
        first = own.iloc[0]
        floods = []
        for years in periods:
            flood = own[own["return_period_years"] == years]
            if not len(flood):
                continue
            head = flood.iloc[0]
            centres = flood[flood["centre_id"].notna()]
            without = flood["people_without_place"].dropna()
            floods.append({
                "years": years, "level": head["level"],
                "people_exposed": int(head["people_exposed"]),
                "evacuees": int(head["evacuees"]),
                "centres": centres.to_dict("records"),
                "without_place": int(without.sum()) if len(without) else 0,
                "rows": len(centres) + (1 if len(without) else 0)})
        blocks.append({"id": int(str(settlement_id)), "name": first["settlement"],
                       "population": int(first["population"]), "floods": floods})
    return blocks


def _index_entry(municipality_id: str, rows: pd.DataFrame, periods: Sequence[int]
                 ) -> dict[str, Any]:
    """One municipality's line of the index: evacuees and people without a place by flood."""
    first = rows.iloc[0]
    per_flood = rows.drop_duplicates(["settlement_id", "return_period_years"])
    evacuees = per_flood.groupby("return_period_years")["evacuees"].sum()
    without = rows.groupby("return_period_years")["people_without_place"].sum()
    return {"municipality_id": municipality_id, "municipality": first["municipality"],
            "department": first["department"],
            "settlements": int(rows["settlement_id"].nunique()),
            "evacuees": [int(evacuees.get(t, 0)) for t in periods],
            "without_place": [int(without.get(t, 0)) for t in periods]}
