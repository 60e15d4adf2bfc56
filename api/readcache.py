"""Answers to the hot read queries, built once and kept in memory.

A finished run's settlement results never change, so their GeoJSON features are serialised
once per run and a query only picks and joins them. The alerts in force change when a run
publishes messages, which always adds an alert version — the highest version id is the token
that tells whether the cached list is still current (one indexed query per request) — and when
the earliest of their messages expires.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api.store.models import Alert, AlertVersion, Run, SettlementResult

#: Finished runs whose settlement features are kept (the newest are the ones queried).
MAX_CACHED_RUNS = 16

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

    def settlements(self, run_id: int) -> SettlementFeatures:
        """The run's settlements; LookupError when there is no such run.

        Runs still queued or running have no results yet and are not cached.
        """
        cached = self._runs.get(run_id)
        if cached is not None:
            self._runs.move_to_end(run_id)
            return cached
        with self._sessions() as session:
            run = session.get(Run, run_id)
            if run is None:
                raise LookupError(f"no run {run_id}")
            features = _load_settlements(session, run_id)
            if run.status not in _TERMINAL:
                return features
        self._runs[run_id] = features
        while len(self._runs) > MAX_CACHED_RUNS:
            self._runs.popitem(last=False)
        return features

    def alerts_in_force(self) -> AlertsInForce:
        """The alerts in force, rebuilt only after a run published new messages."""
        now = self._clock()
        with self._sessions() as session:
            token = session.scalar(select(func.max(AlertVersion.id))) or 0
            cached = self._alerts
            if cached is not None and cached.token == token and (
                    cached.valid_until is None or now < cached.valid_until):
                return cached
            current = in_force_with_latest(session, now)
            rows: tuple[dict[str, object], ...] = tuple(
                {"municipality_id": alert.municipality_id, "level": alert.level,
                 "identifier": last.identifier, "msg_type": last.msg_type,
                 "sent": last.sent.isoformat(),
                 "expires": last.expires.isoformat() if last.expires else None,
                 "cap_url": f"/alerts/{last.identifier}.xml"}
                for alert, last in current)
        expiries = [last.expires for _, last in current if last.expires is not None]
        self._alerts = AlertsInForce(token, min(expiries, default=None), rows,
                                     json.dumps(list(rows)).encode())
        return self._alerts


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
