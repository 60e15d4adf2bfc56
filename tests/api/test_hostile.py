"""Hostile and mistaken uploads are refused before any work, with a 4xx naming the file (or
a 503 when the service's own storage fails); nothing reaches the inbox or the store."""

import errno
import os
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import netCDF4
import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tests.api.test_runs import _rain
from tests.api.test_serve import _free_port
from tests.test_forecast_cli import salvadoran_terrain  # noqa: F401  (fixture)

ADMIN = "fw_hostile_admin_0123456789abcd"
GFS_GRIB2 = (Path(__file__).parents[1] / "data" / "rainfall"
             / "gfs_20110110_12z_f114-120_precip.grib2")


@pytest.fixture()
def service(salvadoran_terrain, tmp_path):  # noqa: F811
    terrain_dir, _ = salvadoran_terrain
    settings = Settings(data_dir=tmp_path / "data", terrain_dir=terrain_dir, run_worker=False,
                        admin_key=ADMIN, max_upload_mb=2)
    app = create_app(settings)
    return settings, TestClient(app, headers={"X-API-Key": ADMIN},
                                raise_server_exceptions=False)


def declared_only(path, shape):
    """A tiny NetCDF declaring a rain variable of ``shape`` (time, lat, lon): no data written."""
    with netCDF4.Dataset(path, "w") as ds:
        for name, size in zip(("time", "lat", "lon"), shape, strict=True):
            ds.createDimension(name, size)
        ds.createVariable("time", "f8", ("time",)).units = "hours since 2026-11-30 00:00"
        ds.createVariable("lat", "f4", ("lat",))
        ds.createVariable("lon", "f4", ("lon",))
        rain = ds.createVariable("pr", "f4", ("time", "lat", "lon"))
        rain.units = "mm"


def _untouched(settings, client, inbox_files=0):
    assert len(list(settings.inbox_dir.glob("*"))) == inbox_files
    uploads = settings.uploads_dir
    assert not uploads.exists() or list(uploads.iterdir()) == []
    assert client.get("/runs").json() == []


@pytest.mark.parametrize("shape", [(16, 4000, 4000), (1000, 100_000, 100_000)])
def test_declared_sizes_are_refused_before_anything_is_allocated(service, tmp_path, shape):
    import psutil

    settings, client = service
    path = tmp_path / "huge.nc"
    declared_only(path, shape)
    assert path.stat().st_size < 100_000
    before = psutil.Process().memory_info().rss
    start = time.perf_counter()
    answer = client.post("/runs/upload", files={"forecast": ("huge.nc", path.read_bytes())})
    seconds = time.perf_counter() - start
    grown_mb = (psutil.Process().memory_info().rss - before) / 2**20
    assert answer.status_code == 422, answer.text
    assert "huge.nc" in answer.json()["detail"] and "cells" in answer.json()["detail"]
    assert seconds < 5 and grown_mb < 100
    _untouched(settings, client)


def test_names_are_checked_never_globbed_and_paths_never_echoed(service, tmp_path):
    settings, client = service
    good = tmp_path / "storm.nc"
    _rain(good)
    content = good.read_bytes()
    for name, reason in [("x" * 293 + ".nc", "characters long"),
                         ("*.nc", "expected a forecast file"),
                         ("../../etc/passwd.nc", "holds a folder"),
                         ("notes.txt", "expected a forecast file")]:
        answer = client.post("/runs/upload", files={"forecast": (name, content)})
        assert answer.status_code == 422, (name, answer.text)
        if reason:
            assert reason in answer.json()["detail"], answer.text
        assert str(settings.data_dir) not in answer.text
    long_inbox = client.post("/runs", json={"inbox_file": "y" * 197 + ".nc"})
    assert long_inbox.status_code == 422 and "at most 160 characters" in long_inbox.text
    _untouched(settings, client)
    # Brackets are never a pattern: the name is made plain and the file itself is read.
    kept = client.post("/runs/upload", files={"forecast": ("pronóstico [1].nc", content)})
    assert kept.status_code == 202, kept.text
    assert kept.json()["rain_file"].endswith("_pronostico_1_.nc")


def test_links_in_the_inbox_are_never_followed(service, tmp_path):
    settings, client = service
    outside = tmp_path / "secret.nc"
    _rain(outside)
    settings.inbox_dir.mkdir(parents=True)
    os.symlink(outside, settings.inbox_dir / "link.nc")
    answer = client.post("/runs", json={"inbox_file": "link.nc"})
    assert answer.status_code == 422 and "links are not followed" in answer.text
    from api.submit import scan_inbox

    os.utime(settings.inbox_dir / "link.nc", (0, 0), follow_symlinks=False)
    assert scan_inbox(client.app.state.sessions, settings, now=datetime.now(UTC),
                      settle_s=0) == []
    assert client.get("/runs").json() == []


def test_a_corrupt_grib_is_a_4xx_naming_the_file(service):
    settings, client = service
    data = bytearray(GFS_GRIB2.read_bytes())
    rng = np.random.default_rng(7)
    for index in rng.integers(200, len(data) - 10, 400):  # flipped bits past the header
        data[index] ^= 0xFF
    answer = client.post("/runs/upload", files={"forecast": ("gfs_danado.grib2", bytes(data))})
    assert answer.status_code == 422, answer.text
    assert "gfs_danado.grib2" in answer.json()["detail"]
    _untouched(settings, client)


def test_a_read_only_data_folder_is_a_503_not_a_500(service, tmp_path, monkeypatch):
    import api.submit

    settings, client = service
    good = tmp_path / "storm.nc"
    _rain(good)
    real_open = os.open

    def read_only(path, flags, *args):
        if str(path).startswith(str(settings.uploads_dir)) and flags & os.O_CREAT:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(api.submit.os, "open", read_only)
    answer = client.post("/runs/upload", files={"forecast": ("storm.nc", good.read_bytes())})
    assert answer.status_code == 503, answer.text
    assert "not writable" in answer.json()["detail"]
    assert str(settings.data_dir) not in answer.text


def test_uploads_stream_with_the_limit_enforced_while_reading(service, tmp_path):
    """Over real HTTP: a declared size over the limit is refused before the body is read; a
    chunked upload with no declared size is cut off as it passes the limit, and nothing of
    it stays on disk."""
    settings, _ = service
    app = create_app(settings)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    while not server.started:
        time.sleep(0.05)
    try:
        sent = {"bytes": 0}
        boundary = "floodwarn-test-boundary"

        def body(total_mb):
            yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"forecast\"; "
                   f"filename=\"big.nc\"\r\n\r\n").encode()
            chunk = b"\0" * (1 << 20)
            for _ in range(total_mb):
                sent["bytes"] += len(chunk)
                yield chunk
            yield f"\r\n--{boundary}--\r\n".encode()

        headers = {"X-API-Key": ADMIN,
                   "Content-Type": f"multipart/form-data; boundary={boundary}"}
        # Only the head of a 600 MB request is sent: the answer comes before any body.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall((f"POST /runs/upload HTTP/1.1\r\nHost: x\r\nX-API-Key: {ADMIN}\r\n"
                         f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                         f"Content-Length: {600 * 2**20}\r\n\r\n").encode())
            head = raw.recv(65536).decode()
        assert head.startswith("HTTP/1.1 413") and "600 MB" in head, head
        try:
            chunked = httpx.post(f"{base}/runs/upload", headers=headers, content=body(64),
                                 timeout=30)
            assert chunked.status_code == 413, chunked.text
            assert "2 MB limit" in chunked.json()["detail"]
        except httpx.HTTPError:
            pass  # the server may close the connection while the client still writes
        assert not settings.uploads_dir.exists() or list(settings.uploads_dir.iterdir()) == []
        assert not settings.inbox_dir.exists() or list(settings.inbox_dir.iterdir()) == []
    finally:
        server.should_exit = True
        thread.join(10)
