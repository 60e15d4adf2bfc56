"""Runs through the API: queued from the inbox, executed by the worker, failures recorded."""

from datetime import UTC, datetime

import numpy as np
import xarray as xr
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from api.store.access import create_api_key
from api.store.models import Run
from api.submit import scan_inbox
from api.worker import execute_next
from tests.test_forecast_cli import salvadoran_terrain  # noqa: F401  (fixture)


def _rain(path, mm_per_hour=20.0, hours=12):
    times = np.datetime64("2020-06-01T00:00", "ns") + np.arange(1, hours + 1) * np.timedelta64(
        1, "h")
    xr.Dataset({"pr": (("time", "lat", "lon"), np.full((hours, 3, 3), mm_per_hour),
                       {"units": "mm", "floodwarn_accumulation": "step"})},
               coords={"time": times, "lat": [14.2, 13.9, 13.6],
                       "lon": [-89.4, -89.1, -88.8]}).to_netcdf(path)


def _analyst_client(settings: Settings) -> tuple[FastAPI, TestClient]:
    """The service on ``settings`` and a client holding a fresh analyst key."""
    app = create_app(settings)
    with app.state.sessions.begin() as session:
        _, key = create_api_key(session, role="analyst", name="analista", now=datetime.now(UTC))
    return app, TestClient(app, headers={"X-API-Key": key})


def test_run_from_the_inbox_succeeds_and_a_bad_file_fails_cleanly(salvadoran_terrain,  # noqa: F811
                                                                  tmp_path):
    terrain_dir, _ = salvadoran_terrain
    settings = Settings(data_dir=tmp_path / "data", terrain_dir=terrain_dir, run_worker=False)
    app, client = _analyst_client(settings)
    settings.inbox_dir.mkdir(parents=True)
    _rain(settings.inbox_dir / "storm.nc")
    queued = client.post("/runs", json={"inbox_file": "storm.nc"})
    assert queued.status_code == 202 and queued.json()["status"] == "queued"
    run_id = queued.json()["id"]
    assert execute_next(app.state.sessions, settings) == run_id
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
    assert scan_inbox(app.state.sessions, settings, now=datetime.now(UTC),
                      settle_s=0) == [run_id + 1]  # storm.nc was queued already
    before = client.get("/alerts").json()
    assert execute_next(app.state.sessions, settings) == run_id + 1
    failed = client.get(f"/runs/{run_id + 1}").json()
    assert failed["status"] == "failed" and "NetCDF" in failed["error"]
    assert client.get("/alerts").json() == before
    assert execute_next(app.state.sessions, settings) is None


def test_uploads_are_checked_before_anything_is_stored(salvadoran_terrain, tmp_path):  # noqa: F811
    terrain_dir, _ = salvadoran_terrain
    settings = Settings(data_dir=tmp_path / "data", terrain_dir=terrain_dir, run_worker=False,
                        max_upload_mb=0.05)
    _, client = _analyst_client(settings)
    good = tmp_path / "storm.nc"
    _rain(good)
    answer = client.post("/runs/upload", files={"forecast": ("storm.nc", good.read_bytes())})
    assert answer.status_code == 202, answer.text
    assert len(list(settings.inbox_dir.iterdir())) == 1
    refused = [
        ("notes.txt", b"hello"),                              # not a forecast name
        ("broken.nc", b"not a netcdf file"),                   # not NetCDF
        ("huge.nc", b"\0" * 60_000),                           # over the 0.05 MB limit
    ]
    wrong_units = tmp_path / "wrong.nc"
    _rain(wrong_units)
    import xarray as xr

    with xr.open_dataset(wrong_units) as ds:
        bad = ds.load()
    bad["pr"].attrs["units"] = "furlongs"
    bad.to_netcdf(tmp_path / "furlongs.nc")
    refused.append(("furlongs.nc", (tmp_path / "furlongs.nc").read_bytes()))  # bad units
    for name, content in refused:
        answer = client.post("/runs/upload", files={"forecast": (name, content)})
        assert answer.status_code in (413, 422), (name, answer.status_code)
        assert answer.json()["detail"]
    # Nothing from the refused uploads reached the inbox, the staging area or the store.
    assert len(list(settings.inbox_dir.iterdir())) == 1
    assert list((settings.data_dir / "uploads").iterdir()) == []
    assert len(client.get("/runs").json()) == 1


def test_inbox_waits_for_files_to_settle_and_ignores_hidden_ones(tmp_path):
    import os
    import time

    settings = Settings(data_dir=tmp_path / "data", run_worker=False)
    app = create_app(settings)
    inbox = settings.inbox_dir
    inbox.mkdir(parents=True)
    copying = inbox / "gfs_2026112800.grib2"
    copying.write_bytes(b"GRIB half written")
    (inbox / ".gfs_2026112806.grib2.part").write_bytes(b"GRIB")
    (inbox / "empty.nc").write_bytes(b"")
    now = datetime.now(UTC)
    # Just written: still being copied as far as the scanner can tell.
    assert scan_inbox(app.state.sessions, settings, now=now, settle_s=1.0) == []
    an_hour_ago = time.time() - 3600
    for path in inbox.iterdir():
        os.utime(path, (an_hour_ago, an_hour_ago))
    queued = scan_inbox(app.state.sessions, settings, now=now, settle_s=1.0)
    assert len(queued) == 1  # neither the hidden temporary file nor the empty one
    with app.state.sessions() as session:
        assert session.get(Run, queued[0]).rain_path == str(copying)
    # Never queued twice.
    assert scan_inbox(app.state.sessions, settings, now=now, settle_s=1.0) == []


def test_runs_submitted_from_the_command_line(salvadoran_terrain, tmp_path,  # noqa: F811
                                              monkeypatch):
    from typer.testing import CliRunner

    from api.cli import app as cli

    terrain_dir, _ = salvadoran_terrain
    monkeypatch.setenv("FLOODWARN_TERRAIN_DIR", str(terrain_dir))
    data_dir = tmp_path / "data"
    runner = CliRunner()
    storm = tmp_path / "storm.nc"
    _rain(storm)
    # Queued only: a running service would execute it.
    queued = runner.invoke(cli, ["runs", "submit", str(storm), "--data-dir", str(data_dir)])
    assert queued.exit_code == 0, queued.output
    assert "run 1 queued" in queued.output
    inbox = list((data_dir / "inbox").iterdir())
    assert len(inbox) == 1 and inbox[0].name.endswith("_storm.nc")
    # Executed here and now: the queued one first, then this one; both succeed.
    done = runner.invoke(cli, ["runs", "submit", str(storm), "--data-dir", str(data_dir),
                               "--now"])
    assert done.exit_code == 0, done.output
    listing = runner.invoke(cli, ["runs", "list", "--data-dir", str(data_dir)])
    assert listing.output.count("succeeded") == 2, listing.output
    # A file a run would refuse is refused before anything is queued or copied.
    broken = tmp_path / "broken.nc"
    broken.write_bytes(b"not a netcdf file")
    refused = runner.invoke(cli, ["runs", "submit", str(broken), "--data-dir", str(data_dir)])
    assert refused.exit_code == 2 and "broken.nc" in refused.output
    assert len(list((data_dir / "inbox").iterdir())) == 2
    notes = tmp_path / "notes.txt"
    notes.write_text("hola")
    refused = runner.invoke(cli, ["runs", "submit", str(notes), "--data-dir", str(data_dir)])
    assert refused.exit_code == 2 and "expected a forecast file" in refused.output


def test_a_run_carries_the_reservoir_levels_dgpc_gives(salvadoran_terrain, tmp_path):  # noqa: F811
    terrain_dir, _ = salvadoran_terrain
    settings = Settings(data_dir=tmp_path / "data", terrain_dir=terrain_dir, run_worker=False)
    app, client = _analyst_client(settings)
    settings.inbox_dir.mkdir(parents=True)
    _rain(settings.inbox_dir / "storm.nc")
    refused = client.post("/runs", json={"inbox_file": "storm.nc", "options": {
        "reservoir_levels": {"cerron_grande": 500.0}}})
    assert refused.status_code == 422 and "less than or equal to 247" in refused.text
    unknown = client.post("/runs", json={"inbox_file": "storm.nc", "options": {
        "reservoir_levels": {"lago_ficticio": 10.0}}})
    assert unknown.status_code == 422 and "lago_ficticio" in unknown.text
    assert client.get("/runs").json() == []  # nothing queued by the refusals
    queued = client.post("/runs", json={"inbox_file": "storm.nc", "options": {
        "reservoir_levels": {"cerron_grande": 240.5}}})
    assert queued.status_code == 202, queued.text
    assert queued.json()["options"] == {"reservoir_levels": {"cerron_grande": 240.5}}
    run_id = queued.json()["id"]
    assert execute_next(app.state.sessions, settings) == run_id
    import json

    record = json.loads((settings.data_dir / "runs" / str(run_id) / "run.json").read_text())
    assert record["inputs"]["request"]["reservoir_levels"] == {"cerron_grande": 240.5}
