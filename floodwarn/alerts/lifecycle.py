"""Which CAP messages a new forecast calls for, given the warnings in force.

One warning per municipality (its local emergency committee) while its highest settlement
level is amarilla or above. Against the warnings in force: a new one → Alert; a raised or
lowered level → Update referencing the message it replaces; danger gone → Cancel; a warning
whose last message has expired is no longer in force, and danger found again later is a new
Alert.

At the same level a committee is woken again only when what it acts on changed: a CAP Update
"updates and supersedes the earlier message(s) identified in <references>" (OASIS CAP 1.2
§3.2.1 msgType), so it goes out when the message in force has become wrong in a way that
changes what the committee does — who to warn, where to send people, how bad, how soon —
and not for every new figure. The forecast is compared with the :func:`material_facts` of the
*last message sent* (``InForce.facts``), not with the previous forecast, so slow drifts add
up until they matter, and a figure that wobbles across a threshold sends one message, not one
per run.

=============================================  =======  ====================================
Same level, against the message in force       Sends    Why
=============================================  =======  ====================================
a community not named before                   Update   new people to warn or evacuate
a community's level raised                     Update   its response changes
a community's depth band deeper (below)        Update   water dangerous to more people
a community's onset ≥ ``ONSET_EARLIER_H``      Update   less time to act than announced
(3 h) earlier, or known where it was not
a community's onset ≥ ``ONSET_LATER_H`` (6 h)  Update   a deadline that passes dry costs
later                                                   the next warning its credibility
the assigned shelters differ (one added or     Update   open the new one; never send people
dropped)                                                to one dropped (full, or unsafe:
                                                        unsafe centres are never assigned)
the danger lasts beyond the expiry of the      Update   a warning never lapses while the
message in force                                        forecast still calls for it
a community no longer at risk, or its level    nothing  the message in force errs on the
or depth band lower                                     safe side (a wrong verde is the
                                                        worst error); standing down comes
                                                        with a lower level or a Cancel
an onset shift within (−3 h, +6 h); an onset   nothing  forecast noise, or no news
no longer known
people exposed or without shelter, ensemble    nothing  restated in the next message that
probability, shelter occupancy                          goes out anyway
=============================================  =======  ====================================

An Update's ``reason`` lists every trigger that applies, a level change included.

Depth bands are those the level rules of ``models/levels.yaml`` use (``wet_depth_m`` and every
``max_depth_m`` bound: 0.15 / 0.5 / 1.0 / 1.5 m, after Ramsbottom et al. 2003). An
``InForce`` without ``facts`` (a message stored before facts were kept) is compared by level
and expiry only, as before; facts in a format this version cannot read send an Update, so that
the committee gets the current picture rather than nothing.

References
----------
OASIS (2010) Common Alerting Protocol Version 1.2, §3.2.1 (msgType, references).
Ramsbottom, Floyd & Penning-Rowsell (2003) Flood risks to people, Phase 1. DEFRA/Environment
Agency R&D FD2317.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import geopandas as gpd
import numpy as np

from floodwarn.alerts.cap import Community, MunicipalWarning
from floodwarn.parameters import LEVELS, LevelRules, load_parameters

#: A community's onset this much earlier (h) than the message in force said sends an Update.
ONSET_EARLIER_H = 3.0
#: A community's onset this much later (h) than the message in force said sends an Update.
ONSET_LATER_H = 6.0
#: Format of :func:`material_facts`; facts stored in another format send an Update.
FACTS_VERSION = 1


@dataclass(frozen=True)
class InForce:
    """The last message sent for a municipality's warning still in force, with the
    :func:`material_facts` of its warning (None: not kept; compare by level and expiry)."""

    municipality_id: str
    identifier: str
    sender: str
    sent: datetime
    level: str
    expires: datetime | None = None
    facts: Mapping[str, Any] | None = field(default=None, hash=False)


@dataclass(frozen=True)
class Decision:
    """A message to send: ``reason`` says why, for the audit log, operators and (an Update's,
    with ``reason_es``) the committees reading its CAP note; ``facts`` are
    the :func:`material_facts` of ``warning`` (None for Cancel), to keep with the message and
    pass back as ``InForce.facts`` next time."""

    msg_type: str  # Alert, Update or Cancel
    municipality_id: str
    warning: MunicipalWarning | None  # None for Cancel
    previous: InForce | None  # the message an Update or Cancel replaces
    reason: str = ""
    facts: dict[str, Any] | None = field(default=None, hash=False, compare=False)
    reason_es: str = ""  # an Update's reason in Spanish (its CAP note says what changed)


def depth_bands_m(rules: LevelRules) -> tuple[float, ...]:
    """Lower bounds (m) of the depth bands: ``wet_depth_m`` and every ``max_depth_m`` minimum
    the level rules use, increasing."""
    bounds = {rules.wet_depth_m}
    for rule in rules.levels:
        for condition in rule.any:
            depth = condition.get("max_depth_m")
            if depth is not None and depth.min is not None:
                bounds.add(depth.min)
    return tuple(sorted(bounds))


@lru_cache(maxsize=1)
def _shipped_depth_bands_m() -> tuple[float, ...]:
    return depth_bands_m(load_parameters(LevelRules))


def _band_m(depth_m: float, bounds: Sequence[float]) -> float:
    """Lower bound of the band ``depth_m`` falls in (0.0 below the first bound)."""
    k = bisect.bisect_right(bounds, depth_m)
    return float(bounds[k - 1]) if k else 0.0


def material_facts(warning: MunicipalWarning, *,
                   depth_bands: Sequence[float] | None = None) -> dict[str, Any]:
    """What committees act on in ``warning``, compact and JSON-serialisable: per community its
    level, depth band (lower bound, m) and onset (ISO 8601, minutes; None unknown), and the
    assigned shelters. Communities are keyed by name, as the message names them (a name
    occurring twice keeps its most severe level, deepest band and earliest onset).

    ``depth_bands`` default to those of the shipped ``models/levels.yaml``
    (:func:`depth_bands_m`)::

        {"version": 1,
         "communities": {"Colonia Ribera": {"level": "roja", "depth_band_m": 1.5,
                                            "onset": "2020-05-31T11:00+00:00"}},
         "shelters": ["Centro Escolar Uno"]}
    """
    bounds = tuple(depth_bands) if depth_bands is not None else _shipped_depth_bands_m()
    places: dict[str, dict[str, Any]] = {}
    for c in warning.communities:
        onset = _onset(warning, c)
        mine = {"level": c.level, "depth_band_m": _band_m(c.max_depth_m, bounds),
                "onset": onset}
        seen = places.get(c.name)
        if seen is not None:
            mine = {"level": max(seen["level"], mine["level"], key=LEVELS.index),
                    "depth_band_m": max(seen["depth_band_m"], mine["depth_band_m"]),
                    "onset": min((t for t in (seen["onset"], onset) if t is not None),
                                 default=None)}
        places[c.name] = mine
    return {
        "version": FACTS_VERSION,
        "communities": {
            name: {**p, "onset": None if p["onset"] is None
                   else p["onset"].isoformat(timespec="minutes")}
            for name, p in sorted(places.items())},
        "shelters": sorted({name for c in warning.communities for name, _ in c.shelters}),
    }


def _onset(warning: MunicipalWarning, community: Community) -> datetime | None:
    hours = community.hours_to_flooding
    if hours is None or hours != hours:  # unknown or NaN
        return None
    return (warning.forecast_start + timedelta(hours=hours)).replace(second=0, microsecond=0)


@dataclass(frozen=True)
class _Place:
    level: str
    depth_band_m: float
    onset: datetime | None


def _read_facts(facts: Mapping[str, Any]) -> tuple[dict[str, _Place], frozenset[str]] | None:
    """Facts as stored (after a JSON round trip); None when in a format this version cannot
    read."""
    try:
        if facts["version"] != FACTS_VERSION:
            return None
        places = {str(name): _Place(str(p["level"]), float(p["depth_band_m"]),
                                    None if p["onset"] is None
                                    else datetime.fromisoformat(p["onset"]))
                  for name, p in facts["communities"].items()}
        return places, frozenset(str(s) for s in facts["shelters"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600


#: Spanish wording of each reason (committees read the CAP note in Spanish first).
_REASONS_ES = {
    "new communities at risk": "comunidades nuevas en riesgo",
    "community level raised": "nivel de comunidad elevado",
    "deeper water": "agua más profunda",
    "flooding sooner": "inundación más pronto",
    "flooding later": "inundación más tarde",
    "shelters changed": "albergues cambiados",
    "level raised": "nivel elevado",
    "level lowered": "nivel reducido",
    "danger lasts beyond the expiry in force": "el peligro dura más allá de la expiración "
                                               "vigente",
    "cannot compare with the message in force": "no se puede comparar con el mensaje vigente",
}


def _fact_changes(old: Mapping[str, Any], new: Mapping[str, Any], *, onset_earlier_h: float,
                  onset_later_h: float) -> list[tuple[str, str]]:
    """Why the facts of the message in force (``old``) no longer hold (module docstring), as
    (reason, details) pairs; reasons are keys of :data:`_REASONS_ES`."""
    before = _read_facts(old)
    after = _read_facts(new)
    assert after is not None
    if before is None:
        return [("cannot compare with the message in force",
                 f"its facts are not format {FACTS_VERSION}; sending the current picture")]
    was, was_shelters = before
    now, shelters = after
    added = [n for n in now if n not in was]
    raised, deeper, earlier, later = [], [], [], []
    for name in sorted(set(now) & set(was)):
        a, b = was[name], now[name]
        if LEVELS.index(b.level) > LEVELS.index(a.level):
            raised.append(f"{name} {a.level} → {b.level}")
        if b.depth_band_m > a.depth_band_m:
            deeper.append(f"{name} ≥{b.depth_band_m:g} m (≥{a.depth_band_m:g} m)")
        if b.onset is None:
            continue
        if a.onset is None:
            earlier.append(f"{name} {b.onset.isoformat(timespec='minutes')}")
        elif _hours(a.onset - b.onset) >= onset_earlier_h:
            earlier.append(f"{name} −{_hours(a.onset - b.onset):.0f} h")
        elif _hours(b.onset - a.onset) >= onset_later_h:
            later.append(f"{name} +{_hours(b.onset - a.onset):.0f} h")
    reasons = []
    for label, items in (("new communities at risk", added), ("community level raised", raised),
                         ("deeper water", deeper), ("flooding sooner", earlier),
                         ("flooding later", later)):
        if items:
            reasons.append((label, ", ".join(items)))
    if shelters != was_shelters:
        change = [f"+{s}" for s in sorted(shelters - was_shelters)] + \
                 [f"−{s}" for s in sorted(was_shelters - shelters)]
        reasons.append(("shelters changed", ", ".join(change)))
    return reasons


def _said(reasons: list[tuple[str, str]], language: str) -> str:
    return "; ".join(f"{_REASONS_ES[label] if language == 'es' else label}: {details}"
                     for label, details in reasons)


def decide(in_force: dict[str, InForce], warnings: dict[str, MunicipalWarning], *,
           onset_earlier_h: float = ONSET_EARLIER_H, onset_later_h: float = ONSET_LATER_H,
           depth_bands: Sequence[float] | None = None) -> list[Decision]:
    """The messages to send, in municipality order, each with its reason (see the module
    docstring for the rule). ``depth_bands`` (m) as for :func:`material_facts`."""
    out = []
    for muni in sorted(set(in_force) | set(warnings)):
        old = in_force.get(muni)
        new = warnings.get(muni)
        if new is None:
            if old is not None:
                out.append(Decision("Cancel", muni, None, old,
                                    reason="no settlement at amarilla or above any more"))
            continue
        facts = material_facts(new, depth_bands=depth_bands)
        if old is None:
            out.append(Decision("Alert", muni, new, None, reason=f"new {new.level} warning",
                                facts=facts))
            continue
        reasons: list[tuple[str, str]] = []
        if new.level != old.level:
            way = "raised" if LEVELS.index(new.level) > LEVELS.index(old.level) else "lowered"
            reasons.append((f"level {way}", f"{old.level} → {new.level}"))
        if old.facts is not None:
            reasons += _fact_changes(old.facts, facts, onset_earlier_h=onset_earlier_h,
                                     onset_later_h=onset_later_h)
        if old.expires is not None and new.expires > old.expires:
            reasons.append(("danger lasts beyond the expiry in force",
                            old.expires.isoformat(timespec="minutes")))
        if reasons:
            out.append(Decision("Update", muni, new, old, reason=_said(reasons, "en"),
                                reason_es=_said(reasons, "es"), facts=facts))
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
