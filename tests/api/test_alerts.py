"""Publishing a run's alerts: alert → nothing new → update → cancel; CAP and feed over HTTP."""

import json
from datetime import UTC, datetime, timedelta

import geopandas as gpd
import pytest
from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy import select

from api.app import create_app
from api.publish import publish_run_alerts
from api.settings import Settings
from api.store.access import create_api_key
from api.store.models import Alert, AlertVersion, AuditEntry, Run
from floodwarn.alerts.atom import ATOM_NS
from floodwarn.alerts.cap import CAP_NS, validate_cap
from floodwarn.io.forecast_outputs import SETTLEMENTS_FILE
from floodwarn.io.gis_data import load_official_names
from tests.test_forecast_cli import salvadoran_terrain  # noqa: F401  (fixture)
from tests.test_forecast_cli import (
    test_risk_outputs_for_given_settlements_and_centres as make_risk_run,
)

NOW = datetime(2020, 6, 1, 6, tzinfo=UTC)


@pytest.fixture()
def run_dir(salvadoran_terrain, tmp_path):  # noqa: F811
    make_risk_run(salvadoran_terrain, tmp_path)
    return tmp_path / "risk-run"


def _set_level(run_dir, level):
    """A later forecast: the towns under warning now at ``level`` (the others stay verde)."""
    towns = gpd.read_file(run_dir / SETTLEMENTS_FILE)
    towns.loc[towns["level"] != "verde", "level"] = level
    towns.to_file(run_dir / SETTLEMENTS_FILE, driver="GPKG")


def test_lifecycle_across_runs_and_served_cap(run_dir, tmp_path):
    app = create_app(Settings(data_dir=tmp_path / "data", run_worker=False),
                     clock=lambda: NOW + timedelta(hours=12))
    sessions = app.state.sessions
    with sessions.begin() as session:  # the runs the alerts come from
        session.add_all([Run(id=i, status="succeeded", rain_path="storm.nc",
                             out_dir=str(run_dir), created_at=NOW) for i in range(1, 5)])
    with sessions.begin() as session:
        first = publish_run_alerts(session, run_id=1, out_dir=run_dir, sender="fw@test",
                                   now=NOW)
    assert first and {v.msg_type for v in first} == {"Alert"}
    levels_before = [v.level for v in first]
    for version in first:
        validate_cap(version.cap_xml.encode())
        assert "<status>Actual</status>" in version.cap_xml  # neither terrain nor rain synthetic
    with sessions.begin() as session:  # same forecast again: nothing new
        assert publish_run_alerts(session, run_id=2, out_dir=run_dir, sender="fw@test",
                                  now=NOW + timedelta(hours=6)) == []
    _set_level(run_dir, "amarilla")
    record = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**record, "synthetic": True}))
    with sessions.begin() as session:
        update = publish_run_alerts(session, run_id=3, out_dir=run_dir, sender="fw@test",
                                    now=NOW + timedelta(hours=12))
    # Only the municipalities whose level changed get an Update.
    assert [v.msg_type for v in update] == ["Update"] * sum(lv != "amarilla"
                                                            for lv in levels_before)
    assert update, "the test needs at least one municipality above amarilla"
    assert all("<status>Exercise</status>" in v.cap_xml for v in update)  # a synthetic run
    refs = etree.fromstring(update[0].cap_xml.encode()).findtext(f"{{{CAP_NS}}}references")
    assert refs.split(",")[1] in {v.identifier for v in first}

    with sessions.begin() as session:
        _, key = create_api_key(session, role="analyst", name="analista", now=NOW)
    client = TestClient(app, headers={"X-API-Key": key})
    assert client.get("/health").json()["status"] == "ok"
    in_force = client.get("/alerts").json()
    assert [a["level"] for a in in_force] == ["amarilla"] * len(first)
    cap = client.get(in_force[0]["cap_url"])
    assert cap.status_code == 200 and cap.headers["content-type"].startswith(
        "application/cap+xml")
    validate_cap(cap.content)
    feed = client.get("/alerts/feed.atom")
    assert feed.status_code == 200 and update[0].identifier in feed.text
    assert feed.headers["content-type"] == "application/atom+xml; charset=utf-8"
    official = load_official_names().set_index("shapeID")
    assert sorted(_feed_summaries(feed.content)) == sorted(
        f"Alerta amarilla (yellow alert) — {official.loc[a['municipality_id'], 'name']}, "
        f"{official.loc[a['municipality_id'], 'department']}" for a in in_force)
    assert client.get("/alerts/nope.xml").status_code == 404
    metrics = client.get("/metrics").text
    assert f"floodwarn_alerts_in_force {float(len(first))}" in metrics

    _set_level(run_dir, "verde")
    with sessions.begin() as session:
        cancel = publish_run_alerts(session, run_id=4, out_dir=run_dir, sender="fw@test",
                                    now=NOW + timedelta(hours=18))
    assert [v.msg_type for v in cancel] == ["Cancel"] * len(first)
    assert client.get("/alerts").json() == []
    with sessions() as session:
        assert not any(a.in_force for a in session.scalars(select(Alert)))
        assert len(session.scalars(select(AlertVersion)).all()) == (
            len(first) + len(update) + len(cancel))


def _feed_summaries(feed: bytes) -> list[str]:
    doc = etree.fromstring(feed)
    return [e.findtext(f"{{{ATOM_NS}}}summary") for e in doc.iter(f"{{{ATOM_NS}}}entry")]


def test_feed_names_places_officially_in_utf8(tmp_path):
    """Feed readers see "Ahuachapán, Ahuachapán" (not the boundary file's "Ahuachpan", not the
    id) and the level Spanish first; the header and the XML both say UTF-8, so no browser
    shows "inundaciÃ³n"."""
    from tests.api.test_official_names import AHUACHAPAN, CHALATENANGO, _risk_run

    run_dir = tmp_path / "run"
    _risk_run(run_dir, "roja")
    app = create_app(Settings(data_dir=tmp_path / "data", run_worker=False),
                     clock=lambda: NOW + timedelta(hours=1))
    with app.state.sessions.begin() as session:
        session.add(Run(id=1, status="succeeded", rain_path="storm.nc", out_dir=str(run_dir),
                        created_at=NOW))
        publish_run_alerts(session, run_id=1, out_dir=run_dir, sender="fw@test", now=NOW)
    feed = TestClient(app).get("/alerts/feed.atom")
    assert feed.status_code == 200
    assert feed.headers["content-type"] == "application/atom+xml; charset=utf-8"
    assert feed.content.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    assert sorted(_feed_summaries(feed.content)) == [
        "Alerta roja (red alert) — Ahuachapán, Ahuachapán",
        "Alerta roja (red alert) — Chalatenango, Chalatenango"]
    assert "Ahuachapán" in feed.text and "inundación" in feed.text  # decoded as UTF-8
    assert "Ahuachpan" not in feed.text and "Ã" not in feed.text
    # The id stays where machines filter on it (the category term), labelled with the place.
    categories = {c.get("term"): c.get("label") for c in etree.fromstring(feed.content).iter(
        f"{{{ATOM_NS}}}category")}
    assert categories == {AHUACHAPAN: "Ahuachapán, Ahuachapán",
                          CHALATENANGO: "Chalatenango, Chalatenango"}
    assert not any("SLV-ADM2-" in summary for summary in _feed_summaries(feed.content))


def test_run_outputs_through_the_api(run_dir, tmp_path):
    app = create_app(Settings(data_dir=tmp_path / "data", run_worker=False))
    with app.state.sessions.begin() as session:
        session.add(Run(id=1, status="succeeded", rain_path="storm.nc", out_dir=str(run_dir),
                        created_at=NOW))
        session.add(Run(id=2, status="failed", rain_path="bad.nc", created_at=NOW))
        _, key = create_api_key(session, role="analyst", name="analista", now=NOW)
    client = TestClient(app, headers={"X-API-Key": key})
    centres = client.get("/runs/1/centres").json()
    assert {f["properties"]["status"] for f in centres["features"]} <= {
        "safe", "at_risk", "unsafe"}
    plan = client.get("/runs/1/evacuation").json()
    towns = gpd.read_file(run_dir / SETTLEMENTS_FILE)
    assert sum(p["people"] for p in plan) == int(towns["evacuees"].sum())
    summary = client.get("/runs/1/summary").json()
    assert summary["settlements_by_level"]
    # Keyed by municipality id, each entry named officially.
    assert set(summary["by_municipality"]) == set(towns["municipality_id"])
    assert {k: v["name"] for k, v in summary["by_municipality"].items()} == dict(
        zip(towns["municipality_id"], towns["municipality"], strict=True))
    depth = client.get("/runs/1/depth.tif")
    assert depth.status_code == 200 and depth.content[:4] in (b"II*\0", b"MM\0*")
    assert client.get("/runs/2/centres").status_code == 404


def test_signed_alerts_are_served_as_signed(run_dir, tmp_path):
    from floodwarn.alerts.signing import verify_cap_signature
    from tests.alerts.test_signing import write_key_pair

    key_path, cert_path = write_key_pair(tmp_path / "keys")
    settings = Settings(data_dir=tmp_path / "data", run_worker=False,
                        signing_key=key_path, signing_cert=cert_path)
    app = create_app(settings)
    with app.state.sessions.begin() as session:
        session.add(Run(id=1, status="succeeded", rain_path="storm.nc", out_dir=str(run_dir),
                        created_at=NOW))
        sent = publish_run_alerts(session, run_id=1, out_dir=run_dir, sender="fw@test",
                                  now=NOW, signer=settings.cap_signer())
    assert sent
    client = TestClient(app)
    for version in sent:
        served = client.get(f"/alerts/{version.identifier}.xml").content
        validate_cap(served)
        verify_cap_signature(served, cert_path.read_bytes())


def test_half_configured_signing_stops_the_service_at_start(tmp_path):
    from floodwarn.errors import InputError
    from tests.alerts.test_signing import write_key_pair

    key_path, _ = write_key_pair(tmp_path / "keys")
    with pytest.raises(InputError, match="FLOODWARN_SIGNING_CERT"):
        create_app(Settings(data_dir=tmp_path / "data", run_worker=False,
                            signing_key=key_path))
    assert not (tmp_path / "data" / "floodwarn.sqlite").exists()


def _shift_forecast(run_dir, hours):
    """Date the run's forecast window ``hours`` later (a later forecast of the same storm)."""
    record = json.loads((run_dir / "run.json").read_text())
    for key in ("start", "end"):
        record["rain"][key] = (datetime.fromisoformat(record["rain"][key])
                               + timedelta(hours=hours)).isoformat()
    (run_dir / "run.json").write_text(json.dumps(record))


def test_warnings_lapse_at_expiry_are_extended_by_later_forecasts_and_past_storms_are_silent(
        run_dir, tmp_path):
    from api.store.models import AuditEntry

    clock = [NOW]
    app = create_app(Settings(data_dir=tmp_path / "data", run_worker=False),
                     clock=lambda: clock[0])
    sessions = app.state.sessions
    with sessions.begin() as session:
        session.add_all([Run(id=i, status="succeeded", rain_path="storm.nc",
                             out_dir=str(run_dir), created_at=NOW) for i in range(1, 6)])
        _, key = create_api_key(session, role="analyst", name="analista", now=NOW)
        first = publish_run_alerts(session, run_id=1, out_dir=run_dir, sender="fw@test",
                                   now=NOW)
    expires = first[0].expires
    assert expires is not None and all(v.expires == expires for v in first)
    cap_expires = etree.fromstring(first[0].cap_xml.encode()).findtext(
        f"{{{CAP_NS}}}info/{{{CAP_NS}}}expires")
    assert datetime.fromisoformat(cap_expires) == expires
    client = TestClient(app, headers={"X-API-Key": key})
    assert len(client.get("/alerts").json()) == len(first)

    # A later forecast, same levels, danger lasting 6 h longer: an Update extends each warning.
    _shift_forecast(run_dir, 6)
    with sessions.begin() as session:
        extended = publish_run_alerts(session, run_id=2, out_dir=run_dir, sender="fw@test",
                                      now=NOW + timedelta(hours=6))
    assert [v.msg_type for v in extended] == ["Update"] * len(first)
    assert all(v.expires == expires + timedelta(hours=6) for v in extended)
    clock[0] = expires + timedelta(minutes=1)  # the first messages' expiry has passed…
    assert len(client.get("/alerts").json()) == len(first)  # …but the extension holds

    # No forecast after that: at the extended expiry the warnings lapse everywhere.
    clock[0] = expires + timedelta(hours=6, minutes=1)
    assert client.get("/alerts").json() == []
    assert "<entry>" not in client.get("/alerts/feed.atom").text
    assert "floodwarn_alerts_in_force 0.0" in client.get("/metrics").text

    # A replay of the first forecast, now in the past: nothing is published.
    _shift_forecast(run_dir, -6)
    with sessions.begin() as session:
        assert publish_run_alerts(session, run_id=3, out_dir=run_dir, sender="fw@test",
                                  now=clock[0]) == []

    # The danger returns in a new forecast: new Alerts, not Updates of lapsed messages.
    _shift_forecast(run_dir, 72)
    with sessions.begin() as session:
        again = publish_run_alerts(session, run_id=4, out_dir=run_dir, sender="fw@test",
                                   now=clock[0])
    assert [v.msg_type for v in again] == ["Alert"] * len(first)
    assert len(client.get("/alerts").json()) == len(first)
    with sessions() as session:
        actions = [e.action for e in session.scalars(select(AuditEntry))]
    assert actions.count("alert_expired") == len(first)
    assert actions.count("publish_skipped") == 1


def test_same_level_update_when_the_onset_moves_earlier(run_dir, tmp_path):
    """A later forecast keeps every level but brings the water 4 h earlier: committees get an
    Update saying so; the same forecast again sends nothing; a 1 h shift sends nothing."""
    app = create_app(Settings(data_dir=tmp_path / "data", run_worker=False))
    sessions = app.state.sessions
    with sessions.begin() as session:
        session.add_all([Run(id=i, status="succeeded", rain_path="storm.nc",
                             out_dir=str(run_dir), created_at=NOW) for i in range(1, 5)])
    with sessions.begin() as session:
        first = publish_run_alerts(session, run_id=1, out_dir=run_dir, sender="fw@test",
                                   now=NOW)
    assert first and all(v.facts and v.facts["communities"] for v in first)
    towns = gpd.read_file(run_dir / SETTLEMENTS_FILE)
    at_risk = towns["level"] != "verde"
    towns.loc[at_risk, "hours_to_flooding"] = towns.loc[at_risk, "hours_to_flooding"] - 1.0
    towns.to_file(run_dir / SETTLEMENTS_FILE, driver="GPKG")
    with sessions.begin() as session:
        assert publish_run_alerts(session, run_id=2, out_dir=run_dir, sender="fw@test",
                                  now=NOW + timedelta(hours=1)) == []
    towns.loc[at_risk, "hours_to_flooding"] = towns.loc[at_risk, "hours_to_flooding"] - 3.0
    towns.to_file(run_dir / SETTLEMENTS_FILE, driver="GPKG")
    with sessions.begin() as session:
        update = publish_run_alerts(session, run_id=3, out_dir=run_dir, sender="fw@test",
                                    now=NOW + timedelta(hours=2))
        assert [v.msg_type for v in update] == ["Update"] * len(first)
        assert [v.level for v in update] == [v.level for v in first]
        for version in update:  # the committee reads what changed, Spanish first
            validate_cap(version.cap_xml.encode())
            note = etree.fromstring(version.cap_xml.encode()).findtext(f"{{{CAP_NS}}}note")
            assert note.startswith("Actualización — inundación más pronto: ")
            assert " −4 h" in note and "/ Update — flooding sooner: " in note
    with sessions() as session:
        reasons = [e.detail["reason"] for e in session.scalars(
            select(AuditEntry).where(AuditEntry.action == "send_message"))][-len(update):]
    assert all("flooding sooner" in reason for reason in reasons), reasons
    with sessions.begin() as session:
        assert publish_run_alerts(session, run_id=4, out_dir=run_dir, sender="fw@test",
                                  now=NOW + timedelta(hours=3)) == []
