"""Webhooks over real HTTP: signed, retried while the receiver is down, delivered once per
idempotency key, and surviving a restart of the service (a new store connection)."""

import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import geopandas as gpd
import httpx
import pytest
from sqlalchemy import select

from api.publish import publish_run_alerts
from api.settings import Settings
from api.store.db import open_store
from api.store.models import Delivery, Run, Subscription
from api.webhooks import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    backoff,
    deliver_due,
    sign,
    verify,
)
from tests.api.test_alerts import run_dir  # noqa: F401  (fixture)
from tests.test_forecast_cli import salvadoran_terrain  # noqa: F401  (fixture)

SECRET = "s3cret-committee"
NOW = datetime(2020, 6, 1, 6, tzinfo=UTC)


class Receiver:
    """A committee's endpoint: verifies signatures with ``secret``, answers 503 for its first
    ``down_for`` requests (an outage), counts every receipt of each idempotency key
    (``applied``) and acts on a key's first receipt only (``acted``). While ``hold`` is set, a
    request waits for ``release`` before it is answered (a sender killed mid-delivery)."""

    def __init__(self, down_for: int = 0, secret: str = SECRET):
        self.down_for, self.requests, self.applied, self.bad_signatures = down_for, 0, {}, 0
        self.keys_seen: list[str] = []
        self.acted: list[str] = []
        self.hold, self.release, self.arrived = (threading.Event() for _ in range(3))
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests += 1
                if receiver.requests <= receiver.down_for:
                    self.send_response(503)
                    self.end_headers()
                    return
                if not verify(secret, self.headers[SIGNATURE_HEADER], body):
                    receiver.bad_signatures += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                key = self.headers[IDEMPOTENCY_HEADER]
                receiver.keys_seen.append(key)
                if receiver.hold.is_set():
                    receiver.arrived.set()
                    receiver.release.wait(60)
                receiver.applied[key] = receiver.applied.get(key, 0) + 1
                if key not in receiver.acted:
                    receiver.acted.append(key)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cap"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()


def test_signature_round_trip_and_tampering():
    body = b"<alert/>"
    header = sign(SECRET, 1_600_000_000, body)
    assert verify(SECRET, header, body)
    assert not verify(SECRET, header, b"<alert>changed</alert>")
    assert not verify("other", header, body)
    assert not verify(SECRET, "garbage", body)
    assert backoff(1) == timedelta(seconds=30) and backoff(30) == timedelta(hours=1)


@pytest.fixture()
def receiver():
    r = Receiver(down_for=2)
    yield r
    r.close()


def test_delivered_once_after_an_outage_and_a_restart(run_dir, receiver, tmp_path):  # noqa: F811
    settings = Settings(data_dir=tmp_path / "data")
    _engine, sessions = open_store(settings.store_url)
    box = settings.secret_box()
    towns = gpd.read_file(run_dir / "settlements.gpkg")
    with sessions.begin() as session:
        session.add(Run(id=1, status="succeeded", rain_path="x.nc", created_at=NOW))
        for muni in sorted(set(towns["municipality_id"])):
            session.add(Subscription(municipality_id=muni, url=receiver.url,
                                     secret=box.seal(SECRET), created_at=NOW))
    with sessions.begin() as session:
        versions = publish_run_alerts(session, run_id=1, out_dir=run_dir, sender="fw@test",
                                      now=NOW)
    assert versions
    with httpx.Client() as client:
        first = deliver_due(sessions, client, box, now=NOW)
        assert first["retry"] >= 1  # the receiver is down
        _engine.dispose()
        # "Restart": a new process would open the same store and find the pending outbox.
        _engine, sessions = open_store(settings.store_url)
        for hour in range(1, 6):
            deliver_due(sessions, client, box, now=NOW + timedelta(hours=hour))
        # Due again much later: nothing is sent twice.
        assert deliver_due(sessions, client, box, now=NOW + timedelta(days=1)) == {
            "delivered": 0, "retry": 0, "failed": 0}
    with sessions() as session:
        deliveries = session.scalars(select(Delivery)).all()
    assert deliveries and all(d.status == "delivered" for d in deliveries)
    assert receiver.bad_signatures == 0
    assert set(receiver.applied) == {d.idempotency_key for d in deliveries}
    assert all(count == 1 for count in receiver.applied.values())
    assert receiver.requests == len(deliveries) + 2  # plus the two refused during the outage
    # The delivery log of each alert shows every attempt: the outage's 503s, then delivery.
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.store.access import create_api_key

    app = create_app(Settings(data_dir=tmp_path / "data", run_worker=False))
    with app.state.sessions.begin() as session:
        _, analyst = create_api_key(session, role="analyst", name="analista", now=NOW)
        _, other = create_api_key(session, role="committee", name="otro comité", now=NOW,
                                  municipality_id="SV-NOT-THIS-ONE")
    client = TestClient(app, headers={"X-API-Key": analyst})
    logs = [client.get(f"/alerts/{v.identifier}/deliveries").json() for v in versions]
    entries = [entry for log in logs for entry in log]
    assert len(entries) == len(deliveries)
    attempts = [a for entry in entries for a in entry["attempts"]]
    assert len(attempts) == receiver.requests
    assert all(entry["attempts"][-1]["outcome"] == "delivered" for entry in entries)
    refused = [a for a in attempts if a["outcome"] == "retry"]
    assert len(refused) == 2 and all(a["detail"] == "HTTP 503" for a in refused)
    assert client.get(f"/alerts/{versions[0].identifier}/deliveries",
                      headers={"X-API-Key": other}).status_code == 403
    assert client.get("/alerts/nope/deliveries").status_code == 404
