"""API keys and roles: committees see and manage only their own municipality."""

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from api.store.models import Alert, AlertVersion, SettlementResult

NOW = datetime(2020, 6, 1, 6, tzinfo=UTC)
MUNI_A = "SLV-ADM2-79315794B8480972"  # Apopa
MUNI_B = "SLV-ADM2-79315794B83768449"  # Soyapango
ADMIN = "fw_admin_key_for_tests_0123456789"


def _app(tmp_path):
    app = create_app(Settings(data_dir=tmp_path / "data", run_worker=False, admin_key=ADMIN))
    with app.state.sessions.begin() as session:
        from api.store.models import Run

        session.add(Run(id=1, status="succeeded", rain_path="x.nc", created_at=NOW))
        for muni, level in ((MUNI_A, "roja"), (MUNI_B, "naranja")):
            alert = Alert(municipality_id=muni, in_force=True, level=level)
            session.add(alert)
            session.flush()
            session.add(AlertVersion(alert_id=alert.id, run_id=1, identifier=f"fw-{muni}",
                                     msg_type="Alert", level=level, sent=NOW,
                                     cap_xml="<alert/>"))
            session.add(SettlementResult(run_id=1, settlement_id=1 + (muni == MUNI_B),
                                         name=f"Town {muni}", municipality_id=muni,
                                         department="D", level=level,
                                         metrics={"lon": -89.0, "lat": 13.7}))
    return app


def test_roles(tmp_path):
    app = _app(tmp_path)
    anonymous = TestClient(app)
    assert anonymous.get("/alerts").status_code == 401
    assert anonymous.get("/alerts/feed.atom").status_code == 200  # the feed is public
    admin = TestClient(app, headers={"X-API-Key": ADMIN})
    made = admin.post("/keys", json={"role": "committee", "name": "Comisión A",
                                     "municipality_id": MUNI_A})
    assert made.status_code == 201
    committee = TestClient(app, headers={"X-API-Key": made.json()["key"]})
    # Only its own municipality's alert and settlements.
    assert [a["municipality_id"] for a in committee.get("/alerts").json()] == [MUNI_A]
    towns = committee.get("/runs/1/settlements").json()["features"]
    assert {f["properties"]["municipality_id"] for f in towns} == {MUNI_A}
    assert committee.get("/runs/1/settlements",
                         params={"municipality": MUNI_B}).status_code == 403
    assert committee.get("/runs").json()[0]["summary"] is None  # no whole-run figures
    assert committee.get("/runs/1/depth.tif").status_code == 403  # rasters are for analysts
    assert committee.post("/keys", json={"role": "admin", "name": "x"}).status_code == 403
    # Its own subscription, not another's.
    hook = {"url": "http://127.0.0.1:9/cap", "secret": "a-long-shared-secret"}
    assert committee.post("/subscriptions",
                          json={**hook, "municipality_id": MUNI_A}).status_code == 201
    assert committee.post("/subscriptions",
                          json={**hook, "municipality_id": MUNI_B}).status_code == 403
    assert committee.post("/subscriptions", json={**hook, "municipality_id": MUNI_A,
                                                  "secret": "short"}).status_code == 422
    assert [s["municipality_id"] for s in admin.get("/subscriptions").json()] == [MUNI_A]
    bad = admin.post("/keys", json={"role": "committee", "name": "no municipality"})
    assert bad.status_code == 422
    # A misspelt municipality would leave a committee without its alerts: refused, with why.
    typo = admin.post("/keys", json={"role": "committee", "name": "typo",
                                     "municipality_id": "SLV-ADM2-APOPA"})
    assert typo.status_code == 422 and "SLV-ADM2-APOPA" in typo.json()["detail"]
    typo = admin.post("/subscriptions", json={**hook, "municipality_id": "Apopa"})
    assert typo.status_code == 422 and f"is a name, not an id: {MUNI_A}" in typo.json()["detail"]
    assert [s["municipality_id"] for s in admin.get("/subscriptions").json()] == [MUNI_A]
    assert TestClient(app, headers={"X-API-Key": "fw_wrong"}).get("/alerts").status_code == 401
