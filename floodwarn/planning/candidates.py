"""Candidate shelter-upgrade actions: the defaults from ``models/shelter_upgrades.yaml`` (every
eligible site enlarged to the Sphere standard, every flooding site flood-proofed) or a
planner's file of actions, validated row by row; and the flood safety of a new site read from
a scenario's depth map with the centre-safety rules of ``models/levels.yaml``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from floodwarn.errors import InputError
from floodwarn.io.gis_data import name_has_keyword
from floodwarn.parameters import CentreSafety, ShelterUpgradeStandard

#: The kinds of action a candidates file may hold.
ACTION_KINDS = ("capacity", "flood_safe", "new_site")
#: Columns of a candidates file; ``name``, ``lon`` and ``lat`` only for new sites.
CANDIDATE_COLUMNS = ("action_id", "kind", "site_id", "places", "cost")


def default_actions(centres: pd.DataFrame, floods: np.ndarray,
                    standard: ShelterUpgradeStandard) -> pd.DataFrame:
    """One capacity upgrade per site of an eligible kind whose name is not an office's
    (``standard.capacity_upgrade``: covered space for ``places`` more people at the Sphere
    area per person) and one
    flood-proofing per such site that is not safe in some scenario
    (``floods``, per site). Columns :data:`CANDIDATE_COLUMNS`."""
    kinds = centres["kind"].astype(str).to_numpy()
    ids = centres["id"].astype(str).to_numpy()
    upgrade = standard.capacity_upgrade
    proofing = standard.flood_proofing
    names = centres["name"].astype(str)
    offices = names.map(lambda n: name_has_keyword(n, standard.exclude_name_keywords)
                        ).to_numpy(bool)
    grow = np.isin(kinds, upgrade.kinds) & ~offices
    proof = np.isin(kinds, proofing.kinds) & ~offices & np.asarray(floods, bool)
    capacity = pd.DataFrame({"action_id": [f"ampliar-{i}" for i in ids[grow]],
                             "kind": "capacity", "site_id": ids[grow],
                             "places": upgrade.places, "cost": upgrade.cost})
    safe = pd.DataFrame({"action_id": [f"proteger-{i}" for i in ids[proof]],
                         "kind": "flood_safe", "site_id": ids[proof], "places": 0,
                         "cost": proofing.cost_per_site})
    return pd.concat([capacity, safe], ignore_index=True)


def read_candidate_actions(path: str | Path, known_sites: set[str]) -> pd.DataFrame:
    """A planner's candidate actions (CSV): ``action_id`` (unique), ``kind`` (capacity,
    flood_safe or new_site), ``site_id`` (a centre of the scenarios for capacity and
    flood_safe; a new id for new_site), ``places`` (> 0 for capacity and new_site),
    ``cost`` (≥ 0), and for new sites ``name``, ``lon``, ``lat`` (WGS 84). Every bad row is
    named in one error, so nothing is half-read."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype={"action_id": str, "site_id": str, "kind": str})
    except FileNotFoundError:
        raise InputError(f"{path}: no such candidates file.") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable CSV ({exc}).") from None
    missing = [c for c in CANDIDATE_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"{path}: columns {missing} are missing; a candidates file has "
                         f"{', '.join(CANDIDATE_COLUMNS)} (and name, lon, lat for new sites).")
    problems: list[str] = []
    places = pd.to_numeric(table["places"], errors="coerce")
    cost = pd.to_numeric(table["cost"], errors="coerce")
    new = table["kind"] == "new_site"
    if new.any():
        for column in ("name", "lon", "lat"):
            if column not in table.columns:
                raise InputError(f"{path}: new_site rows need a {column!r} column.")
    lon = pd.to_numeric(table.get("lon"), errors="coerce") if new.any() else None
    lat = pd.to_numeric(table.get("lat"), errors="coerce") if new.any() else None
    seen: set[str] = set()
    for i, row in table.iterrows():
        line = int(str(i)) + 2  # the header is line 1
        where = f"line {line} ({row['action_id']})"
        if pd.isna(row["action_id"]) or row["action_id"] in seen:
            problems.append(f"{where}: action_id missing or repeated")
        seen.add(str(row["action_id"]))
        kind = row["kind"]
        if kind not in ACTION_KINDS:
            problems.append(f"{where}: kind {kind!r} is not one of {', '.join(ACTION_KINDS)}")
            continue
        if not (cost[i] >= 0):
            problems.append(f"{where}: cost {row['cost']!r} must be a number ≥ 0")
        if kind in ("capacity", "new_site") and not (places[i] > 0):
            problems.append(f"{where}: places {row['places']!r} must be a number > 0")
        site = str(row["site_id"])
        if kind != "new_site" and site not in known_sites:
            problems.append(f"{where}: site {site!r} is not a collective centre of these "
                            "scenarios")
        if kind == "new_site":
            if site in known_sites:
                problems.append(f"{where}: new site id {site!r} is already an existing centre")
            assert lon is not None and lat is not None
            if not (-180 <= lon[i] <= 180 and -90 <= lat[i] <= 90):
                problems.append(f"{where}: lon/lat {row.get('lon')!r}, {row.get('lat')!r} "
                                "are not WGS 84 degrees")
    if problems:
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise InputError(f"{path}: {len(problems)} bad rows: {shown}{more}.")
    table["places"] = places.fillna(0).astype(np.int64)
    table["cost"] = cost.astype(np.float64)
    return table


def site_status_from_depth(depth_m: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                           cellsize_m: float, rules: CentreSafety) -> np.ndarray:
    """Safety of sites at grid cells ``(rows, cols)`` of a depth map, by the centre-safety
    rules (see :func:`floodwarn.risk.centres.centre_safety`): unsafe when water within the
    site radius reaches ``unsafe_site_depth_m`` or within the margin ``unsafe_margin_depth_m``,
    at risk when the margin reaches ``at_risk_margin_depth_m``. Cells off the map are
    'unsafe' (a site the model cannot see is never a safe destination)."""
    depth = np.nan_to_num(np.asarray(depth_m, np.float64), nan=0.0)
    n_rows, n_cols = depth.shape
    reach = int(np.ceil(rules.margin_m / cellsize_m))
    dr, dc = np.mgrid[-reach:reach + 1, -reach:reach + 1]
    distance = np.hypot(dr, dc) * cellsize_m
    status = np.full(len(rows), "unsafe", dtype=object)
    for k, (r, c) in enumerate(zip(rows, cols, strict=True)):
        if not (0 <= r < n_rows and 0 <= c < n_cols):
            continue
        rr, cc = r + dr, c + dc
        inside = (rr >= 0) & (rr < n_rows) & (cc >= 0) & (cc < n_cols)
        values = np.zeros(dr.shape)
        values[inside] = depth[rr[inside], cc[inside]]
        site = values[distance <= max(rules.site_radius_m, cellsize_m / 2)].max()
        margin = values[distance <= rules.margin_m].max()
        if site >= rules.unsafe_site_depth_m or margin >= rules.unsafe_margin_depth_m:
            status[k] = "unsafe"
        elif margin >= rules.at_risk_margin_depth_m:
            status[k] = "at_risk"
        else:
            status[k] = "safe"
    return status
