"""`floodwarn serve` starts the real service: health and the feed over HTTP."""

import os
import socket
import subprocess
import sys
import time

import httpx


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_over_http(tmp_path):
    port = _free_port()
    env = {**os.environ, "FLOODWARN_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from api.cli import app; app()", "serve", "--port", str(port),
         "--no-demo"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.time() < deadline, "the service did not start within 60 s"
                time.sleep(0.3)
        assert health.json()["status"] == "ok"
        feed = httpx.get(f"http://127.0.0.1:{port}/alerts/feed.atom", timeout=5)
        assert feed.status_code == 200
        assert feed.headers["content-type"].startswith("application/atom+xml")
        assert (tmp_path / "data" / "floodwarn.sqlite").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
