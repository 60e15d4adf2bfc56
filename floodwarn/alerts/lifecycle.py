"""Which CAP messages a new forecast calls for, given the warnings in force.

One warning per municipality (its local emergency committee) while its highest settlement
level is amarilla or above. Against the warnings in force: a new one → Alert; a raised or
lowered level → Update referencing the message it replaces; danger gone → Cancel; unchanged →
nothing new (committees are not woken twice for the same news) — unless the new forecast keeps
the danger beyond the expiry of the message in force: then an Update extends it, so that a
warning never lapses while the forecast still calls for it. A warning whose last message has
expired is no longer in force; danger found again later is a new Alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import geopandas as gpd
import numpy as np

from floodwarn.alerts.cap import Community, MunicipalWarning
from floodwarn.parameters import LEVELS


@dataclass(frozen=True)
class InForce:
    """The last message sent for a municipality's warning still in force."""

    municipality_id: str
    identifier: str
    sender: str
    sent: datetime
    level: str
    expires: datetime | None = None


@dataclass(frozen=True)
class Decision:
    msg_type: str  # Alert, Update or Cancel
    municipality_id: str
    warning: MunicipalWarning | None  # None for Cancel
    previous: InForce | None  # the message an Update or Cancel replaces


def decide(in_force: dict[str, InForce], warnings: dict[str, MunicipalWarning]
           ) -> list[Decision]:
    """The messages to send, in municipality order (see module docstring)."""
    out = []
    for muni in sorted(set(in_force) | set(warnings)):
        old = in_force.get(muni)
        new = warnings.get(muni)
        if new is not None and old is None:
            out.append(Decision("Alert", muni, new, None))
        elif new is not None and old is not None and (
                new.level != old.level
                or (old.expires is not None and new.expires > old.expires)):
            out.append(Decision("Update", muni, new, old))
        elif new is None and old is not None:
            out.append(Decision("Cancel", muni, None, old))
    return out


def municipal_warnings(settlements: gpd.GeoDataFrame, evacuation: object,
                       centres: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame, *,
                       forecast_start: datetime, expires: datetime,
                       min_level: str = "amarilla") -> dict[str, MunicipalWarning]:
    """One warning per municipality whose highest settlement level is ``min_level`` or above,
    naming its communities at that level or above with depth, people, time left and shelters.

    ``settlements`` and ``centres`` are a risk assessment's tables (with ``municipality_id``),
    ``evacuation`` its plan (settlement_id, centre_id, people), ``municipalities`` the
    polygons (``id``, ``name``, ``department``, ``department_code``).
    """
    import pandas as pd

    plan = pd.DataFrame(evacuation)
    names = dict(zip(centres["id"].astype(str), centres["name"], strict=True))
    polygons = municipalities.set_index("id")
    rank = settlements["level"].map(LEVELS.index)
    floor = LEVELS.index(min_level)
    out: dict[str, MunicipalWarning] = {}
    for muni, group in settlements[rank >= floor].groupby("municipality_id", sort=True):
        top = max(group["level"], key=LEVELS.index)
        communities = []
        for row in group.sort_values("risk_score", ascending=False).itertuples():
            moves = plan[plan["settlement_id"] == row.id]
            placed = moves[moves["centre_id"].astype(str) != ""]
            shelters = tuple((str(names.get(str(c), c)), int(p)) for c, p in
                             zip(placed["centre_id"].astype(str), placed["people"], strict=True))
            hours = row.hours_to_flooding
            communities.append(Community(
                name=str(row.name), level=str(row.level), max_depth_m=float(row.max_depth_m),
                people_exposed=int(row.people_exposed),
                hours_to_flooding=None if hours != hours else float(hours),
                shelters=shelters[:5], unmet=int(getattr(row, "unmet_evacuees", 0))))
        prob_col = f"prob_{top}"
        probability = float(np.max(group[prob_col])) if prob_col in group else None
        area = polygons.loc[muni]
        out[str(muni)] = MunicipalWarning(
            municipality_id=str(muni), municipality=str(area["name"]),
            department=str(area["department"]), department_code=str(area["department_code"]),
            level=top, forecast_start=forecast_start, expires=expires,
            area=area.geometry, communities=tuple(communities), probability=probability)
    return out
