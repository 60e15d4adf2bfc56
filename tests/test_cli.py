"""End-to-end tests of every CLI command, on real files and a real local HTTP server."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from floodwarn.cli import app
from floodwarn.io.terrain_files import load_terrain_model

runner = CliRunner()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def tile_server(tmp_path, srtm_tile):
    """Serve the real SRTM tile in the 'skadi' layout (N44/N44W072.hgt.gz) over HTTP."""
    root = tmp_path / "www"
    (root / "N44").mkdir(parents=True)
    with gzip.open(root / "N44" / "N44W072.hgt.gz", "wb") as fh:
        fh.write(srtm_tile.read_bytes())
    (root / "N45").mkdir()
    (root / "N45" / "N45W072.hgt.gz").write_bytes(b"<html>not a tile</html>")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _fetch(server: str, out: Path, west: str, south: str, east: str, north: str):
    """`floodwarn data fetch-dem` of SRTM tiles from the local test server."""
    return runner.invoke(
        app,
        [
            "data",
            "fetch-dem",
            "--bbox",
            west,
            south,
            east,
            north,
            "--source",
            "srtm",
            "--base-url",
            server,
            "--out",
            str(out),
        ],
    )


def test_fetch_dem_downloads_and_mosaics_the_real_tile(tile_server, tmp_path, srtm_tile):
    out = tmp_path / "dem.tif"
    result = _fetch(tile_server, out, "-72", "44", "-71", "45")
    assert result.exit_code == 0, result.output
    assert "1 downloaded" in result.output
    with rasterio.open(out) as got, rasterio.open(srtm_tile) as ref:
        assert got.crs.to_epsg() == 4326
        np.testing.assert_array_equal(got.read(1), ref.read(1))
        assert "SRTM" in got.tags()["floodwarn_source"]
    again = _fetch(tile_server, out, "-72", "44", "-71", "45")
    assert "1 from cache" in again.output


def test_fetch_dem_skips_missing_ocean_tiles(tile_server, tmp_path):
    out = tmp_path / "dem.tif"
    result = _fetch(tile_server, out, "-73", "44", "-71", "45")
    assert result.exit_code == 0, result.output
    assert "1 missing" in result.output and "N44W073" in result.output
    with rasterio.open(out) as got:
        west_half = got.read(1)[:, : got.width // 2 - 1]
        assert (west_half == got.nodata).all()


def test_fetch_dem_refuses_a_corrupt_download(tile_server, tmp_path):
    result = _fetch(tile_server, tmp_path / "x.tif", "-72", "45", "-71", "46")
    assert result.exit_code == 2
    assert "not a valid gzip file" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "x.tif").exists()


def test_fetch_dem_bad_bbox(tmp_path):
    result = runner.invoke(
        app,
        ["data", "fetch-dem", "--bbox", "-71", "44", "-72", "45", "--out", str(tmp_path / "x.tif")],
    )
    assert result.exit_code == 2 and "not a valid lon/lat box" in result.output


def test_terrain_build_and_info(srtm_tile, tmp_path):
    out = tmp_path / "model"
    result = runner.invoke(
        app,
        [
            "terrain",
            "build",
            "--dem",
            str(srtm_tile),
            "--out",
            str(out),
            "--crs",
            "auto",
            "--stream-area-km2",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    for name in (
        "conditioned.tif",
        "flowdir.tif",
        "accumulation.tif",
        "hand.tif",
        "reach_id.tif",
        "catchment_id.tif",
        "reaches.gpkg",
        "terrain.json",
    ):
        assert (out / name).exists(), name
    meta = json.loads((out / "terrain.json").read_text())
    assert meta["parameters"]["stream_area_km2"] == 2
    assert meta["epsg"] == 32619
    model = load_terrain_model(out)
    assert len(model.reaches) == meta["statistics"]["reaches"]
    info = runner.invoke(app, ["terrain", "info", str(out)])
    assert info.exit_code == 0 and "reaches" in info.output


def test_terrain_build_bad_input_is_one_clear_message(tmp_path):
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"not a raster at all")
    result = runner.invoke(
        app, ["terrain", "build", "--dem", str(bad), "--out", str(tmp_path / "m")]
    )
    assert result.exit_code == 2
    assert "cannot be read as a DEM" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "m" / "terrain.json").exists()


def test_data_check_validates_every_shipped_layer():
    result = runner.invoke(app, ["data", "check"])
    assert result.exit_code == 0, result.output
    assert "262" in result.output and "102" in result.output


def test_check_sites_summarises_a_good_list_and_names_every_bad_row():
    sites = Path(__file__).parent / "data" / "sites"
    good = runner.invoke(app, ["data", "check-sites", str(sites / "albergues.csv")])
    assert good.exit_code == 0, good.output
    assert "5 sitios / sites" in good.output
    bad = runner.invoke(app, ["data", "check-sites", str(sites / "albergues_con_errores.csv")])
    assert bad.exit_code == 2
    assert "12 problem(s)" in bad.output and "nothing was imported" in bad.output
    for row in (2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12):
        assert f"row {row} " in bad.output


@pytest.mark.slow
def test_demo_builds_the_synthetic_el_salvador_terrain(demo_output):
    # `floodwarn demo --out DIR` through the CLI, run once per session for this test and the
    # notebooks (tests/conftest.py).
    result = demo_output
    demo = demo_output.out_dir
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC" in result.output and "plausibility / verosimilitud" in result.output
    meta = json.loads((demo / "terrain" / "terrain.json").read_text())
    assert meta["dem"]["synthetic"] is True
    assert meta["epsg"] == 32616 and meta["cellsize_m"] == 90
    with rasterio.open(demo / "terrain" / "hand.tif") as src:
        assert src.tags()["floodwarn_synthetic"] == "true"
    stats = meta["statistics"]
    assert stats["reaches"] > 10_000 and stats["max_strahler"] >= 6
    # The Amanda-scale storm ran through the hydrological model.
    run = json.loads((demo / "forecast" / "run.json").read_text())
    assert run["synthetic"] is True and run["rain"]["steps"] == 72
    assert 150 < run["rain_total_mm_mean"] < 500
    assert run["reaches_at_or_above_return_period"]["2"] > 0
    # ... and the flood map and risk of the shipped towns and shelters.
    assert "worst-hit places" in result.output
    forecast = demo / "forecast"
    for name in ("depth.tif", "first_flooding_hours.tif", "settlements.gpkg", "centres.gpkg",
                 "evacuation.csv", "summary.json"):
        assert (forecast / name).exists(), name
    summary = json.loads((forecast / "summary.json").read_text())
    assert sum(summary["settlements_by_level"].values()) == 102
    # Issue 10's bar for a believable demo storm: every level is reached; no large river runs
    # past its DEM rating curve; no town is deeper than 10 m unless a warning explains it;
    # the Lempa and the people exposed are of the order of 12-E (2011) and Amanda (2020).
    assert all(summary["settlements_by_level"][lv] > 0
               for lv in ("verde", "amarilla", "naranja", "roja"))
    report = run["plausibility"]
    assert report["rating_curves"]["large_rivers_on_extended_curve"] == 0
    assert report["rating_curves"]["large_rivers_beyond_curve"] == 0
    warned = {w.get("settlement_id") for w in report["warnings"]}
    towns = gpd.read_file(forecast / "settlements.gpkg")
    assert set(towns.loc[towns["max_depth_m"] > 10, "id"]) <= warned
    lempa = report["francou_rodier"]["largest_rivers"][0]
    assert lempa["area_km2"] > 15_000 and 3_000 < lempa["peak_m3s"] < 15_000
    assert 5_000 < run["risk"]["people_exposed"] < 150_000
    assert abs(run["mass_balance"]["relative_error"]) < 1e-3
    # The reservoirs and lakes burned into the stand-in are found as lakes, routed as level
    # pools, and their water is not flooded land.
    bodies = {b["id"]: b for b in run["water_bodies"]}
    assert len(bodies) == 7
    assert all(b["found_by"] == "flat water surface on the DEM" for b in bodies.values())
    assert all(0.9 < b["surface_km2"] / b["published_km2"] < 1.1 for b in bodies.values())
    assert bodies["coatepeque"]["peak_outflow_m3s"] == 0.0  # no surface outlet
    from floodwarn.hydrology.water_bodies import locate_water_bodies
    from floodwarn.parameters import WaterBodies, load_parameters

    model = load_terrain_model(demo / "terrain")
    lakes = locate_water_bodies(model, load_parameters(WaterBodies)).surface
    with rasterio.open(forecast / "depth.tif") as src:
        depth = src.read(1)
    assert np.isnan(depth[lakes]).all() and np.isnan(depth[model.reach_id > 0]).all()
    assert sum(summary["centres_by_status"].values()) == run["risk"]["centres_by_status"][
        "safe"] + run["risk"]["centres_by_status"]["at_risk"] + run["risk"][
        "centres_by_status"]["unsafe"]


def test_standin_dem_is_reproducible_and_marked_synthetic(tmp_path):
    from floodwarn.standin_dem import StandinParameters, make_standin_dem

    small = StandinParameters(bbox_lonlat=(-89.3, 13.4, -89.0, 13.7), cellsize_m=180.0)
    a, _grid = make_standin_dem(small)
    b, _ = make_standin_dem(small)
    np.testing.assert_array_equal(a, b)
    assert np.isnan(a).any() and (~np.isnan(a)).any()  # the Pacific is nodata
    result = runner.invoke(app, ["data", "standin-dem", "--out", str(tmp_path / "s.tif")])
    assert result.exit_code == 0 and "SYNTHETIC" in result.output
    with rasterio.open(tmp_path / "s.tif") as src:
        assert src.tags()["floodwarn_synthetic"] == "true"
        assert src.res == (90.0, 90.0) and src.crs.to_epsg() == 32616


def test_second_build_in_a_new_process_compiles_nothing(srtm_tile, tmp_path):
    """The numba cache makes a second `terrain build` in a new process pay no JIT compile."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    stats = []
    for run in ("first", "second"):
        out = tmp_path / run
        subprocess.run(
            [
                sys.executable,
                "-m",
                "floodwarn.cli",
                "terrain",
                "build",
                "--dem",
                str(srtm_tile),
                "--out",
                str(out),
                "--crs",
                "auto",
            ],
            check=True,
            env=env,
            capture_output=True,
        )
        stats.append(json.loads((out / "terrain.json").read_text())["jit"])
    assert stats[0]["cache_misses"] > 0
    assert stats[1]["cache_misses"] == 0 and stats[1]["cache_hits"] >= stats[0]["cache_misses"]


def test_version():
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0 and result.output.strip()


def test_package_never_reads_machine_paths():
    """Shipped data and models are found relative to the package, not a machine path."""
    from floodwarn.paths import gis_data_dir, models_dir

    assert gis_data_dir() == Path(__file__).resolve().parents[1] / "gis_data"
    assert models_dir().name == "models"
