"""Runs through the API: queued from the inbox, executed by the worker, failures recorded."""

from datetime import UTC, datetime

import numpy as np
import xarray as xr
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import create_api_key
from api.settings import Settings
from api.worker import execute_next, scan_inbox
from tests.test_forecast_cli import salvadoran_terrain  # noqa: F401  (fixture)


def _rain(path, mm_per_hour=20.0, hours=12):
    times = np.datetime64("2020-06-01T00:00", "ns") + np.arange(1, hours + 1) * np.timedelta64(
        1, "h")
    xr.Dataset({"pr": (("time", "lat", "lon"), np.full((hours, 3, 3), mm_per_hour),
                       {"units": "mm", "floodwarn_accumulation": "step"})},
               coords={"time": times, "lat": [14.2, 13.9, 13.6],
                       "lon": [-89.4, -89.1, -88.8]}).to_netcdf(path)


def test_run_from_the_inbox_succeeds_and_a_bad_file_fails_cleanly(salvadoran_terrain,  # noqa: F811
                                                                  tmp_path):
    terrain_dir, _ = salvadoran_terrain
    settings = Settings(data_dir=tmp_path / "data", terrain_dir=terrain_dir, run_worker=False)
    app = create_app(settings)
    with app.state.sessions.begin() as session:
        key = create_api_key(session, role="analyst", name="analista", now=datetime.now(UTC))
    client = TestClient(app, headers={"X-API-Key": key})
    settings.inbox_dir.mkdir(parents=True)
    _rain(settings.inbox_dir / "storm.nc")
    queued = client.post("/runs", json={"inbox_file": "storm.nc"})
    assert queued.status_code == 202 and queued.json()["status"] == "queued"
    run_id = queued.json()["id"]
    assert execute_next(app.state.sessions, settings, terrain_dir) == run_id
    run = client.get(f"/runs/{run_id}").json()
    assert run["status"] == "succeeded", run["error"]
    assert (settings.data_dir / "runs" / str(run_id) / "run.json").exists()
    features = client.get(f"/runs/{run_id}/settlements").json()
    assert features["type"] == "FeatureCollection"
    assert client.get(f"/runs/{run_id}/settlements", params={"level": "purple"}).status_code \
        == 422
    assert client.get("/runs/999").status_code == 404
    assert client.post("/runs", json={"inbox_file": "../etc/passwd"}).status_code == 422

    # A file that is not a forecast: the run fails with the reason, alerts stay as they were.
    (settings.inbox_dir / "broken.nc").write_bytes(b"not a netcdf file")
    assert scan_inbox(app.state.sessions, settings.inbox_dir, now=datetime.now(UTC)) == [
        run_id + 1]  # storm.nc was queued already
    before = client.get("/alerts").json()
    assert execute_next(app.state.sessions, settings, terrain_dir) == run_id + 1
    failed = client.get(f"/runs/{run_id + 1}").json()
    assert failed["status"] == "failed" and "NetCDF" in failed["error"]
    assert client.get("/alerts").json() == before
    assert execute_next(app.state.sessions, settings, terrain_dir) is None
