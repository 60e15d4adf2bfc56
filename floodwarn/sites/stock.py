"""Pre-positioned relief stock per warehouse and the gap between it and the Sphere needs per
municipality: which warehouse should send how much of what to where, using first the stock that
arrives before the forecast impact.

The allocation is the transportation problem solved by
:func:`floodwarn.risk.evacuation.match_evacuation` (Hitchcock 1941), reused item by item.
"""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd

from floodwarn.errors import InputError
from floodwarn.io.gis_data import EL_SALVADOR_BBOX
from floodwarn.risk.evacuation import match_evacuation
from floodwarn.sites.profiles import THOUSANDS_GROUPS, source_bytes

#: Stock items and the column of the needs per municipality (:func:`floodwarn.sites.needs.
#: area_needs`) each must cover. Water is moved for the planning days, not for one day.
ITEM_NEEDS: dict[str, str] = {
    "water_l": "water_l_planning",
    "hygiene_kits": "hygiene_kits",
    "menstrual_hygiene_kits": "menstrual_hygiene_kits",
    "nfi_kits": "nfi_kits",
    "emergency_shelter_kits": "emergency_shelter_kits",
}

STOCK_COLUMNS = ("warehouse_id", "name", "lon", "lat", "item", "quantity", "lead_time_h")
#: Spanish headers accepted for the stock table (matched without accents or case).
STOCK_ALIASES = {"bodega": "warehouse_id", "nombre": "name", "articulo": "item",
                 "cantidad": "quantity", "tiempo_entrega_h": "lead_time_h",
                 "longitud": "lon", "latitud": "lat"}
#: A stock file larger than this is not a warehouse list (bytes).
MAX_STOCK_BYTES = 5_000_000
#: Problems listed in one error before the rest are only counted.
MAX_LISTED_PROBLEMS = 50
#: Farther than any road trip inside El Salvador (km): every warehouse may serve every
#: municipality, distance only ranks them.
ANY_DISTANCE_KM = 2_000.0


def _header(name: object) -> str:
    plain = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()
    key = plain.strip().lower().replace(" ", "_")
    return STOCK_ALIASES.get(key, key)


def read_stock(source: str | Path | bytes) -> pd.DataFrame:
    """Read the warehouses' stock from a CSV file (path) or its bytes.

    One row per warehouse and item: ``warehouse_id``, ``name``, ``lon``, ``lat`` (WGS 84,
    inside El Salvador), ``item`` (one of :data:`ITEM_NEEDS`), ``quantity`` (≥ 0, litres for
    water, units for kits), ``lead_time_h`` (hours from the order until it can be delivered,
    ≥ 0). Spanish headers are accepted: bodega, nombre, articulo, cantidad, tiempo_entrega_h
    (and longitud, latitud). Comma or semicolon separated, UTF-8. Every bad row is named with
    its line and column in one :class:`~floodwarn.errors.InputError`, so nothing is half-read.
    A warehouse's name and location must agree across its rows; an item appears once per
    warehouse.
    """
    where = "stock" if isinstance(source, bytes) else str(source)
    raw = source_bytes(source, what="stock file")
    if len(raw) > MAX_STOCK_BYTES:
        raise InputError(f"{where}: {len(raw)} bytes is too large for a stock table "
                         f"(at most {MAX_STOCK_BYTES}).")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: not UTF-8 text ({exc}); save the CSV as UTF-8.") from None
    first_line = text.split("\n", 1)[0]
    separator = ";" if first_line.count(";") > first_line.count(",") else ","
    try:
        table = pd.read_csv(io.StringIO(text), sep=separator, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{where}: not a readable CSV table ({exc}).") from None
    table.columns = [_header(c) for c in table.columns]
    missing = [c for c in STOCK_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"{where}: columns {missing} are missing; a stock table has "
                         f"{', '.join(STOCK_COLUMNS)} (or bodega, nombre, articulo, cantidad, "
                         "tiempo_entrega_h).")
    twice = sorted(set(table.columns[table.columns.duplicated()]))
    if twice:
        raise InputError(f"{where}: columns {twice} appear twice (perhaps under their English "
                         "and Spanish names).")
    table = table[list(STOCK_COLUMNS)].apply(lambda column: column.str.strip())
    number = {c: pd.to_numeric(table[c].str.replace(",", ".", regex=False), errors="coerce")
              for c in ("lon", "lat", "quantity", "lead_time_h")}
    grouped = table["quantity"].str.fullmatch(THOUSANDS_GROUPS)
    kits = table["item"] != "water_l"
    west, south, east, north = EL_SALVADOR_BBOX
    checks: list[tuple[str, pd.Series, str]] = [
        ("warehouse_id", table["warehouse_id"] == "", "is empty; give the warehouse an id"),
        ("name", table["name"] == "", "is empty; give the warehouse's name"),
        ("quantity", grouped, "is ambiguous: a thousands separator or a decimal? Write the "
         "number without separators (1500)"),
        ("quantity", ~grouped & kits & number["quantity"].notna()
         & (number["quantity"] % 1 != 0), "is not a whole number of kits"),
        ("lon", ~number["lon"].between(west, east),
         f"must be a longitude inside El Salvador ({west}…{east})"),
        ("lat", ~number["lat"].between(south, north),
         f"must be a latitude inside El Salvador ({south}…{north})"),
        ("item", ~table["item"].isin(list(ITEM_NEEDS)),
         f"must be one of {', '.join(ITEM_NEEDS)}"),
        ("quantity", ~(number["quantity"] >= 0) | ~np.isfinite(number["quantity"]),
         "must be a number ≥ 0"),
        ("lead_time_h", ~(number["lead_time_h"] >= 0) | ~np.isfinite(number["lead_time_h"]),
         "must be a number of hours ≥ 0"),
    ]
    problems: list[str] = []
    for column, bad, rule in checks:
        for i in np.flatnonzero(bad.to_numpy()):
            problems.append(f"line {i + 2}, column {column}: {table[column].iloc[i]!r} {rule}")
    repeated = table.duplicated(["warehouse_id", "item"], keep="first") & \
        (table["warehouse_id"] != "")
    for i in np.flatnonzero(repeated.to_numpy()):
        problems.append(f"line {i + 2}, column item: warehouse {table['warehouse_id'].iloc[i]!r}"
                        f" lists {table['item'].iloc[i]!r} again; give each item once per "
                        "warehouse")
    located = pd.DataFrame({"warehouse_id": table["warehouse_id"], "name": table["name"],
                            "lon": number["lon"], "lat": number["lat"]})
    first = located.groupby("warehouse_id", sort=False).transform("first")
    for column in ("name", "lon", "lat"):
        differs = (located[column] != first[column]) & located[column].notna()
        for i in np.flatnonzero(differs.to_numpy()):
            problems.append(f"line {i + 2}, column {column}: warehouse "
                            f"{table['warehouse_id'].iloc[i]!r} has {table[column].iloc[i]!r}"
                            f" here but {first[column].iloc[i]!r} on an earlier line; one "
                            "warehouse has one name and one location")
    if problems:
        problems.sort(key=lambda p: int(p.split(",", 1)[0].removeprefix("line ")))
        listed = "; ".join(problems[:MAX_LISTED_PROBLEMS])
        more = len(problems) - MAX_LISTED_PROBLEMS
        raise InputError(f"{where}: {len(problems)} problem(s), nothing imported — {listed}"
                         + (f"; and {more} more" if more > 0 else "") + ".")
    return pd.DataFrame({
        "warehouse_id": table["warehouse_id"].astype(str), "name": table["name"].astype(str),
        "lon": number["lon"].astype(np.float64), "lat": number["lat"].astype(np.float64),
        "item": table["item"].astype(str), "quantity": number["quantity"].astype(np.float64),
        "lead_time_h": number["lead_time_h"].astype(np.float64)})


def _allocate(need: np.ndarray, need_xy: np.ndarray, supply: np.ndarray,
              supply_xy: np.ndarray, allowed: np.ndarray | None = None
              ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """One transportation problem over the municipalities with need and the warehouses
    ``allowed`` (all when None); updates ``need`` and ``supply`` in place and returns the flows
    as (municipality, warehouse, quantity, distance_km) in the caller's indices."""
    warehouses = np.flatnonzero(supply > 0) if allowed is None else \
        allowed[supply[allowed] > 0]
    places = np.flatnonzero(need > 0)
    if not warehouses.size or not places.size:
        return []
    plan = match_evacuation(need_xy[places], need[places], supply_xy[warehouses],
                            supply[warehouses], max_distance_km=ANY_DISTANCE_KM,
                            candidates=warehouses.size)
    to, source = places[plan.settlement], warehouses[plan.centre]
    np.subtract.at(need, to, plan.people)
    np.subtract.at(supply, source, plan.people)
    np.clip(need, 0, None, out=need)
    np.clip(supply, 0, None, out=supply)
    return [(to, source, plan.people, plan.distance_km)]


def _allocate_item(need: np.ndarray, need_xy: np.ndarray, hours: np.ndarray,
                   supply: np.ndarray, supply_xy: np.ndarray, lead_h: np.ndarray,
                   ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Stock that arrives in time first, most urgent municipalities first, then the rest.

    The warehouses in time for a municipality (lead time ≤ its hours to impact) form a set that
    grows with the hours to impact, so serving municipalities in order of urgency — each from
    its in-time set, nearest first — delivers the most stock in time (the greedy rule is exact
    on nested sets); municipalities without a time to impact come last with every warehouse.
    What is still missing is then sent from any warehouse, nearest first.
    """
    flows = []
    by_lead = np.argsort(lead_h, kind="stable")
    # Number of warehouses (in lead-time order) each municipality can get in time.
    reachable = np.searchsorted(lead_h[by_lead], np.where(np.isnan(hours), np.inf, hours),
                                side="right")
    for k in np.unique(reachable[reachable > 0]):
        urgent = np.where(reachable == k, need, 0.0)
        flows += _allocate(urgent, need_xy, supply, supply_xy, by_lead[:k])
        need[reachable == k] = urgent[reachable == k]
    flows += _allocate(need, need_xy, supply, supply_xy)
    return flows


def stock_gaps(needs_by_municipality: pd.DataFrame, municipality_xy_m: pd.DataFrame,
               stock: pd.DataFrame, *, hours_to_impact: pd.Series | None = None,
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Allocate each item's warehouse stock to the municipalities' needs and report the gaps.

    ``needs_by_municipality`` is :func:`floodwarn.sites.needs.area_needs` by
    ``municipality_id`` (index); the need for each item is its column in :data:`ITEM_NEEDS`,
    rounded up to whole units. ``municipality_xy_m`` gives each municipality's point (index
    municipality_id; ``x``, ``y`` in projected metres), ``stock`` the :func:`read_stock` table
    with ``x``, ``y`` (same projection) added. ``hours_to_impact`` (by municipality_id; NA or
    absent = no forecast impact) are the hours until flooding there.

    Each item is a transportation problem (warehouses supply, municipalities demand, cost =
    straight-line distance), solved by :func:`floodwarn.risk.evacuation.match_evacuation`. With
    hours to impact, stock whose lead time is within a municipality's hours to impact is used
    first, most urgent municipalities first (:func:`_allocate_item`); this maximises the
    quantity that arrives in time, then distance decides. A single problem with a penalty on
    late pairs would also trade distance between the urgency classes, but the solver's cost is
    the distance between points, so the penalty is applied as this ordering.

    Returns ``(gaps, moves)``:

    - ``gaps``: one row per municipality and item: ``municipality_id``, ``item``, ``need``,
      ``allocated``, ``allocated_in_time`` (NA where there is no time to impact), ``gap`` =
      need − allocated, ``hours_to_impact``;
    - ``moves``: ``item``, ``warehouse_id``, ``warehouse_name``, ``municipality_id``,
      ``quantity``, ``distance_km``, ``lead_time_h``, ``arrives_before_impact`` (lead time ≤
      hours to impact; NA without a time to impact).

    References
    ----------
    Hitchcock, F.L. (1941) The distribution of a product from several sources to numerous
    localities. J. Math. Phys. 20, 224-230 (via ``match_evacuation``).
    """
    missing = [c for c in ITEM_NEEDS.values() if c not in needs_by_municipality.columns]
    if missing:
        raise InputError(f"stock gaps: the needs lack columns {missing}; pass area_needs' "
                         "output by municipality_id.")
    for column in ("x", "y"):
        if column not in municipality_xy_m.columns:
            raise InputError(f"stock gaps: municipality_xy_m has no column {column!r} "
                             "(projected metres).")
    lacking = [c for c in (*STOCK_COLUMNS, "x", "y") if c not in stock.columns]
    if lacking:
        raise InputError(f"stock gaps: the stock table lacks {lacking}; add x, y (projected "
                         "metres) to read_stock's table.")
    unknown_items = sorted(set(stock["item"]) - set(ITEM_NEEDS))
    if unknown_items:
        raise InputError(f"stock gaps: unknown items {unknown_items}; use {list(ITEM_NEEDS)}.")
    places = needs_by_municipality.index.astype(str)
    unlocated = places.difference(municipality_xy_m.index.astype(str))
    if len(unlocated):
        raise InputError(f"stock gaps: municipalities {list(unlocated[:5])} have needs but no "
                         "point in municipality_xy_m.")
    located = municipality_xy_m.set_axis(municipality_xy_m.index.astype(str))
    place_xy = located.loc[places, ["x", "y"]].to_numpy(np.float64)
    hours = np.full(len(places), np.nan) if hours_to_impact is None else \
        hours_to_impact.set_axis(hours_to_impact.index.astype(str)).reindex(places) \
        .to_numpy(np.float64, na_value=np.nan)

    warehouses = stock.drop_duplicates("warehouse_id").set_index("warehouse_id")
    gap_tables, move_tables = [], []
    for item, need_column in ITEM_NEEDS.items():
        need = np.ceil(np.round(needs_by_municipality[need_column].to_numpy(
            np.float64, na_value=0.0), 6))
        rows = stock[stock["item"] == item]
        supply = rows["quantity"].to_numpy(np.float64).copy()
        lead_h = rows["lead_time_h"].to_numpy(np.float64)
        remaining = need.copy()
        passes = _allocate_item(remaining, place_xy, hours, supply,
                                rows[["x", "y"]].to_numpy(np.float64), lead_h)
        to = np.concatenate([f[0] for f in passes]) if passes else np.zeros(0, np.int64)
        source = np.concatenate([f[1] for f in passes]) if passes else np.zeros(0, np.int64)
        quantity = np.concatenate([f[2] for f in passes]) if passes else np.zeros(0)
        distance = np.concatenate([f[3] for f in passes]) if passes else np.zeros(0)
        in_time = lead_h[source] <= hours[to]
        move_tables.append(pd.DataFrame({
            "item": item, "warehouse_id": rows["warehouse_id"].to_numpy()[source],
            "municipality_id": places[to], "quantity": quantity, "distance_km": distance,
            "lead_time_h": lead_h[source],
            "arrives_before_impact": pd.arrays.BooleanArray(in_time, np.isnan(hours[to]))}))
        allocated = need - remaining
        on_time = np.bincount(to[in_time], weights=quantity[in_time], minlength=len(places))
        gap_tables.append(pd.DataFrame({
            "municipality_id": places, "item": item, "need": need, "allocated": allocated,
            "allocated_in_time": pd.arrays.FloatingArray(on_time.astype(np.float64),
                                                         np.isnan(hours)),
            "gap": remaining, "hours_to_impact": hours}))
    gaps = pd.concat(gap_tables, ignore_index=True)
    flows = pd.concat(move_tables, ignore_index=True)
    # The in-time and the late pass may use the same pair; report one move per pair (its
    # distance, lead time and timeliness are the pair's own).
    keys = ["item", "warehouse_id", "municipality_id"]
    moves = flows.drop_duplicates(keys).set_index(keys).sort_index()
    moves["quantity"] = flows.groupby(keys)["quantity"].sum()
    moves = moves.reset_index()
    moves.insert(2, "warehouse_name", moves["warehouse_id"].map(warehouses["name"]).astype(str))
    moves["warehouse_id"] = moves["warehouse_id"].astype(str)
    return gaps, moves
