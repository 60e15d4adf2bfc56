"""Forecast-run benchmark: the demo domain's 72-hour hourly storm, and routing scaling.

    python benchmarks/forecast.py                  # builds the demo terrain if needed
    python benchmarks/forecast.py --work DIR       # reuse DIR/terrain from `floodwarn demo`

Prints: seconds from rain file to all written outputs after the terrain model is loaded —
with nothing prepared (design-storm thresholds, rating curves and catchment weights all made
in the run), on a terrain prepared by `floodwarn forecast prepare` with a new forecast grid
(weights made in the run) and with a known one; the time `prepare` takes; peak memory
(VmHWM); and routing time (catchment response + channel routing at the 10-minute routing
interval) on three random reach trees of growing size × hourly steps, with the cost per
reach-step, which must stay flat if cost grows linearly, and the hydrograph buffers needed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def _random_tree(n: int, rng: np.random.Generator) -> np.ndarray:
    """Reach i drains to a random reach with a larger index; the last reach is the outlet."""
    downstream = np.empty(n, np.int64)
    downstream[:-1] = np.minimum(n - 1, np.arange(1, n) + rng.integers(0, 50, n - 1))
    downstream[-1] = -1
    return downstream


def routing_scaling() -> None:
    from floodwarn.kernels.routing import route_network, routing_schedule

    rng = np.random.default_rng(0)
    print("\nrouting scaling — reaches × hourly steps (10-minute routing interval)")
    print(f"{'reaches':>9} {'steps':>6} {'buffers':>8} {'seconds':>9} {'ns per reach-step':>19}")
    depth = np.linspace(0.0, 20.0, 129)[None, :]
    for n, n_t in ((10_000, 72), (40_000, 144), (160_000, 288)):
        down = _random_tree(n, rng)
        order, n_buffers = routing_schedule(down)
        width = rng.uniform(3, 60, n)[:, None]
        slope = rng.uniform(0.0005, 0.05, n)
        area = width * depth
        q = (area * (area / (width + 2 * depth)) ** (2 / 3) * np.sqrt(slope)[:, None] / 0.035)
        runoff = np.ascontiguousarray(rng.gamma(2.0, 0.5, (n, n_t)))
        args = (rng.uniform(900, 20_000, n), rng.uniform(0, 0.5, n), 600.0,
                np.full(n_t, 6, np.int64), order, n_buffers, down, rng.uniform(90, 2000, n),
                slope, q.astype(np.float32), area.astype(np.float32),
                np.broadcast_to(width, q.shape).astype(np.float32), np.zeros(n, bool),
                np.full(n, -1, np.int64), np.zeros((0, 2)), np.zeros((0, 2)), np.zeros((0, 2)),
                np.zeros(0), np.zeros(0, np.int64), np.zeros((0, n_t)), 0.5)
        best = min(_timed(lambda a=args, r=runoff: route_network(r, *a)) for _ in range(2))
        print(f"{n:>9,} {n_t:>6} {n_buffers:>8} {best:>9.3f} "
              f"{best / (n * n_t) * 1e9:>19.1f}")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def forecast_run(work: Path) -> None:
    from floodwarn.io.rainfall import write_rainfall_netcdf
    from floodwarn.io.terrain_files import load_terrain_model
    from floodwarn.pipeline import demo_terrain, prepare_forecasting, run_forecast
    from floodwarn.rainfall.storm import AMANDA_2020, storm_forecast
    from floodwarn.request import ForecastRequest

    terrain_dir = work / "terrain"
    if not (terrain_dir / "terrain.json").exists():
        demo_terrain(work)
    rain = write_rainfall_netcdf(storm_forecast(AMANDA_2020), work / "amanda.nc")
    start = time.perf_counter()
    model = load_terrain_model(terrain_dir)
    load_s = time.perf_counter() - start
    request = ForecastRequest.build(terrain_dir=terrain_dir, rain_path=rain)
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        run_forecast(request, work / "run", terrain=model, cache_dir=cache)
        unprepared = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        prep = prepare_forecasting(terrain_dir, cache_dir=cache, terrain=model)
        prepare_s = time.perf_counter() - start
        print(f"terrain load {load_s:.2f} s; `forecast prepare` (once per terrain) "
              f"{prepare_s:.2f} s: " + ", ".join(f"{k} {v:.2f}" for k, v in prep.items()))
        print(f"{'no prepare, empty cache':>32}: rain → all outputs {unprepared:.2f} s")
        for label in ("prepared, new forecast grid", "prepared, known forecast grid"):
            start = time.perf_counter()
            result = run_forecast(request, work / "run", terrain=model, cache_dir=cache)
            seconds = time.perf_counter() - start
            t = result.record["timings_s"]
            print(f"{label:>32}: rain → all outputs {seconds:.2f} s after the terrain load; "
                  "steps: " + ", ".join(f"{k} {v:.2f}" for k, v in t.items()
                                        if k not in ("total", "load_terrain")))
    r = result.record
    print(f"demo domain: {r['terrain']['reaches']:,} reaches, {r['rain']['steps']} hourly steps;"
          f" rain {r['rain_total_mm_mean']:.1f} mm, runoff {r['runoff_total_mm_mean']:.1f} mm, "
          f"mass balance relative error {r['mass_balance']['relative_error']:.2e}")
    print(f"peak memory of this process (VmHWM): {_peak_rss_mb():.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    if args.work is None:
        with tempfile.TemporaryDirectory() as tmp:
            forecast_run(Path(tmp))
    else:
        args.work.mkdir(parents=True, exist_ok=True)
        forecast_run(args.work)
    routing_scaling()


if __name__ == "__main__":
    main()
