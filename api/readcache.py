"""Answers to the hot read queries, built once and kept in memory.

A finished run's settlement results never change, so their GeoJSON features are serialised
once per run and a query only picks and joins them. The alerts in force change when a run
publishes messages, which always adds an alert version — the highest version id is the token
that tells whether the cached list is still current (one indexed query per request) — and when
the earliest of their messages expires.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, sessionmaker

from api.store.models import Alert, AlertVersion, Run, SettlementResult
from floodwarn.alerts.atom import FeedEntry, atom_feed, entry_summary
from floodwarn.alerts.cap import cap_info_fields
from floodwarn.errors import NotFoundError
from floodwarn.io.forecast_outputs import (
    CENTRES_FILE,
    EVACUATION_FILE,
    SETTLEMENTS_FILE,
    SUMMARY_FILE,
)

#: Finished runs whose settlement features are kept (the newest are the ones queried).
MAX_CACHED_RUNS = 16
#: Seconds the alerts in force are served without asking the store whether another process
#: published (this process's publications are seen at once).
OTHER_PROCESS_CHECK_S = 1.0


class _Publications:
    """Counts commits in this process that added alert messages."""

    generation = 0


PUBLICATIONS = _Publications()


@event.listens_for(Session, "after_flush")
def _note_publication(session: Session, _context: object) -> None:
    if any(isinstance(obj, AlertVersion) for obj in session.new):
        session.info["published"] = True


@event.listens_for(Session, "after_commit")
def _count_publication(session: Session) -> None:
    if session.info.pop("published", False):
        PUBLICATIONS.generation += 1


@event.listens_for(Session, "after_rollback")
def _forget_publication(session: Session) -> None:
    session.info.pop("published", None)


#: Seconds a page of the run list is reused (statuses and progress change by the second).
RUN_LIST_TTL_S = 1.0

_TERMINAL = ("succeeded", "failed")


@dataclass(frozen=True)
class SettlementFeatures:
    """One run's settlements as pre-serialised GeoJSON features, with the fields filtered on."""

    features: tuple[bytes, ...]
    levels: tuple[str, ...]
    municipalities: tuple[str, ...]
    departments: tuple[str, ...]

    def geojson(self, *, level: str | None = None, municipality: str | None = None,
                department: str | None = None) -> bytes:
        """A FeatureCollection of the settlements matching every filter given."""
        chosen = [f for f, lv, mu, de in zip(self.features, self.levels, self.municipalities,
                                             self.departments, strict=True)
                  if (level is None or lv == level)
                  and (municipality is None or mu == municipality)
                  and (department is None or de == department)]
        return b'{"type": "FeatureCollection", "features": [' + b", ".join(chosen) + b"]}"


def _load_settlements(session: Session, run_id: int) -> SettlementFeatures:
    rows = session.scalars(select(SettlementResult).where(SettlementResult.run_id == run_id)
                           .order_by(SettlementResult.settlement_id)).all()
    features = tuple(json.dumps({
        "type": "Feature", "id": r.settlement_id,
        "geometry": {"type": "Point", "coordinates": [r.metrics["lon"], r.metrics["lat"]]},
        "properties": {"name": r.name, "municipality_id": r.municipality_id,
                       "department": r.department, "level": r.level, **r.metrics},
    }).encode() for r in rows)
    return SettlementFeatures(features, tuple(r.level for r in rows),
                              tuple(r.municipality_id for r in rows),
                              tuple(r.department for r in rows))


@dataclass(frozen=True)
class AlertsInForce:
    """The alerts in force with their latest message, as of alert version ``token``."""

    token: int
    valid_until: datetime | None  # the earliest expiry among the rows
    rows: tuple[dict[str, object], ...]
    everything: bytes  # the JSON list of all rows, for callers who may see every municipality
    headlines: tuple[str, ...]  # each row's CAP headline (for the feed)
    generation: int = 0  # PUBLICATIONS.generation when built or last confirmed
    checked: float = 0.0  # when the store last confirmed it (monotonic s)
    #: each row's CAP instruction and onset (what to do, from when: for the public map)
    advice: tuple[tuple[str, str], ...] = ()

    def json_for(self, visible: set[str] | None) -> bytes:
        if visible is None:
            return self.everything
        return json.dumps([r for r in self.rows if r["municipality_id"] in visible]).encode()


class ReadCache:
    """Per-process cache of settlement features per finished run and of the alerts in force."""

    def __init__(self, sessions: sessionmaker[Session],
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._sessions = sessions
        self._clock = clock
        self._runs: OrderedDict[int, SettlementFeatures] = OrderedDict()
        self._alerts: AlertsInForce | None = None
        self._run_pages: dict[tuple[int, int | None, str], tuple[float, bytes]] = {}
        self._feeds: dict[str, tuple[AlertsInForce, bytes]] = {}
        self._outputs: OrderedDict[int, RunOutputs] = OrderedDict()

    def settlements(self, run_id: int) -> SettlementFeatures:
        """The run's settlements; NotFoundError when there is no such run.

        Runs still queued or running have no results yet and are not cached.
        """
        cached = self._runs.get(run_id)
        if cached is not None:
            self._runs.move_to_end(run_id)
            return cached
        with self._sessions() as session:
            run = session.get(Run, run_id)
            if run is None:
                raise NotFoundError(f"no run {run_id}")
            features = _load_settlements(session, run_id)
            if run.status not in _TERMINAL:
                return features
        self._runs[run_id] = features
        while len(self._runs) > MAX_CACHED_RUNS:
            self._runs.popitem(last=False)
        return features

    def alerts_in_force(self) -> AlertsInForce:
        """The alerts in force, rebuilt only after a run published new messages.

        A publication by this process (the service's worker) is seen at once: every commit
        that adds an alert message bumps :data:`PUBLICATIONS`. One by another process (`runs
        submit --now`) is seen within :data:`OTHER_PROCESS_CHECK_S`, the longest the store is
        left unasked; so a storm of requests costs no store query between publications.
        """
        now = self._clock()
        cached = self._alerts
        if (cached is not None and cached.generation == PUBLICATIONS.generation
                and time.monotonic() - cached.checked < OTHER_PROCESS_CHECK_S
                and (cached.valid_until is None or now < cached.valid_until)):
            return cached
        generation, checked = PUBLICATIONS.generation, time.monotonic()
        with self._sessions() as session:
            token = session.scalar(select(func.max(AlertVersion.id))) or 0
            if cached is not None and cached.token == token and (
                    cached.valid_until is None or now < cached.valid_until):
                self._alerts = replace(cached, generation=generation, checked=checked)
                return self._alerts
            current = in_force_with_latest(session, now)
            rows: tuple[dict[str, object], ...] = tuple(
                {"municipality_id": alert.municipality_id, "level": alert.level,
                 "identifier": last.identifier, "msg_type": last.msg_type,
                 "sent": last.sent.isoformat(),
                 "expires": last.expires.isoformat() if last.expires else None,
                 "cap_url": f"/alerts/{last.identifier}.xml"}
                for alert, last in current)
        expiries = [last.expires for _, last in current if last.expires is not None]
        infos = [cap_info_fields(last.cap_xml, "headline", "instruction", "onset")
                 for _, last in current]
        self._alerts = AlertsInForce(token, min(expiries, default=None), rows,
                                     json.dumps(list(rows)).encode(),
                                     tuple(info[0] for info in infos),
                                     generation, checked,
                                     advice=tuple((info[1], info[2]) for info in infos))
        return self._alerts

    def feed(self, self_url: str, cap_url: Callable[[str], str],
             place_name: Callable[[str], str]) -> bytes:
        """The Atom feed of the alerts in force, rebuilt only when they changed (a public
        endpoint: a flood of requests must cost no more than one indexed query each).

        ``place_name`` names a municipality id as people read it ("Aguilares, San Salvador"):
        each entry's summary and category label say the place, not its id.
        """
        alerts = self.alerts_in_force()
        cached = self._feeds.get(self_url)
        if cached is not None and cached[0].token == alerts.token \
                and cached[0].valid_until == alerts.valid_until:
            return cached[1]
        entries = []
        for row, headline in zip(alerts.rows, alerts.headlines, strict=True):
            place = place_name(str(row["municipality_id"]))
            entries.append(FeedEntry(identifier=str(row["identifier"]), title=headline,
                                     summary=entry_summary(str(row["level"]), place),
                                     updated=datetime.fromisoformat(str(row["sent"])),
                                     cap_url=cap_url(str(row["identifier"])),
                                     area=str(row["municipality_id"]), area_name=place))
        body = atom_feed(entries, feed_id="urn:floodwarn:alerts", self_url=self_url,
                         title="floodwarn — alertas de inundación",
                         updated=max((e.updated for e in entries), default=self._clock()))
        if len(self._feeds) > 8:  # a few host names at most; never grow without bound
            self._feeds.clear()
        self._feeds[self_url] = (alerts, body)
        return body

    def runs(self, limit: int, before: int | None,
             build: Callable[[Session], bytes], *, view: str) -> bytes:
        """A page of the run list as ``build`` renders it for a ``view`` (what a role may
        see), reused for :data:`RUN_LIST_TTL_S`: statuses and progress are at most that old."""
        key = (limit, before, view)
        now = time.monotonic()
        hit = self._run_pages.get(key)
        if hit is not None and now - hit[0] < RUN_LIST_TTL_S:
            return hit[1]
        with self._sessions() as session:
            body = build(session)
        if len(self._run_pages) > 64:
            self._run_pages.clear()
        self._run_pages[key] = (now, body)
        return body

    def forget_runs(self) -> None:
        """Drop the cached run list (a run was just submitted here)."""
        self._run_pages.clear()

    def outputs(self, run_id: int, out_dir: Path) -> RunOutputs:
        """A succeeded run's centres, evacuation plan and summary, read once."""
        cached = self._outputs.get(run_id)
        if cached is not None:
            self._outputs.move_to_end(run_id)
            return cached
        loaded = RunOutputs(run_id, out_dir)
        self._outputs[run_id] = loaded
        while len(self._outputs) > MAX_CACHED_RUNS:
            self._outputs.popitem(last=False)
        return loaded


class RunOutputs:
    """What the API serves of a succeeded run besides its settlements, each file read once on
    first use (files never change once the run has finished)."""

    def __init__(self, run_id: int, out_dir: Path) -> None:
        self.run_id, self.out_dir = run_id, out_dir
        self._loaded: dict[str, Any] = {}

    def _path(self, name: str) -> Path:
        path = self.out_dir / name
        if not path.exists():
            raise NotFoundError(f"run {self.run_id} has no {name} (no settlements in its "
                                "terrain domain).")
        return path

    def _once(self, name: str, load: Callable[[Path], Any]) -> Any:
        if name not in self._loaded:
            self._loaded[name] = load(self._path(name))
        return self._loaded[name]

    def attached(self, name: str, make: Callable[[], Any]) -> Any:
        """An object made once per run by ``make`` and kept with the run's other outputs
        (e.g. a router's reader of files not listed here)."""
        key = "attached:" + name
        if key not in self._loaded:
            self._loaded[key] = make()
        return self._loaded[key]

    def centres(self) -> gpd.GeoDataFrame:
        return self._once(CENTRES_FILE, gpd.read_file)

    def summary(self) -> dict[str, Any]:
        return dict(self._once(SUMMARY_FILE, lambda p: json.loads(p.read_text())))

    def evacuation(self) -> tuple[dict[str, object], ...]:
        def load(path: Path) -> tuple[dict[str, object], ...]:
            plan = pd.read_csv(path, dtype={"centre_id": str}, keep_default_na=False)
            return tuple({"settlement_id": int(r.settlement_id),
                          "centre_id": r.centre_id or None, "people": int(r.people),
                          "distance_km": None if r.distance_km == "" else float(r.distance_km)}
                         for r in plan.itertuples())
        return tuple(self._once(EVACUATION_FILE, load))

    def settlement_municipality(self) -> dict[int, str]:
        def load(path: Path) -> dict[int, str]:
            towns = gpd.read_file(path, columns=["id", "municipality_id"], ignore_geometry=True)
            return dict(zip(towns["id"].astype(int), towns["municipality_id"], strict=True))
        return dict(self._once(SETTLEMENTS_FILE, load))


def in_force_with_latest(session: Session, now: datetime) -> list[tuple[Alert, AlertVersion]]:
    """Alerts in force at ``now`` with their latest message, in one query: a warning whose last
    message has expired is not in force, even before a run marks it so."""
    latest = (select(func.max(AlertVersion.id).label("id"))
              .group_by(AlertVersion.alert_id).subquery())
    rows = session.execute(
        select(Alert, AlertVersion)
        .join(AlertVersion, AlertVersion.alert_id == Alert.id)
        .join(latest, latest.c.id == AlertVersion.id)
        .where(Alert.in_force.is_(True))
        .where((AlertVersion.expires.is_(None)) | (AlertVersion.expires > now))
        .order_by(Alert.municipality_id)).all()
    return [(alert, version) for alert, version in rows]
