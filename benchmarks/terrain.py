"""Terrain engine benchmark: floodwarn vs pyflwdir and pysheds on the same DEMs, same run.

    python benchmarks/terrain.py                 # real SRTM tile + 6000×6000 synthetic DEM
    python benchmarks/terrain.py --size 2000     # smaller synthetic DEM
    python benchmarks/terrain.py --no-pysheds    # skip pysheds (slow, memory hungry)

Each library runs in its own process, so peak memory (max RSS) is its own. Steps are timed
after JIT warm-up (best of --repeat runs); compile time and numba cache-load time are measured
apart, in fresh processes. Agreement checks: accumulation recomputed by pyflwdir from
floodwarn's own D8 must be identical; HAND from pyflwdir on floodwarn's D8, streams and
conditioned DEM must match; floodwarn's D8 must be the steepest descent of the conditioned DEM
on cells filling left unchanged with a unique positive steepest drop. D8 arrays are not
compared with pyflwdir's, whose directions follow its fill's search order.

Figures print as a table; --json FILE also writes them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CELLSIZE_M = 30.0


def _peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM: unlike ru_maxrss, not inherited on exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _best(fn, repeat: int):
    times = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


# ---------------------------------------------------------------------------------- workers


def worker_compile(_args) -> dict:
    """First build of a tiny DEM in this process: JIT compile (empty cache) or cache load."""
    start = time.perf_counter()
    from floodwarn.standin_dem import synthetic_eroded_terrain
    from floodwarn.terrain import build_terrain_model

    z, grid = synthetic_eroded_terrain(64, 64, seed=3)
    import_s = time.perf_counter() - start
    start = time.perf_counter()
    model = build_terrain_model(z, grid, stream_area_km2=0.01)
    return {
        "first_build_s": time.perf_counter() - start,
        "import_s": import_s,
        "jit": model.metadata["jit"],
    }


def worker_floodwarn(args) -> dict:
    from floodwarn.terrain import Grid, build_terrain_model
    from floodwarn.terrain.accumulation import flow_accumulation
    from floodwarn.terrain.checks import steepest_descent_agreement
    from floodwarn.terrain.conditioning import fill_depressions, flow_directions
    from floodwarn.terrain.hand import compute_hand
    from floodwarn.terrain.network import extract_stream_network

    dem = np.load(args.dem)
    meta = json.loads(Path(args.dem).with_suffix(".json").read_text())
    from affine import Affine

    grid = Grid(shape=dem.shape, transform=Affine(*meta["transform"]), crs=meta["crs"])
    build_terrain_model(dem[:64, :64].copy(), Grid((64, 64), grid.transform, grid.crs))  # warm-up
    out: dict = {"cells": int(dem.size)}
    t, (conditioned, _) = _best(lambda: fill_depressions(dem), args.repeat)
    out["fill_s"] = t
    t, (flowdir, _n_flat) = _best(lambda: flow_directions(conditioned), args.repeat)
    out["d8_flats_s"] = t
    t, acc = _best(lambda: flow_accumulation(flowdir), args.repeat)
    out["accumulation_s"] = t
    t, (reach_id, reaches) = _best(
        lambda: extract_stream_network(
            conditioned, flowdir, acc, grid, stream_area_km2=args.stream_area_km2
        ),
        args.repeat,
    )
    out["streams_s"] = t
    out["reaches"] = len(reaches)
    t, hand = _best(lambda: compute_hand(conditioned, flowdir, reach_id), args.repeat)
    out["hand_s"] = t
    out["peak_rss_mb"] = _peak_rss_mb()
    valid = ~np.isnan(dem)
    out["raised_share"] = float((conditioned[valid] > dem[valid]).mean())
    work = Path(args.work)
    np.save(work / "fw_conditioned.npy", conditioned)
    np.save(work / "fw_flowdir.npy", flowdir)
    np.save(work / "fw_acc.npy", acc)
    np.save(work / "fw_streams.npy", reach_id > 0)
    np.save(work / "fw_hand.npy", hand.hand_m)
    share, eligible = steepest_descent_agreement(conditioned, dem, flowdir)
    out["d8_steepest_share"] = share
    out["d8_eligible_cells"] = eligible
    return out


def worker_pyflwdir(args) -> dict:
    import pyflwdir

    dem = np.load(args.dem)
    small = dem[:64, :64].copy()
    pyflwdir.from_dem(small, outlets="edge")  # warm-up (its numba kernels)
    fw = pyflwdir.from_array(
        np.load(Path(args.work) / "fw_flowdir.npy")[:64, :64].copy(), ftype="d8", check_ftype=False
    )
    fw.upstream_area(unit="cell")
    out: dict = {}
    t, _ = _best(lambda: pyflwdir.from_dem(dem, outlets="edge"), args.repeat)
    out["fill_d8_s"] = t
    work = Path(args.work)
    flowdir = np.load(work / "fw_flowdir.npy")
    t, flw = _best(lambda: pyflwdir.from_array(flowdir, ftype="d8", check_ftype=False), args.repeat)
    out["network_from_d8_s"] = t

    def accumulate():
        # A fresh object each time: pyflwdir caches its topological order on first use, and
        # that ordering is part of the accumulation work (floodwarn's kernel includes it).
        fresh = pyflwdir.from_array(flowdir, ftype="d8", check_ftype=False)
        start = time.perf_counter()
        result = fresh.upstream_area(unit="cell")
        return time.perf_counter() - start, result

    runs = [accumulate() for _ in range(args.repeat)]
    out["accumulation_s"] = min(r[0] for r in runs)
    upa = runs[-1][1]
    del runs
    flw.upstream_area(unit="cell")  # caches the order that HAND below reuses
    streams = np.load(work / "fw_streams.npy")
    conditioned = np.load(work / "fw_conditioned.npy")
    t, hand = _best(lambda: flw.hand(drain=streams, elevtn=conditioned), args.repeat)
    out["hand_s"] = t
    out["peak_rss_mb"] = _peak_rss_mb()
    acc = np.load(work / "fw_acc.npy")
    valid = flowdir != 255
    out["accumulation_identical"] = bool(
        np.array_equal(upa[valid].astype(np.int64), acc[valid].astype(np.int64))
    )
    fw_hand = np.load(work / "fw_hand.npy")
    both = ~np.isnan(fw_hand) & valid
    out["hand_max_abs_diff_m"] = float(np.max(np.abs(hand[both] - fw_hand[both])))
    out["hand_cells_compared"] = int(both.sum())
    return out


def worker_pysheds(args) -> dict:
    if not hasattr(np, "in1d"):  # pysheds 0.5 still calls np.in1d, removed in numpy 2.4
        np.in1d = lambda a, b, **kw: np.isin(a, b, **kw).ravel()  # type: ignore[attr-defined]
    from pysheds.grid import Grid
    from pysheds.sview import Raster, ViewFinder

    dem = np.load(args.dem)
    meta = json.loads(Path(args.dem).with_suffix(".json").read_text())
    from affine import Affine

    def run(z):
        z = np.where(np.isnan(z), np.float32(-9999.0), z).astype(np.float32)
        vf = ViewFinder(
            affine=Affine(*meta["transform"]), shape=z.shape, nodata=np.float32(-9999.0)
        )
        raster = Raster(z, viewfinder=vf)
        grid = Grid(viewfinder=vf)
        timings = {}
        start = time.perf_counter()
        pits = grid.fill_pits(raster)
        flooded = grid.fill_depressions(pits)
        inflated = grid.resolve_flats(flooded)
        fdir = grid.flowdir(inflated)
        timings["fill_flats_d8_s"] = time.perf_counter() - start
        start = time.perf_counter()
        acc = grid.accumulation(fdir)
        timings["accumulation_s"] = time.perf_counter() - start
        threshold = args.stream_area_km2 * 1e6 / CELLSIZE_M**2
        start = time.perf_counter()
        grid.compute_hand(fdir, inflated, acc >= threshold)
        timings["hand_s"] = time.perf_counter() - start
        return timings

    run(dem[:64, :64].copy())  # warm-up
    best: dict = {}
    for _ in range(args.repeat):
        for key, value in run(dem).items():
            best[key] = min(best.get(key, np.inf), value)
    best["peak_rss_mb"] = _peak_rss_mb()
    return best


def worker_build(args) -> dict:
    """`floodwarn terrain build` end to end on a GeoTIFF (fresh process, warm numba cache)."""
    start = time.perf_counter()
    from floodwarn.pipeline import build_terrain

    import_s = time.perf_counter() - start
    start = time.perf_counter()
    result = build_terrain(
        args.tif, Path(args.work) / "model", stream_area_km2=args.stream_area_km2
    )
    wall = time.perf_counter() - start
    timings = json.loads((result.out_dir / "terrain.json").read_text())["timings_s"]
    writes = sum(v for k, v in timings.items() if k.startswith("write_"))
    return {
        "wall_s": wall,
        "import_s": import_s,
        "compute_s": timings["compute_total"],
        "read_dem_s": timings.get("read_dem", 0.0),
        "write_s": writes,
        "peak_rss_mb": _peak_rss_mb(),
        "jit": result.model.metadata["jit"],
    }


WORKERS = {
    "compile": worker_compile,
    "floodwarn": worker_floodwarn,
    "pyflwdir": worker_pyflwdir,
    "pysheds": worker_pysheds,
    "build": worker_build,
}


# ------------------------------------------------------------------------------ orchestration


def _spawn(kind: str, args, extra_env: dict | None = None, **paths) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        kind,
        "--repeat",
        str(args.repeat),
        "--stream-area-km2",
        str(args.stream_area_km2),
    ]
    for key, value in paths.items():
        cmd += [f"--{key}", str(value)]
    env = {**os.environ, **(extra_env or {})}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _prepare_dems(args, work: Path) -> dict[str, Path]:
    import rasterio

    from floodwarn.io.dem import read_dem
    from floodwarn.standin_dem import synthetic_eroded_terrain

    dems: dict[str, Path] = {}
    real = read_dem(REPO / "gis_data" / "dem" / "N44W072.hgt", target_crs="auto")
    print(
        f"real SRTM tile N44W072: {real.grid.shape[0]}×{real.grid.shape[1]} cells after "
        f"reprojection to {real.metadata['crs']} at {real.grid.cellsize_m:g} m",
        flush=True,
    )
    sets = [("real N44W072", real.elevation, real.grid)]
    if args.size:
        start = time.perf_counter()
        z, grid = synthetic_eroded_terrain(args.size, args.size, cellsize_m=CELLSIZE_M, seed=1)
        print(
            f"synthetic eroded terrain {args.size}×{args.size} at {CELLSIZE_M:g} m generated "
            f"in {time.perf_counter() - start:.1f} s",
            flush=True,
        )
        sets.append((f"synthetic {args.size}²", z, grid))
    for name, z, grid in sets:
        slug = name.split()[0]
        path = work / f"{slug}.npy"
        np.save(path, z)
        path.with_suffix(".json").write_text(
            json.dumps({"transform": list(grid.transform)[:6], "crs": grid.crs})
        )
        with rasterio.open(
            path.with_suffix(".tif"),
            "w",
            driver="GTiff",
            width=z.shape[1],
            height=z.shape[0],
            count=1,
            dtype="float32",
            crs=grid.crs,
            transform=grid.transform,
            nodata=float("nan"),
        ) as dst:
            dst.write(z, 1)
        dems[name] = path
    return dems


def _ns(seconds: float, cells: int) -> str:
    return f"{seconds / cells * 1e9:8.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=6000, help="synthetic DEM side (0: none)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stream-area-km2", type=float, default=1.0)
    parser.add_argument("--no-pysheds", action="store_true")
    parser.add_argument("--no-pyflwdir", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", choices=sorted(WORKERS))
    parser.add_argument("--dem")
    parser.add_argument("--tif")
    parser.add_argument("--work")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args), default=float))
        return

    results: dict = {"machine": {"cpus": os.cpu_count()}, "dems": {}}
    with tempfile.TemporaryDirectory(prefix="floodwarn-bench-") as tmp:
        work = Path(tmp)
        cache = work / "numba-cache"
        cold = _spawn("compile", args, {"NUMBA_CACHE_DIR": str(cache)})
        warm = _spawn("compile", args, {"NUMBA_CACHE_DIR": str(cache)})
        results["jit"] = {
            "compile_s": cold.get("first_build_s"),
            "cache_load_s": warm.get("first_build_s"),
            "second_process_cache_misses": warm.get("jit", {}).get("cache_misses"),
        }
        print(
            f"\nJIT: compile {cold.get('first_build_s', float('nan')):.1f} s in a fresh "
            f"process with an empty cache; {warm.get('first_build_s', float('nan')):.2f} s "
            f"to load from the cache in the next process "
            f"(compilations there: {warm.get('jit', {}).get('cache_misses')})",
            flush=True,
        )
        for name, path in _prepare_dems(args, work).items():
            env = {"NUMBA_CACHE_DIR": str(cache)}
            r: dict = {"floodwarn": _spawn("floodwarn", args, env, dem=path, work=work)}
            if not args.no_pyflwdir:
                r["pyflwdir"] = _spawn("pyflwdir", args, dem=path, work=work)
            if not args.no_pysheds:
                r["pysheds"] = _spawn("pysheds", args, dem=path, work=work)
            r["build"] = _spawn("build", args, env, tif=path.with_suffix(".tif"), work=work)
            results["dems"][name] = r
            _print(name, r)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))


def _print(name: str, r: dict) -> None:
    fw = r["floodwarn"]
    if "error" in fw:
        print(f"floodwarn failed on {name}: {fw['error']}")
        return
    n = fw["cells"]
    pf = r.get("pyflwdir", {})
    ps = r.get("pysheds", {})
    print(
        f"\n== {name}: {n:,} cells, {fw['raised_share']:.1%} raised by filling, "
        f"{fw['reaches']:,} reaches =="
    )
    print(
        f"{'step (ns/cell)':34s}{'floodwarn':>10s}{'pyflwdir':>10s}{'pysheds':>10s}"
        f"{'× pyflwdir':>12s}{'× pysheds':>11s}"
    )
    rows = [
        (
            "fill + flats + D8",
            fw["fill_s"] + fw["d8_flats_s"],
            pf.get("fill_d8_s"),
            ps.get("fill_flats_d8_s"),
        ),
        ("  fill", fw["fill_s"], None, None),
        ("  D8 + flats", fw["d8_flats_s"], None, None),
        ("accumulation", fw["accumulation_s"], pf.get("accumulation_s"), ps.get("accumulation_s")),
        ("streams + reaches + Strahler", fw["streams_s"], None, None),
        ("HAND (+ catchments for floodwarn)", fw["hand_s"], pf.get("hand_s"), ps.get("hand_s")),
    ]
    for label, mine, theirs, sheds in rows:
        cols = [_ns(mine, n)]
        cols.append(_ns(theirs, n) if theirs else f"{'—':>8s}")
        cols.append(_ns(sheds, n) if sheds else f"{'—':>8s}")
        ratio_pf = f"{theirs / mine:10.1f}×" if theirs else f"{'':11s}"
        ratio_ps = f"{sheds / mine:10.1f}×" if sheds else ""
        print(
            f"{label:34s}{cols[0]:>10s}{cols[1]:>10s}{cols[2]:>10s}{ratio_pf:>12s}{ratio_ps:>11s}"
        )
    if pf.get("network_from_d8_s"):
        print(f"{'(pyflwdir network from D8)':34s}{'':10s}{_ns(pf['network_from_d8_s'], n):>10s}")
    print(
        f"{'peak memory (MB)':34s}{fw['peak_rss_mb']:10.0f}{pf.get('peak_rss_mb', 0):10.0f}"
        f"{ps.get('peak_rss_mb', 0):10.0f}"
    )
    print(
        f"D8 = steepest descent on {fw['d8_steepest_share']:.4%} of "
        f"{fw['d8_eligible_cells']:,} eligible cells (target ≥ 99.9 %)"
    )
    if pf:
        print(
            f"accumulation identical to pyflwdir's from floodwarn's D8: "
            f"{pf.get('accumulation_identical')}; HAND max |diff| vs pyflwdir: "
            f"{pf.get('hand_max_abs_diff_m', float('nan')):.2e} m over "
            f"{pf.get('hand_cells_compared', 0):,} cells"
        )
    b = r.get("build", {})
    if "wall_s" in b:
        print(
            f"`terrain build` end to end: compute {b['compute_s']:.2f} s, read DEM "
            f"{b['read_dem_s']:.2f} s, write COGs + gpkg {b['write_s']:.2f} s, wall "
            f"{b['wall_s']:.2f} s (+ {b['import_s']:.2f} s imports), peak memory "
            f"{b['peak_rss_mb']:.0f} MB, JIT compilations {b['jit']['cache_misses']}"
        )
    elif b:
        print(f"`terrain build` failed: {b.get('error')}")


if __name__ == "__main__":
    main()
