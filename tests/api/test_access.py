"""Keys revoked at once, secrets sealed at rest, owner-only files, id-based filters, the feed
cached until the next publication, and server faults answered as 5xx without paths."""

import sqlite3
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from api.store.models import Run

ADMIN = "fw_access_admin_0123456789abcdef"
METAPAN = "SLV-ADM2-79315794B34056060"


@pytest.fixture()
def app(tmp_path):
    return create_app(Settings(data_dir=tmp_path / "data", run_worker=False, admin_key=ADMIN))


@pytest.fixture()
def admin(app):
    return TestClient(app, headers={"X-API-Key": ADMIN}, raise_server_exceptions=False)


def _key(admin, role, municipality_id=None):
    body = {"role": role, "name": f"{role} de prueba"}
    if municipality_id is not None:
        body["municipality_id"] = municipality_id
    made = admin.post("/keys", json=body)
    assert made.status_code == 201, made.text
    return made.json()


def test_a_revoked_key_stops_working_at_once(admin):
    analyst = _key(admin, "analyst")
    as_analyst = {"X-API-Key": analyst["key"]}
    assert admin.get("/runs", headers=as_analyst).status_code == 200  # now cached
    listed = {k["id"]: k for k in admin.get("/keys").json()}
    assert listed[analyst["id"]]["revoked"] is False and "key" not in listed[analyst["id"]]
    assert admin.get("/keys", headers=as_analyst).status_code == 403
    revoked = admin.delete(f"/keys/{analyst['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    refused = admin.get("/runs", headers=as_analyst)
    assert refused.status_code == 401 and refused.json()["error"] == "UnauthorizedError"
    assert admin.delete("/keys/99999").status_code == 404


def test_webhook_secrets_are_sealed_and_files_are_owner_only(app, admin, tmp_path):
    data = tmp_path / "data"
    secret = "secreto-del-comite-de-metapan"
    answer = admin.post("/subscriptions", json={"municipality_id": METAPAN,
                                                "url": "http://127.0.0.1:9/cap",
                                                "secret": secret})
    assert answer.status_code == 201, answer.text
    with sqlite3.connect(data / "floodwarn.sqlite") as raw:
        (stored,) = raw.execute("select secret from subscriptions").fetchone()
    assert stored.startswith("fernet:") and secret not in stored
    assert secret.encode() not in (data / "floodwarn.sqlite").read_bytes()
    assert app.state.service.secret_box.open(stored) == secret
    for path in (data / "floodwarn.sqlite", data / "secret.key"):
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert data.stat().st_mode & 0o777 == 0o700
    # A store copied without the key reveals nothing; with another key, nothing opens.
    other = create_app(Settings(data_dir=tmp_path / "other", run_worker=False))
    with pytest.raises(Exception, match="another key"):
        other.state.service.secret_box.open(stored)


def test_clear_secrets_from_an_older_version_are_sealed_at_start(tmp_path):
    data = tmp_path / "data"
    create_app(Settings(data_dir=data, run_worker=False))
    with sqlite3.connect(data / "floodwarn.sqlite") as raw:
        raw.execute("insert into subscriptions (municipality_id, url, secret, created_at) "
                    "values (?, ?, ?, ?)", (METAPAN, "http://h/cap", "clear-secret-12345678",
                                            "2026-11-30 00:00:00"))
    app = create_app(Settings(data_dir=data, run_worker=False))
    with sqlite3.connect(data / "floodwarn.sqlite") as raw:
        (stored,) = raw.execute("select secret from subscriptions").fetchone()
    assert stored.startswith("fernet:")
    assert app.state.service.secret_box.open(stored) == "clear-secret-12345678"


def test_filters_take_ids_and_say_when_a_name_was_given(app, admin):
    with app.state.sessions.begin() as session:
        session.add(Run(id=1, status="succeeded", rain_path="x.nc",
                        created_at=datetime.now(UTC)))
    by_name = admin.get("/runs/1/settlements", params={"municipality": "El Rosario"})
    assert by_name.status_code == 422
    detail = by_name.json()["detail"]
    assert "is a name, not an id" in detail and detail.count("(El Rosario, ") == 3
    assert admin.get("/runs/1/settlements", params={"municipality": METAPAN}).status_code == 200
    department = admin.get("/runs/1/settlements", params={"department": "San Salvador"})
    assert department.status_code == 422 and "its code is SV-SS" in department.json()["detail"]
    assert admin.get("/runs/1/settlements", params={"department": "SV-SS"}).status_code == 200
    # A committee lists runs (without whole-run figures) and reads only its own municipality.
    committee = {"X-API-Key": _key(admin, "committee", METAPAN)["key"]}
    runs = admin.get("/runs", headers=committee)
    assert runs.status_code == 200 and runs.json()[0]["summary"] is None
    other = admin.get("/runs/1/settlements", headers=committee,
                      params={"municipality": "SLV-ADM2-79315794B60430978"})
    assert other.status_code == 403


def test_the_feed_is_built_once_per_publication(app, admin, monkeypatch):
    import api.readcache

    builds = {"n": 0}
    real = api.readcache.atom_feed

    def counting(*args, **kwargs):
        builds["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(api.readcache, "atom_feed", counting)
    bodies = {admin.get("/alerts/feed.atom").text for _ in range(20)}
    assert len(bodies) == 1 and builds["n"] == 1


def test_server_faults_are_5xx_with_a_reference_and_no_path(app, admin, tmp_path):
    with app.state.sessions.begin() as session:  # a run whose outputs vanished from disk
        session.add(Run(id=7, status="succeeded", rain_path="x.nc", created_at=datetime.now(UTC),
                        out_dir=str(tmp_path / "data" / "runs" / "7")))
        (tmp_path / "data" / "runs" / "7").mkdir(parents=True)
        (tmp_path / "data" / "runs" / "7" / "summary.json").write_text("{not json")
    answer = admin.get("/runs/7/summary")
    assert answer.status_code == 500, answer.text
    body = answer.json()
    assert body["error"] == "ServerError" and "reference" in body["detail"]
    assert str(tmp_path) not in answer.text
    missing = admin.get("/runs/7/depth.tif")
    assert missing.status_code == 404 and str(tmp_path) not in missing.text


def test_scrub_paths_keeps_only_file_names():
    from api.errors import scrub_paths

    assert scrub_paths("cannot read /srv/floodwarn-data/inbox/gfs.grib2: truncated") == \
        "cannot read gfs.grib2: truncated"
    assert scrub_paths("ratio 0.2/0.05 stays") == "ratio 0.2/0.05 stays"
    assert "/" not in scrub_paths("see /a/b/c/ and /d/x.nc")


def test_each_delivery_is_signed_when_it_is_sent(app):
    """A backlog goes out in batches: each request carries the time it was sent, not the time
    the delivery pass began (a receiver's replay window would refuse old stamps)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import httpx

    from api.store.models import Alert, AlertVersion, Delivery, Subscription
    from api.webhooks import SIGNATURE_HEADER, deliver_due

    stamps = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            stamps.append(int(self.headers[SIGNATURE_HEADER].split(",")[0][2:]))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/cap"
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    box = app.state.service.secret_box
    with app.state.sessions.begin() as session:
        session.add(Alert(id=1, municipality_id=METAPAN, in_force=True, level="roja"))
        session.flush()
        session.add(AlertVersion(id=1, alert_id=1, identifier="m1", msg_type="Alert",
                                 level="roja", sent=now, expires=None, cap_xml="<alert/>"))
        for n in range(1, 4):
            session.add(Subscription(id=n, municipality_id=METAPAN, url=url,
                                     secret=box.seal("s" * 16), created_at=now))
            session.flush()
            session.add(Delivery(alert_version_id=1, subscription_id=n,
                                 idempotency_key=f"k{n}", status="pending", attempts=0,
                                 next_attempt_at=now))
    ticks = iter(range(1_800_000_000, 1_800_000_100, 7))
    with httpx.Client() as client:
        sent = deliver_due(app.state.sessions, client, box, now=now, parallel=1,
                           clock=lambda: datetime.fromtimestamp(next(ticks), UTC))
    server.shutdown()
    assert sent == {"delivered": 3, "retry": 0, "failed": 0}
    assert stamps == [1_800_000_000, 1_800_000_007, 1_800_000_014]


def test_a_bug_is_a_500_never_a_404(app, admin, monkeypatch):
    """A KeyError inside a handler is the server's fault (it used to answer 404), as is a
    server-side file error (it used to answer 400)."""
    import api.routers.runs
    from floodwarn.errors import DataFileError

    def broken(*_args, **_kwargs):
        raise KeyError("settlement_id")

    monkeypatch.setattr(api.routers.runs, "get_run", broken)
    assert admin.get("/runs/1").status_code == 500

    def missing(*_args, **_kwargs):
        raise DataFileError("/srv/floodwarn-data/runs/1/centres.gpkg: file not found.")

    monkeypatch.setattr(api.routers.runs, "succeeded_output_dir", missing)
    answer = admin.get("/runs/1/centres")
    assert answer.status_code == 500 and "/srv" not in answer.text


def test_the_last_admin_key_and_duplicate_webhooks_are_refused(admin):
    keys = admin.get("/keys").json()
    (only_admin,) = [k for k in keys if k["role"] == "admin" and not k["revoked"]]
    refused = admin.delete(f"/keys/{only_admin['id']}")
    assert refused.status_code == 422 and "last administrator key" in refused.text
    hook = {"municipality_id": METAPAN, "url": "http://127.0.0.1:9/cap",
            "secret": "secreto-de-metapan-2026"}
    first = admin.post("/subscriptions", json=hook)
    assert first.status_code == 201
    again = admin.post("/subscriptions", json=hook)
    assert again.status_code == 422 and "already receives" in again.text
    assert admin.delete(f"/subscriptions/{first.json()['id']}").status_code == 200
    assert admin.get("/subscriptions").json() == []
    assert admin.post("/subscriptions", json=hook).status_code == 201  # may come back
    assert admin.delete("/subscriptions/9999").status_code == 404
    assert admin.post("/keys", json={"role": "analyst", "name": "   "}).status_code == 422
