"""Crash recovery over real processes: `floodwarn serve` killed with SIGKILL during a run and
during a webhook delivery, then restarted, on SQLite and on PostgreSQL. No accepted forecast is
lost, no alert is published twice, each delivery is applied once by its receiver."""

import os
import signal
import time
from datetime import UTC, datetime

import httpx
import numpy as np
import xarray as xr
from sqlalchemy import create_engine, text

from tests.api.test_serve import _free_port, _start
from tests.api.test_store import _postgres_database
from tests.api.test_webhooks import Receiver
from tests.test_forecast_cli import salvadoran_terrain  # noqa: F401  (fixture)

ADMIN = "fw_fault_admin_0123456789abcdef"
SECRET = "comite-tenancingo-2026"
TENANCINGO = "SLV-ADM2-79315794B97377913"  # Cuscatlán


def _storm(path, start):
    """720 mm in a day over the terrain, starting this hour: alerts in force now."""
    times = np.datetime64(start.replace(tzinfo=None), "ns") + np.arange(1, 25) * \
        np.timedelta64(1, "h")
    xr.Dataset({"pr": (("time", "lat", "lon"), np.full((24, 3, 3), 30.0),
                       {"units": "mm", "floodwarn_accumulation": "step"})},
               coords={"time": times, "lat": [14.2, 13.9, 13.6],
                       "lon": [-89.4, -89.1, -88.8]}).to_netcdf(path)


def _wait(what, check, timeout):
    deadline = time.time() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.time() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.02)


def _scenario(store_url, terrain_dir, tmp_path):
    data = tmp_path / "data"
    env = {**os.environ, "FLOODWARN_DATA_DIR": str(data), "FLOODWARN_TERRAIN_DIR":
           str(terrain_dir), "FLOODWARN_ADMIN_KEY": ADMIN, "FLOODWARN_RUN_LEASE_S": "3",
           "FLOODWARN_DATABASE_URL": store_url}
    engine = create_engine(store_url)

    def sql(query, **params):
        with engine.connect() as connection:
            return connection.execute(text(query), params).all()

    port = _free_port()
    base, admin = f"http://127.0.0.1:{port}", {"X-API-Key": ADMIN}
    receiver = Receiver(secret=SECRET)
    proc, _ = _start(port, env, "--no-demo")
    try:
        answer = httpx.post(f"{base}/subscriptions", headers=admin, timeout=10, json={
            "municipality_id": TENANCINGO, "url": receiver.url, "secret": SECRET})
        assert answer.status_code == 201, answer.text
        # 1. Killed during a run.
        _storm(tmp_path / "storm.nc", datetime.now(UTC).replace(minute=0, second=0,
                                                                microsecond=0))
        (data / "inbox").mkdir(parents=True, exist_ok=True)
        (tmp_path / "storm.nc").rename(data / "inbox" / "tormenta.nc")
        receiver.hold.set()
        _wait("run started", lambda: sql("select id from runs where status = 'running'"), 60)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert sql("select status from runs") == [("running",)]  # left by the crash
        restarted = time.time()
        proc, _ = _start(port, env, "--no-demo")
        _wait("run published after the restart",
              lambda: sql("select status from runs where status = 'succeeded'"), 90)
        published_after_s = time.time() - restarted
        assert published_after_s < 60
        run = httpx.get(f"{base}/runs/1", headers=admin, timeout=10).json()
        assert run["status"] == "succeeded" and run["attempts"] == 2, run
        versions = sql("select municipality_id, msg_type from alert_versions "
                       "join alerts on alerts.id = alert_versions.alert_id")
        assert versions and all(kind == "Alert" for _, kind in versions)
        assert len({m for m, _ in versions}) == len(versions)  # one message per warning
        assert (TENANCINGO, "Alert") in versions
        # 2. Killed while a delivery is in flight (the receiver holds the request).
        _wait("delivery sent", receiver.arrived.is_set, 60)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        receiver.hold.clear()
        receiver.release.set()  # answers a connection nobody listens to any more
        proc, _ = _start(port, env, "--no-demo")
        _wait("delivery recorded after the restart",
              lambda: sql("select 1 from deliveries where status = 'delivered'"), 90)
        deliveries = sql("select idempotency_key, status from deliveries")
        assert [status for _, status in deliveries] == ["delivered"]
        key = deliveries[0][0]
        assert receiver.keys_seen == [key, key]  # sent again after the crash, same key
        assert receiver.acted == [key] and receiver.bad_signatures == 0
        assert len(sql("select id from alert_versions")) == len(versions)  # nothing re-sent
        health = httpx.get(f"{base}/health", timeout=10).json()
        assert health["status"] == "ok", health
        return published_after_s
    finally:
        receiver.close()
        proc.kill()
        proc.wait(timeout=10)
        engine.dispose()


def test_kill_9_during_a_run_and_a_delivery_sqlite(salvadoran_terrain, tmp_path):  # noqa: F811
    terrain_dir, _ = salvadoran_terrain
    url = f"sqlite:///{tmp_path / 'data' / 'floodwarn.sqlite'}"
    assert _scenario(url, terrain_dir, tmp_path) < 60


def test_kill_9_during_a_run_and_a_delivery_postgresql(salvadoran_terrain,  # noqa: F811
                                                       tmp_path):
    terrain_dir, _ = salvadoran_terrain
    with _postgres_database() as url:
        assert _scenario(url, terrain_dir, tmp_path) < 60

