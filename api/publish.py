"""Turn a finished run's risk outputs into CAP messages against the alerts in force."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import geopandas as gpd
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.store.models import Alert, AlertVersion, AuditEntry
from api.webhooks import enqueue_deliveries
from floodwarn.alerts.cap import cap_message
from floodwarn.alerts.lifecycle import Decision, InForce, decide, municipal_warnings
from floodwarn.alerts.signing import CapSigner
from floodwarn.errors import InputError
from floodwarn.io.forecast_outputs import (
    CENTRES_FILE,
    EVACUATION_FILE,
    RUN_FILE,
    SETTLEMENTS_FILE,
)
from floodwarn.io.gis_data import load_municipalities

#: A warning's messages expire this long after the end of the forecast that raised it, unless a
#: later forecast extends them.
EXPIRY_AFTER_FORECAST_END = timedelta(hours=12)


def publish_run_alerts(session: Session, *, run_id: int, out_dir: Path, sender: str,
                       now: datetime, signer: CapSigner | None = None,
                       towns: gpd.GeoDataFrame | None = None) -> list[AlertVersion]:
    """CAP Alert / Update / Cancel messages for a run, stored with the alerts in force.

    Runs on SYNTHETIC terrain or storms issue ``status=Exercise``. A municipality whose level
    holds gets an Update only when what committees act on changed materially (the rule in
    :mod:`floodwarn.alerts.lifecycle`: new communities, shelters, deeper water, onset moved);
    otherwise nothing new. A forecast whose warnings would have lapsed already (a replayed past
    storm) publishes nothing. With a ``signer`` each message carries an XML signature, stored
    and served exactly as signed. Everything happens in the caller's transaction: a failure
    publishes none.
    """
    record = json.loads((out_dir / RUN_FILE).read_text())
    if not (out_dir / SETTLEMENTS_FILE).exists():
        raise InputError(f"{out_dir}: the run has no risk outputs (no settlements in its "
                         "terrain domain); nothing to publish.")
    if towns is None:  # the caller may have read them already
        towns = gpd.read_file(out_dir / SETTLEMENTS_FILE)
    centres = gpd.read_file(out_dir / CENTRES_FILE)
    plan = pd.read_csv(out_dir / EVACUATION_FILE, dtype={"centre_id": str},
                       keep_default_na=False)
    start = datetime.fromisoformat(record["rain"]["start"]).replace(tzinfo=now.tzinfo)
    end = datetime.fromisoformat(record["rain"]["end"]).replace(tzinfo=now.tzinfo)
    expires = end + EXPIRY_AFTER_FORECAST_END
    if expires <= now:
        # A replay of a forecast whose warnings would already have lapsed: alerting committees
        # now about a past storm would be wrong, and the alerts in force stay as they are.
        session.add(AuditEntry(at=now, actor="worker", action="publish_skipped",
                               detail={"run_id": run_id, "reason": "forecast in the past",
                                       "expires": expires.isoformat()}))
        return []
    municipalities = load_municipalities()
    warnings = municipal_warnings(towns, plan, centres, municipalities,
                                  forecast_start=start, expires=expires)
    alerts = {a.municipality_id: a for a in session.scalars(
        select(Alert).where(Alert.in_force.is_(True)))}
    in_force = {}
    for muni, alert in list(alerts.items()):
        last = session.scalars(select(AlertVersion).where(AlertVersion.alert_id == alert.id)
                               .order_by(AlertVersion.id.desc()).limit(1)).one()
        if last.expires is not None and last.expires <= now:
            # Lapsed: the warning ended with its last message; danger found now is new.
            alert.in_force = False
            del alerts[muni]
            session.add(AuditEntry(at=now, actor="worker", action="alert_expired",
                                   detail={"municipality_id": muni,
                                           "identifier": last.identifier}))
            continue
        in_force[muni] = InForce(muni, last.identifier, sender, last.sent, alert.level,
                                 expires=last.expires, facts=last.facts)
    status = "Exercise" if record.get("synthetic") else "Actual"
    sent_versions = []
    for n, decision in enumerate(decide(in_force, warnings)):
        version = _send(session, decision, alerts, municipalities, run_id=run_id,
                        sender=sender, now=now, status=status, serial=n, signer=signer)
        sent_versions.append(version)
    session.add(AuditEntry(at=now, actor="worker", action="publish_run_alerts",
                           detail={"run_id": run_id, "messages": len(sent_versions),
                                   "status": status}))
    return sent_versions


def _send(session: Session, decision: Decision, alerts: dict[str, Alert],
          municipalities: gpd.GeoDataFrame, *, run_id: int, sender: str, now: datetime,
          status: str, serial: int, signer: CapSigner | None) -> AlertVersion:
    identifier = f"floodwarn-{run_id}-{decision.municipality_id}-{serial}"
    previous = decision.previous
    references = ((previous.sender, previous.identifier, previous.sent),) if previous else ()
    if decision.msg_type == "Cancel":
        alert = alerts[decision.municipality_id]
        row = municipalities.set_index("id").loc[decision.municipality_id]
        xml = cap_message(None, identifier=identifier, sender=sender, sent=now, status=status,
                          msg_type="Cancel", references=references,
                          cancelled=(str(row["name"]), str(row["department"])))
        alert.in_force = False
        level, expires = None, None
    else:
        warning = decision.warning
        assert warning is not None
        note = (f"Actualización — {decision.reason_es}. / Update — {decision.reason}."
                if decision.msg_type == "Update" and decision.reason else None)
        xml = cap_message(warning, identifier=identifier, sender=sender, sent=now,
                          status=status, msg_type=decision.msg_type, references=references,
                          note=note)
        alert = alerts.get(decision.municipality_id) or Alert(
            municipality_id=decision.municipality_id, in_force=True, level=warning.level)
        alert.level = warning.level
        alert.in_force = True
        session.add(alert)
        session.flush()
        level, expires = warning.level, warning.expires
    if signer is not None:
        xml = signer.sign(xml)
    version = AlertVersion(alert_id=alert.id, run_id=run_id, identifier=identifier,
                           msg_type=decision.msg_type, level=level, sent=now, expires=expires,
                           cap_xml=xml.decode("utf-8"), facts=decision.facts)
    session.add(version)
    session.flush()
    session.add(AuditEntry(at=now, actor="worker", action="send_message",
                           detail={"identifier": identifier, "msg_type": decision.msg_type,
                                   "municipality_id": decision.municipality_id,
                                   "reason": decision.reason}))
    enqueue_deliveries(session, version, decision.municipality_id, now=now)
    return version
