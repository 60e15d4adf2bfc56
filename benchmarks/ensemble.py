"""Ensemble benchmark: 51 members × 72 hourly steps on the demo domain, prepared terrain.

    python benchmarks/ensemble.py --work DIR                 # DIR from `floodwarn demo --out DIR`
    python benchmarks/ensemble.py --work DIR --scaling       # + cost per member, 10 → 510
    python benchmarks/ensemble.py --work DIR --overhead      # + 1 member: serial vs Dask

Prints: the seconds of the whole run (rain file to all outputs, the cluster's start included)
with 2 local workers and with 1 (serial), each step's seconds, and the peak memory of all the
run's processes together (the sum of their proportional set sizes, PSS, sampled every 0.2 s:
pages the processes share — the numba cache, the memory-mapped libraries — count once, as
the kernel accounts them); with --scaling the members stage's seconds per member for 10, 51,
170 and 510 synthetic members (must stay flat for the scale-out to be linear); with
--overhead the cost of the Dask path over the serial one for a single member.

The members are SYNTHETIC (floodwarn.rainfall.storm.storm_ensemble: the Amanda-scale storm
with perturbed tracks and rates).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import psutil


class MemorySampler:
    """Peak of the summed PSS of this process and all its descendants (the Dask workers)."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s = interval_s
        self.peak_mb = 0.0
        self.peak_client_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        total = 0.0
        for proc in [me, *me.children(recursive=True)]:
            try:
                pss = proc.memory_full_info().pss / 2**20
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            total += pss
            if proc.pid == me.pid:
                self.peak_client_mb = max(self.peak_client_mb, pss)
        self.peak_mb = max(self.peak_mb, total)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def _rain_file(directory: Path, members: int) -> Path:
    from floodwarn.io.rainfall import write_rainfall_netcdf
    from floodwarn.rainfall.storm import AMANDA_2020, storm_ensemble

    path = directory / f"amanda_ensemble_{members}.nc"
    if not path.exists():
        write_rainfall_netcdf(storm_ensemble(AMANDA_2020, members), path)
    return path


def _run(work: Path, rain: Path, out: Path, workers: int) -> tuple[float, dict, float, float]:
    from floodwarn.ensemble import Execution, close_dask_clients
    from floodwarn.pipeline import run_forecast
    from floodwarn.request import ForecastRequest

    request = ForecastRequest.build(terrain_dir=work / "terrain", rain_path=rain)
    with MemorySampler() as memory:
        start = time.perf_counter()
        result = run_forecast(request, out, cache_dir=work / "cache",
                              execution=Execution(workers=workers))
        seconds = time.perf_counter() - start
        close_dask_clients()  # the next configuration starts its own cluster
    return seconds, result.record, memory.peak_mb, memory.peak_client_mb


def _members_seconds(record: dict) -> float:
    return float(record["execution"]["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True,
                        help="a `floodwarn demo --out DIR` folder (terrain and cache)")
    parser.add_argument("--members", type=int, default=51)
    parser.add_argument("--scaling", action="store_true")
    parser.add_argument("--overhead", action="store_true")
    args = parser.parse_args()

    from floodwarn.ensemble import default_workers

    print(f"cores: {default_workers()}; members SYNTHETIC (perturbed Amanda-scale storm)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        rain = _rain_file(tmp_dir, args.members)
        print(f"\n{args.members} members × 72 hourly steps, demo domain, prepared terrain")
        print(f"{'workers':>8} {'total s':>8} {'members s':>10} {'write s':>8} "
              f"{'peak PSS all MB':>16} {'client MB':>10}")
        for workers in (2, 1):
            seconds, record, peak, client = _run(args.work, rain, tmp_dir / f"run{workers}",
                                                 workers)
            timings = record["timings_s"]
            print(f"{workers:>8} {seconds:>8.1f} {_members_seconds(record):>10.1f} "
                  f"{timings['write']:>8.1f} {peak:>16,.0f} {client:>10,.0f}")
            print("         steps: " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))
        if args.overhead:
            _overhead(args.work, _rain_file(tmp_dir, 51))
        if args.scaling:
            print("\ncost per member, members stage only, 2 local workers (cluster warm)")
            print(f"{'members':>8} {'seconds':>9} {'s per member':>13}")
            for n in (10, 51, 170, 510):
                seconds = _members_only(args.work, n)
                print(f"{n:>8} {seconds:>9.1f} {seconds / n:>13.3f}")


def _overhead(work: Path, rain: Path) -> None:
    """The members stage of one member: serially here, and through a local cluster of two
    (the Dask path is forced, as a run with more members takes it) with the cluster's start
    included (cold) and with the cluster up (warm: the model's scatter included)."""
    from floodwarn.ensemble import Execution, _run_on_dask, close_dask_clients, run_members

    model, rain_mm = _member_model(work, rain)
    one = rain_mm[:1]
    run_members(model, one, Execution(workers=1))  # this process's kernels loaded
    start = time.perf_counter()
    run_members(model, one, Execution(workers=1))
    serial = time.perf_counter() - start
    times = []
    for _ in range(2):  # cold, then warm
        start = time.perf_counter()
        _run_on_dask(model, one, Execution(workers=2), lambda _results: None)
        times.append(time.perf_counter() - start)
    close_dask_clients()
    print("\none member's stage: serial vs the Dask path (local cluster of 2)")
    print(f"  serial {serial:.2f} s; dask cold {times[0]:.2f} s (+{times[0] - serial:.2f}, the "
          f"cluster's start included); dask warm {times[1]:.2f} s (+{times[1] - serial:.2f}, "
          "the model's scatter included)")


def _member_model(work: Path, rain: Path):
    """The run's shared member model, as run_forecast builds it (prepared terrain)."""
    import numpy as np

    from floodwarn.ensemble import MemberModel
    from floodwarn.hydrology.runoff import season_of
    from floodwarn.hydrology.water_bodies import locate_water_bodies
    from floodwarn.inundation.depth import FloodGrid
    from floodwarn.io.cache import ArrayCache
    from floodwarn.io.gis_data import load_settlements
    from floodwarn.io.rainfall import read_rainfall
    from floodwarn.io.terrain_files import load_terrain_model
    from floodwarn.parameters import (
        BaseFlow,
        IdfParameters,
        LevelRules,
        RoutingParameters,
        WaterBodies,
        load_parameters,
    )
    from floodwarn.prepared import catchment_weights, prepared_hydrology, thresholds
    from floodwarn.risk.settlements import settlement_footprints, within_domain

    terrain = load_terrain_model(work / "terrain")
    cache = ArrayCache(work / "cache")
    forecast = read_rainfall(rain)
    bodies = locate_water_bodies(terrain, load_parameters(WaterBodies))
    prepared = prepared_hydrology(terrain, load_parameters(RoutingParameters), bodies, cache)
    water = prepared.water | bodies.surface
    rules = load_parameters(LevelRules)
    towns = load_settlements(None)
    towns = towns[within_domain(terrain, towns, water)]
    month = int(str(forecast.step_start[0])[5:7])
    hours = ((forecast.step_end - forecast.step_start[0]).astype("timedelta64[s]")
             .astype(np.float64) / 3600.0)
    model = MemberModel(
        hydro=prepared.hydro, weights=catchment_weights(terrain, forecast, cache),
        dt_s=forecast.step_hours * 3600.0, hours_from_start=hours, season=season_of(month),
        amc=None, antecedent_rain_mm=None, ia_ratio=0.2,
        base_flow_l_s_km2=load_parameters(BaseFlow).for_month(month),
        initial_levels_m=bodies.initial_levels(month, None),
        flood_grid=FloodGrid.of(terrain, water), wet_depth_m=rules.wet_depth_m,
        thresholds=thresholds(prepared.hydro, load_parameters(IdfParameters), 0.2, 1, cache),
        footprints=settlement_footprints(terrain, towns, rules, water), rules=rules)
    return model, forecast.rain_mm


def _members_only(work: Path, n: int) -> float:
    """Seconds of the members stage alone for ``n`` synthetic members (2 workers, warm)."""
    import numpy as np

    from floodwarn.ensemble import Execution, run_members

    with tempfile.TemporaryDirectory() as tmp:
        base = _rain_file(Path(tmp), 51)
        model, rain51 = _member_model(work, base)
    # Synthetic members beyond 51: the 51 repeated with their rain scaled, so each is new work.
    scale = 1.0 + 0.002 * np.arange(n)
    rain = (rain51[np.arange(n) % rain51.shape[0]] * scale[:, None, None, None]).astype(
        np.float32)
    execution = Execution(workers=2)
    run_members(model, rain[:2], execution)  # start the cluster and warm the workers' JIT
    start = time.perf_counter()
    run_members(model, rain, execution)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
