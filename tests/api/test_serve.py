"""`floodwarn serve` starts the real service: health and the feed over HTTP."""

import os
import socket
import subprocess
import sys
import time

import httpx

from tests.live_service import SENDER


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(port, env, *options):
    proc = subprocess.Popen(
        [sys.executable, "-c", "from api.cli import app; app()", "serve", "--port", str(port),
         *options], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while True:
        try:
            return proc, httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
        except httpx.TransportError:
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read().decode()) from None
            assert time.time() < deadline, "the service did not start within 300 s"
            time.sleep(0.3)


def test_serve_answers_over_http(tmp_path):
    port = _free_port()
    env = {**os.environ, "FLOODWARN_DATA_DIR": str(tmp_path / "data")}
    proc, health = _start(port, env, "--no-demo")
    try:
        assert health.json()["status"] == "ok"
        feed = httpx.get(f"http://127.0.0.1:{port}/alerts/feed.atom", timeout=5)
        assert feed.status_code == 200
        assert feed.headers["content-type"].startswith("application/atom+xml")
        assert (tmp_path / "data" / "floodwarn.sqlite").exists()
        # No key configured: the first start made an admin key, kept for its owner only.
        key_file = tmp_path / "data" / "admin-key.txt"
        assert key_file.stat().st_mode & 0o777 == 0o600
        key = key_file.read_text().strip()
        assert httpx.get(f"http://127.0.0.1:{port}/runs", timeout=5).status_code == 401
        assert httpx.get(f"http://127.0.0.1:{port}/runs", headers={"X-API-Key": key},
                         timeout=5).json() == []
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # A second start does not make another key.
    proc, _ = _start(port, env, "--no-demo")
    proc.terminate()
    proc.wait(timeout=30)
    assert key_file.read_text().strip() == key


def test_first_start_runs_the_demo_through_to_alerts(demo_service):
    """The README's main job: `floodwarn serve` on an empty store builds the SYNTHETIC demo
    terrain, runs the demo storm in its worker and publishes Exercise alerts to the feed.
    Settings come from a file; the environment names the data folder."""
    service, run = demo_service
    base, admin = service.base, service.admin
    assert run["synthetic"] is True
    alerts = httpx.get(f"{base}/alerts", headers=admin, timeout=10).json()
    assert alerts and {a["level"] for a in alerts} <= {"amarilla", "naranja", "roja"}
    cap = httpx.get(base + alerts[0]["cap_url"], timeout=10).text
    assert "<status>Exercise</status>" in cap
    assert f"<sender>{SENDER}</sender>" in cap  # from the file
    feed = httpx.get(f"{base}/alerts/feed.atom", timeout=10).text
    assert feed.count("<entry>") == len(alerts)
    roja = httpx.get(f"{base}/runs/{run['id']}/settlements", params={"level": "roja"},
                     headers=admin, timeout=10).json()
    assert roja["features"] and all(
        f["properties"]["level"] == "roja" for f in roja["features"])
