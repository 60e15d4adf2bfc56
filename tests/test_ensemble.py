"""Ensembles: members as tasks, serial or on Dask (a local cluster, and a real `dask scheduler`
with two `dask worker` processes), and the probabilities they give, against each member run
alone and counted by hand."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import xarray as xr
from shapely.geometry import Point
from typer.testing import CliRunner

from floodwarn.cli import app
from floodwarn.ensemble import (
    EnsembleExecutionError,
    Execution,
    MemberProgress,
    hydrograph_bands,
    member_chunks,
)
from floodwarn.parameters import LEVELS, LevelRules, load_parameters
from floodwarn.pipeline import run_forecast
from floodwarn.request import ForecastRequest
from tests.test_forecast_cli import _main_river_cell, salvadoran_terrain  # noqa: F401

runner = CliRunner()
#: Five members from dry to drenching: 0, 8, 15, 30 and 45 mm/h for a day.
RATES_MM_H = (0.0, 8.0, 15.0, 30.0, 45.0)


def test_member_chunks_cover_every_member_once_in_order():
    for n, workers in ((1, 2), (5, 2), (51, 2), (510, 2), (7, 1), (51, 16)):
        chunks = member_chunks(n, workers)
        assert [m for c in chunks for m in c] == list(range(n))
        assert max(len(c) for c in chunks) <= 2
    assert len(member_chunks(51, 2)) == 26  # at most 2 members a task
    assert len(member_chunks(5, 2)) == 5  # at least 4 tasks per worker where members allow


def test_hydrograph_bands_are_type_7_quantiles():
    # Members 1…5 at one reach and step: p10 = 1 + 0.4·(2 − 1) = 1.4, p50 = 3, p90 = 4.6.
    q = np.array([5.0, 1.0, 4.0, 2.0, 3.0], np.float32)[:, None, None]
    np.testing.assert_allclose(hydrograph_bands(q)[:, 0, 0], [1.4, 3.0, 4.6], rtol=1e-6)
    rng = np.random.default_rng(3)
    for n in (2, 7, 51):
        many = rng.gamma(2.0, 3.0, (n, 300, 5)).astype(np.float32)
        np.testing.assert_allclose(hydrograph_bands(many),
                                   np.quantile(many, (0.1, 0.5, 0.9), axis=0), rtol=1e-5)


def test_execution_options_are_checked():
    with pytest.raises(ValueError, match="workers: 0"):
        Execution(workers=0)
    with pytest.raises(ValueError, match="scheduler address is empty"):
        Execution(scheduler=" ")
    assert not Execution().distributed and Execution(workers=2).distributed


def _ensemble_inputs(model, folder: Path) -> tuple[Path, Path]:
    """A town on the main river and one on a hill; five members of uniform rain."""
    river = _main_river_cell(model)
    x, y = model.grid.cell_centres(np.array([river[0] * 200 + river[1], 5 * 200 + 5]))
    towns = folder / "towns.geojson"
    gpd.GeoDataFrame({"geonameid": [1, 2], "name": ["Ribera", "Loma"],
                      "population": [5000, 300]},
                     geometry=[Point(x[0], y[0]), Point(x[1], y[1])],
                     crs=model.grid.crs).to_crs("EPSG:4326").to_file(towns, driver="GeoJSON")
    times = np.datetime64("2020-06-01T00:00", "ns") + np.arange(1, 25) * np.timedelta64(1, "h")
    rates = np.array(RATES_MM_H)[:, None, None, None]
    rain = folder / "ens.nc"
    xr.Dataset({"pr": (("number", "time", "lat", "lon"),
                       np.broadcast_to(rates, (len(RATES_MM_H), 24, 3, 3)).copy(),
                       {"units": "mm", "floodwarn_accumulation": "step"})},
               coords={"number": np.arange(len(RATES_MM_H)), "time": times,
                       "lat": [14.2, 13.9, 13.6], "lon": [-89.4, -89.1, -88.8]}).to_netcdf(rain)
    return towns, rain


@pytest.fixture(scope="module")
def ensemble_runs(salvadoran_terrain, tmp_path_factory):  # noqa: F811
    """The five-member ensemble run serially (with its progress), and each member alone."""
    terrain_dir, model = salvadoran_terrain
    folder = tmp_path_factory.mktemp("ensemble")
    towns, rain = _ensemble_inputs(model, folder)
    cache = folder / "cache"

    def request(**options):
        return ForecastRequest.build(terrain_dir=terrain_dir, rain_path=rain,
                                     settlements_path=towns, **options)

    progress: list[MemberProgress] = []
    serial = run_forecast(request(), folder / "serial", cache_dir=cache,
                          execution=Execution(workers=1), on_members=progress.append)
    alone = [run_forecast(request(members=(m,)), folder / f"member{m}", cache_dir=cache)
             for m in range(len(RATES_MM_H))]
    return {"folder": folder, "terrain_dir": terrain_dir, "towns": towns, "rain": rain,
            "cache": cache, "serial": serial, "alone": alone, "progress": progress}


def test_settlement_probabilities_are_the_share_of_members_counted_by_hand(ensemble_runs):
    serial, alone = ensemble_runs["serial"], ensemble_runs["alone"]
    levels_alone = np.array([run.risk.settlements["level"].to_numpy() for run in alone])
    rank = np.vectorize(LEVELS.index)(levels_alone)  # (member, town)
    towns = serial.risk.settlements
    rules = load_parameters(LevelRules)
    for k, level in enumerate(LEVELS[1:], start=1):
        hand = (rank >= k).sum(axis=0) / len(alone)
        np.testing.assert_array_equal(towns[f"prob_{level}"].to_numpy(), hand)
    # DGPC's rule by hand: the most severe level whose probability reaches its threshold.
    for i, town in enumerate(towns.itertuples()):
        expected = "verde"
        for k, level in reversed(list(enumerate(LEVELS[1:], start=1))):
            if (rank[:, i] >= k).mean() >= getattr(rules.ensemble_min_probability, level):
                expected = level
                break
        assert town.level == expected, town.name
    ribera = towns.set_index("name").loc["Ribera"]
    assert 0.0 < ribera["prob_amarilla"] < 1.0  # the dry member leaves it dry, others do not


def test_flood_probability_is_the_share_of_members_flooding_each_cell(ensemble_runs):
    serial, alone = ensemble_runs["serial"], ensemble_runs["alone"]
    wet = load_parameters(LevelRules).wet_depth_m
    flooded = np.stack([np.nan_to_num(run.inundation.depth_m) >= wet for run in alone])
    with rasterio.open(serial.out_dir / "flood_probability.tif") as src:
        probability = src.read(1)
        assert src.tags()["members"] == str(len(RATES_MM_H))
    land = np.isfinite(probability)
    np.testing.assert_array_equal(probability[land],
                                  (flooded.sum(axis=0) / len(alone)).astype(np.float32)[land])
    assert probability[land].max() > 0.5 and np.isnan(probability[serial.inundation.water]).all()
    # One member has no probability to give: its depth map says it all.
    assert not (alone[3].out_dir / "flood_probability.tif").exists()


def test_reach_probabilities_and_bands_follow_the_members(ensemble_runs):
    serial, alone = ensemble_runs["serial"], ensemble_runs["alone"]
    reaches = gpd.read_file(serial.out_dir / "reaches.gpkg", ignore_geometry=True)
    classes = np.array([gpd.read_file(run.out_dir / "reaches.gpkg", ignore_geometry=True)[
        "return_period_class"].to_numpy() for run in alone])
    for years in (2, 10, 100):
        np.testing.assert_array_equal(reaches[f"prob_rp{years}"],
                                      (classes >= years).mean(axis=0))
    with xr.open_dataset(serial.out_dir / "hydrographs.nc") as nc:
        members = nc["discharge"].to_numpy()
        bands = np.stack([nc[f"discharge_p{p}"].to_numpy() for p in (10, 50, 90)])
    # The bands are of the members' discharge, written to 10 mantissa bits (≤ 0.05 %).
    np.testing.assert_allclose(bands, np.quantile(members, (0.1, 0.5, 0.9), axis=0),
                               rtol=1e-3, atol=1e-6)
    # Members are independent: member 3 of the ensemble is member 3 run alone.
    with xr.open_dataset(alone[3].out_dir / "hydrographs.nc") as nc:
        np.testing.assert_array_equal(nc["discharge"].to_numpy()[0], members[3])


def test_progress_counts_members_up_to_the_total_with_an_estimate(ensemble_runs):
    progress = ensemble_runs["progress"]
    assert progress[0].done == 0 and progress[0].eta_s is None
    assert [p.done for p in progress[1:]] == sorted({p.done for p in progress[1:]})
    assert progress[-1].done == progress[-1].total == len(RATES_MM_H)
    assert progress[-1].eta_s == 0.0 and all(p.eta_s is not None for p in progress[1:])


def _same_outputs(a: Path, b: Path) -> None:
    """Two runs wrote the same numbers (not the same execution record)."""
    with xr.open_dataset(a / "hydrographs.nc") as x, xr.open_dataset(b / "hydrographs.nc") as y:
        for name in ("discharge", "discharge_p10", "discharge_p50", "discharge_p90"):
            np.testing.assert_array_equal(x[name].to_numpy(), y[name].to_numpy())
    for name in ("depth.tif", "first_flooding_hours.tif", "flood_probability.tif"):
        with rasterio.open(a / name) as x, rasterio.open(b / name) as y:
            np.testing.assert_array_equal(x.read(1), y.read(1))
    for name in ("reaches.gpkg", "settlements.gpkg"):
        x = gpd.read_file(a / name, ignore_geometry=True)
        y = gpd.read_file(b / name, ignore_geometry=True)
        assert x.equals(y), name


def test_a_local_dask_cluster_gives_exactly_the_serial_results(ensemble_runs):
    out = ensemble_runs["folder"] / "dask-local"
    request = ForecastRequest.build(terrain_dir=ensemble_runs["terrain_dir"],
                                    rain_path=ensemble_runs["rain"],
                                    settlements_path=ensemble_runs["towns"])
    progress: list[MemberProgress] = []
    result = run_forecast(request, out, cache_dir=ensemble_runs["cache"],
                          execution=Execution(workers=2), on_members=progress.append)
    assert result.record["execution"]["mode"] == "dask-local"
    assert result.record["execution"]["dask_workers"] == 2
    assert progress[-1].done == len(RATES_MM_H)
    _same_outputs(ensemble_runs["serial"].out_dir, out)


@pytest.fixture
def dask_cluster(tmp_path):
    """A `dask scheduler` and two `dask worker` processes on 127.0.0.1, as an operator starts
    them on other machines."""
    dask = shutil.which("dask", path=str(Path(sys.executable).parent)) or shutil.which("dask")
    assert dask, "the dask command comes with the dask package"
    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    processes = [subprocess.Popen(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", str(scheduler_file)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert scheduler_file.exists(), "the scheduler did not start"
        for _ in range(2):
            processes.append(subprocess.Popen(
                [dask, "worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1",
                 "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1"], env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        address = json.loads(scheduler_file.read_text())["address"]
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=90)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def test_an_ensemble_runs_on_a_dask_scheduler_and_two_workers(ensemble_runs, dask_cluster,
                                                              tmp_path, monkeypatch):
    from floodwarn.ensemble import close_dask_clients

    out = tmp_path / "on-cluster"
    monkeypatch.delenv("FLOODWARN_ENSEMBLE_WORKERS")
    monkeypatch.setenv("FLOODWARN_DASK_SCHEDULER", dask_cluster)  # as an operator sets it
    try:
        result = runner.invoke(app, [
            "forecast", "run", "--terrain", str(ensemble_runs["terrain_dir"]), "--rain",
            str(ensemble_runs["rain"]), "--out", str(out), "--settlements",
            str(ensemble_runs["towns"]), "--cache-dir", str(ensemble_runs["cache"])])
    finally:
        close_dask_clients()
    assert result.exit_code == 0, result.output
    record = json.loads((out / "run.json").read_text())
    assert record["execution"]["mode"] == "dask"
    assert record["execution"]["scheduler"] == dask_cluster
    assert record["execution"]["dask_workers"] == 2
    _same_outputs(ensemble_runs["serial"].out_dir, out)


def test_an_unreachable_scheduler_is_a_clear_error(ensemble_runs, tmp_path):
    from floodwarn.ensemble import dask_client

    with pytest.raises(EnsembleExecutionError, match="cannot reach the Dask scheduler"):
        dask_client(Execution(scheduler="tcp://127.0.0.1:9"))
    result = runner.invoke(app, [
        "forecast", "run", "--terrain", str(ensemble_runs["terrain_dir"]), "--rain",
        str(ensemble_runs["rain"]), "--out", str(tmp_path / "x"), "--workers", "2",
        "--scheduler", "tcp://127.0.0.1:9"])
    assert result.exit_code != 0 and "not both" in result.output
    assert not (tmp_path / "x").exists()


def test_the_services_forecast_process_passes_member_progress_on(ensemble_runs, tmp_path):
    """The service executes runs in a child process: the steps and member counts the child
    reports reach the worker (which stores them in the run's status), and the ensemble's
    results are the serial ones."""
    from api.runner import ForecastProcess

    class Sink:
        def __init__(self) -> None:
            self.steps: list[str] = []
            self.counts: list[MemberProgress] = []

        def step(self, name: str) -> None:
            self.steps.append(name)

        def members(self, progress: MemberProgress) -> None:
            self.counts.append(progress)

    sink = Sink()
    request = ForecastRequest.build(terrain_dir=ensemble_runs["terrain_dir"],
                                    rain_path=ensemble_runs["rain"],
                                    settlements_path=ensemble_runs["towns"])
    process = ForecastProcess()
    try:
        record, has_risk = process(request, tmp_path / "run", ensemble_runs["cache"], sink,
                                   Execution(workers=1))
    finally:
        process.close()
    assert has_risk and record["execution"]["mode"] == "serial"
    # The parent polls twice a second: it sees the steps in order, perhaps not every one.
    from floodwarn.pipeline import FORECAST_JOB_STEPS

    assert sink.steps and sink.steps == sorted(sink.steps, key=FORECAST_JOB_STEPS.index)
    assert all(p.total == len(RATES_MM_H) for p in sink.counts)
    assert [p.done for p in sink.counts] == sorted(p.done for p in sink.counts)
    _same_outputs(ensemble_runs["serial"].out_dir, tmp_path / "run")
