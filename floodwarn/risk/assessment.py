"""One forecast's risk picture: settlement levels, centre safety, evacuation and summaries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from floodwarn.errors import InputError
from floodwarn.inundation.depth import Inundation
from floodwarn.parameters import LEVELS, LevelRules
from floodwarn.risk.centres import centre_safety
from floodwarn.risk.evacuation import EvacuationPlan, match_evacuation
from floodwarn.risk.settlements import (
    SettlementFootprints,
    ensemble_levels,
    footprint_flooding,
    settlement_flooding,
    warning_levels,
)
from floodwarn.terrain.model import TerrainModel


@dataclass(frozen=True, eq=False)
class RiskAssessment:
    settlements: gpd.GeoDataFrame  # input columns + metrics, level, level_reason, evacuees
    centres: gpd.GeoDataFrame  # input columns + status, occupancy, metrics
    evacuation: pd.DataFrame  # settlement_id, centre_id (empty: unmet), people, distance_km
    summary: dict[str, Any]


def assess_risk(terrain: TerrainModel, flood: Inundation, reach_return_period: np.ndarray,
                settlements: gpd.GeoDataFrame, centres: gpd.GeoDataFrame,
                rules: LevelRules, *,
                member_levels: np.ndarray | None = None,
                footprints: SettlementFootprints | None = None) -> RiskAssessment:
    """Levels of every settlement, safety of every centre, evacuation of the people exposed in
    settlements at ``rules.evacuation.levels`` to safe centres with room, and summaries per
    municipality and department (keyed by ``municipality_id`` and ``department_code``).

    ``flood`` (the representative member's map) gives the metrics and centre safety. With
    ``member_levels`` — (member, settlement) the level of each settlement on each ensemble
    member's own flood map (:func:`floodwarn.ensemble.run_member`) — the settlement's level
    follows :func:`ensemble_levels`; without, the rules apply to ``flood`` directly.
    ``footprints`` may pass the settlements' footprints already found on ``flood.water``.
    """
    if footprints is None:
        metrics = settlement_flooding(terrain, flood, reach_return_period, settlements, rules)
    else:
        metrics = footprint_flooding(footprints, flood, terrain.catchment_id,
                                     reach_return_period, rules, index=settlements.index)
    towns = settlements.join(metrics)
    if member_levels is None:
        level, reason = warning_levels(metrics, rules)
        for k, lv in enumerate(LEVELS[1:], start=1):
            towns[f"prob_{lv}"] = (np.vectorize(LEVELS.index)(level) >= k).astype(float)
    else:
        if member_levels.shape[1:] != (len(settlements),):
            raise InputError(f"member levels {member_levels.shape} do not match "
                             f"{len(settlements)} settlements.")
        level, reason, probs = ensemble_levels(np.asarray(member_levels, dtype=object), rules)
        for name, values in probs.items():
            towns[name] = values
    towns["level"] = level
    towns["level_reason"] = reason
    towns["evacuees"] = np.where(np.isin(level, rules.evacuation.levels),
                                 towns["people_exposed"], 0).astype(np.int64)

    safety = centre_safety(terrain, flood, centres, rules.centres)
    shelters = centres.join(safety)
    return plan_evacuation(towns, shelters, rules, crs=terrain.grid.crs)


def plan_evacuation(towns: gpd.GeoDataFrame, shelters: gpd.GeoDataFrame, rules: LevelRules,
                    *, crs: str) -> RiskAssessment:
    """Match ``towns`` (with ``evacuees``) to safe ``shelters`` (with ``status``,
    ``shelter``, ``capacity``) in the projected ``crs``, and summarise. Planners rerun this
    with changed capacities (``floodwarn forecast evacuate``)."""
    towns = towns.copy()
    shelters = shelters.copy()
    usable = (shelters["status"] == "safe") & shelters["shelter"].astype(bool)
    capacity = np.where(usable, shelters["capacity"].to_numpy(np.float64), 0.0)
    plan = match_evacuation(_xy(towns, crs), towns["evacuees"].to_numpy(np.float64),
                            _xy(shelters, crs), capacity,
                            max_distance_km=rules.evacuation.max_distance_km,
                            candidates=rules.evacuation.candidates_per_settlement)
    shelters["occupancy"] = np.round(plan.occupancy).astype(np.int64)
    towns["unmet_evacuees"] = np.round(plan.unmet).astype(np.int64)
    evacuation = _evacuation_table(plan, towns, shelters)
    return RiskAssessment(settlements=towns, centres=shelters, evacuation=evacuation,
                          summary=_summaries(towns, shelters))


def _xy(frame: gpd.GeoDataFrame, crs: str) -> np.ndarray:
    points = frame.geometry.to_crs(crs).representative_point()
    return np.column_stack([points.x.to_numpy(), points.y.to_numpy()])


def _evacuation_table(plan: EvacuationPlan, towns: gpd.GeoDataFrame,
                      shelters: gpd.GeoDataFrame) -> pd.DataFrame:
    moves = pd.DataFrame({
        "settlement_id": towns["id"].to_numpy()[plan.settlement],
        "centre_id": shelters["id"].to_numpy()[plan.centre].astype(str),
        "people": np.round(plan.people).astype(np.int64),
        "distance_km": np.round(plan.distance_km, 3),
    })
    unmet = np.flatnonzero(plan.unmet > 0)
    left = pd.DataFrame({"settlement_id": towns["id"].to_numpy()[unmet], "centre_id": "",
                         "people": np.round(plan.unmet[unmet]).astype(np.int64),
                         "distance_km": np.nan})
    return pd.concat([moves, left], ignore_index=True).sort_values(
        ["settlement_id", "centre_id"], ignore_index=True)


def _summaries(towns: gpd.GeoDataFrame, shelters: gpd.GeoDataFrame) -> dict[str, Any]:
    """Totals, and figures per municipality and per department keyed by id — never by name,
    which municipalities share (El Rosario ×3): ``by_municipality`` by ``municipality_id``
    (geoBoundaries shapeID) with its official ``name``, ``department`` and
    ``department_code``; ``by_department`` by ``department_code`` (ISO 3166-2) with its
    ``name``."""

    def figures(group: pd.DataFrame, centres_here: pd.DataFrame) -> dict[str, Any]:
        return {
            "highest_level": max(group["level"], key=LEVELS.index),
            "people_exposed_by_level": {
                lv: int(group.loc[group["level"] == lv, "people_exposed"].sum())
                for lv in LEVELS},
            "settlements_by_level": {lv: int((group["level"] == lv).sum()) for lv in LEVELS},
            "evacuees": int(group["evacuees"].sum()),
            "unmet_evacuees": int(group["unmet_evacuees"].sum()),
            "centres_unsafe": int((centres_here["status"] == "unsafe").sum()),
            "centres_at_risk": int((centres_here["status"] == "at_risk").sum()),
        }

    # The centres grouped once, not filtered again for every place.
    no_centres = shelters.iloc[:0]
    centres_of_muni = dict(tuple(shelters.groupby("municipality_id", sort=False)))
    centres_of_dept = dict(tuple(shelters.groupby("department_code", sort=False)))
    by_municipality: dict[str, Any] = {}
    for muni, group in towns.groupby("municipality_id", sort=True):
        first = group.iloc[0]
        by_municipality[str(muni)] = {
            "name": str(first["municipality"]), "department": str(first["department"]),
            "department_code": str(first["department_code"]),
            **figures(group, centres_of_muni.get(muni, no_centres))}
    by_department: dict[str, Any] = {}
    for code, group in towns.groupby("department_code", sort=True):
        by_department[str(code)] = {
            "name": str(group["department"].iloc[0]),
            **figures(group, centres_of_dept.get(code, no_centres))}
    return {
        "settlements_by_level": {lv: int((towns["level"] == lv).sum()) for lv in LEVELS},
        "people_exposed": int(towns["people_exposed"].sum()),
        "evacuees": int(towns["evacuees"].sum()),
        "unmet_evacuees": int(towns["unmet_evacuees"].sum()),
        "centres_by_status": {s: int((shelters["status"] == s).sum())
                              for s in ("safe", "at_risk", "unsafe")},
        "by_municipality": by_municipality,
        "by_department": by_department,
    }
