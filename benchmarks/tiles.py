"""Map tile benchmark: latency of depth tiles, cold (first request of each tile: rio-tiler
renders it) and cached, from concurrent clients against a real `floodwarn serve`.

    python benchmarks/tiles.py --work demo-output [--mode closed-loop|viewport|both]
        [--clients 20] [--seconds 20] [--source web-mercator|utm]
    # needs demo-output/forecast and demo-output/terrain (floodwarn demo --out demo-output)

Registers the demo run's outputs as a succeeded run in a fresh store (a temporary run folder
linking to demo-output/forecast's rasters; with ``--source web-mercator``, the default, it
holds the Web Mercator copies a run now writes, made here when the demo output predates
them; with ``--source utm`` only the UTM COGs, as an older run), starts `floodwarn serve`
(the real uvicorn server; its worker disabled, so that only tiles load the cores) on the
demo terrain, and picks the tiles a user would look at: every zoom 8–12 tile holding flooded
cells (depth ≥ 0.05 m) of the demo run. Each mode starts its own server (empty tile cache)
and prints per-tile latency percentiles (p50/p95/p99) for

* cold: requests of tiles not rendered before (target: p99 under 100 ms);
* cached: requests of tiles already rendered, answered from memory (target: p99 under
  10 ms);

with the tiles per second and the server's CPU time per tile.

Modes:

``closed-loop``
    ``--clients`` clients each send their next request as soon as the answer arrives, so
    ``--clients`` requests are in flight at every moment — twenty users panning without
    pause, the worst case. Cold: each wet tile requested once, the clients pulling from one
    shuffled list; cached: the same tiles again at random for ``--seconds``. ``--clients 1``
    shows a tile's own cost.
``viewport``
    ``--clients`` analysts each loading map views as MapLibre does: a view is a rectangle
    of 12–20 neighbouring tiles at one zoom (3–5 columns × 4 rows, holding at least one
    wet tile), requested at once over the analyst's ``--connections`` (6, a browser's
    HTTP/1.1 connections per host) keep-alive connections; when the last tile of a view
    has arrived the analyst pauses 0.8–1.2 s (panning) before the next view (and 0–1.2 s
    before the first, so that twenty analysts do not all start in the same instant). Cold: the
    views partition each zoom's wet area, so every tile is requested once, by one analyst
    (dry tiles in a view are rendered too; tiles past the run's raster are answered 404 and
    counted apart); cached: the same views again, at random, for ``--seconds``. Also
    prints how long a whole view took to load.

The clients speak HTTP/1.1 on raw asyncio streams, as in benchmarks/service.py: the load
generator shares the two cores with the server it measures, and a general HTTP client would
cost it more than the server spends.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import psutil
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service import read_response  # the service benchmark's HTTP reader

ZOOMS = range(8, 13)


def wet_tiles(depth_tif: Path, min_depth_m: float = 0.05) -> list[tuple[int, int, int]]:
    """(z, x, y) of every zoom 8–12 Web Mercator tile that holds a cell at least
    ``min_depth_m`` deep."""
    import rasterio
    from rasterio.warp import transform

    with rasterio.open(depth_tif) as src:
        depth = src.read(1)
        rows, cols = np.nonzero(depth >= min_depth_m)
        xs, ys = src.transform @ (cols + 0.5, rows + 0.5)
        lon, lat = (np.asarray(v) for v in transform(src.crs, "EPSG:4326", xs, ys))
    tiles = set()
    for z in ZOOMS:
        n = 2**z
        tx = np.floor((lon + 180.0) / 360.0 * n).astype(np.int64)
        ty = np.floor((1 - np.arcsinh(np.tan(np.radians(lat))) / math.pi) / 2 * n).astype(
            np.int64)
        tiles |= {(z, int(x), int(y)) for x, y in set(zip(tx.tolist(), ty.tolist(),
                                                          strict=True))}
    return sorted(tiles)


def _prepare_store(data_dir: Path, run_dir: Path) -> str:
    from api.app import create_app
    from api.settings import Settings
    from api.store.access import create_api_key
    from api.store.models import Run

    app = create_app(Settings(data_dir=data_dir, run_worker=False))
    now = datetime.now(UTC)
    with app.state.sessions.begin() as session:
        session.add(Run(id=1, status="succeeded", rain_path="demo.nc", out_dir=str(run_dir),
                        created_at=now))
        _, key = create_api_key(session, role="analyst", name="bench", now=now)
    app.state.engine.dispose()
    return key


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: str,
               path: str) -> tuple[float, bytes, bytes]:
    """Seconds, status line head and body of one GET on a keep-alive connection."""
    request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}"
               "\r\n\r\n").encode()
    start = time.perf_counter()
    writer.write(request)
    head, body = await read_response(reader)
    return time.perf_counter() - start, head, body


async def _client(port: int, key: str, paths: list[str], next_index, latencies: list[float],
                  errors: list[str]) -> None:
    """One client: requests ``paths[next_index()]`` until it returns None."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while (i := next_index()) is not None:
            seconds, head, body = await _get(reader, writer, key, paths[i])
            latencies.append(seconds)
            if head[9:12] != b"200" or body[1:4] != b"PNG":
                errors.append(f"{paths[i]}: {head[:12]!r} {body[:200]!r}")
    finally:
        writer.close()


def _measure(port: int, key: str, paths: list[str], clients: int, *,
             seconds: float | None, server: psutil.Process) -> tuple[np.ndarray, list[str],
                                                                      float, float]:
    """Latencies (ms), errors, wall seconds and server CPU seconds of one phase: each path
    once in order (``seconds`` None) or random paths for ``seconds``."""
    latencies: list[float] = []
    errors: list[str] = []
    if seconds is None:
        queue = iter(range(len(paths)))

        def next_index() -> int | None:
            return next(queue, None)
    else:
        rng = random.Random(1)
        until = time.perf_counter() + seconds

        def next_index() -> int | None:
            return rng.randrange(len(paths)) if time.perf_counter() < until else None

    async def run_all() -> None:
        await asyncio.gather(*(_client(port, key, paths, next_index, latencies, errors)
                               for _ in range(clients)))

    cpu_before = sum(server.cpu_times()[:2])
    start = time.perf_counter()
    uvloop.run(run_all())
    wall = time.perf_counter() - start
    cpu = sum(server.cpu_times()[:2]) - cpu_before
    return np.array(latencies) * 1000, errors, wall, cpu


def _report(name: str, ms: np.ndarray, errors: list[str], wall: float, cpu: float,
            target_ms: float, extra: str = "") -> None:
    if not len(ms):
        print(f"{name:<7} no requests")
        return
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    verdict = "met" if p99 < target_ms else "MISSED"
    print(f"{name:<7} {len(ms):5d} tiles  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  p99 "
          f"{p99:6.1f} ms  (target p99 < {target_ms:g} ms: {verdict})"
          f"  {len(ms) / wall:6.0f} tiles/s  server CPU {cpu / len(ms) * 1000:5.2f} ms/tile  "
          f"errors {len(errors)}{extra}")
    for error in errors[:3]:
        print("  error:", error)


Tile = tuple[int, int, int]


def viewports(tiles: list[Tile], rng: random.Random) -> list[list[Tile]]:
    """Map views that partition each zoom's wet area: rectangles of 3–5 columns × 4 rows
    of tiles (12–20 tiles) on a grid over the zoom's wet tiles, kept when they hold one."""
    views = []
    for z in ZOOMS:
        wet = {(x, y) for tz, x, y in tiles if tz == z}
        if not wet:
            continue
        xs, ys = [x for x, _ in wet], [y for _, y in wet]
        x = min(xs)
        while x <= max(xs):
            width = rng.randint(3, 5)
            for y in range(min(ys), max(ys) + 1, 4):
                view = [(z, vx, vy) for vy in range(y, y + 4) for vx in range(x, x + width)]
                if any((vx, vy) in wet for _, vx, vy in view):
                    views.append(view)
            x += width
    return views


async def _view_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                           key: str, pending: list[str], answered: set[str],
                           cold: list[float], cached: list[float], not_found: list[float],
                           errors: list[str]) -> None:
    """One of an analyst's connections: takes the view's next tile until none is left."""
    while pending:
        path = pending.pop(0)
        first = path not in answered
        seconds, head, body = await _get(reader, writer, key, path)
        answered.add(path)
        if head[9:12] == b"404":
            not_found.append(seconds)
        elif head[9:12] != b"200" or body[1:4] != b"PNG":
            errors.append(f"{path}: {head[:12]!r} {body[:200]!r}")
        else:
            (cold if first else cached).append(seconds)


async def _analyst(port: int, key: str, connections: int, next_view, rng: random.Random,
                   answered: set[str], cold: list[float], cached: list[float],
                   not_found: list[float], view_seconds: list[float],
                   errors: list[str]) -> None:
    """One analyst: loads ``next_view()`` over ``connections`` connections, pauses, and
    again, until it returns None. A tile is cold when no answer for it had arrived before
    it was requested."""
    streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(connections)]
    # Analysts work independently: their first views do not all start in the same instant.
    await asyncio.sleep(rng.uniform(0.0, 1.2))
    try:
        while (view := next_view()) is not None:
            pending = [f"/runs/1/tiles/depth/{z}/{x}/{y}.png" for z, x, y in view]
            start = time.perf_counter()
            await asyncio.gather(*(_view_connection(*stream, key, pending, answered, cold,
                                                    cached, not_found, errors)
                                   for stream in streams))
            view_seconds.append(time.perf_counter() - start)
            await asyncio.sleep(rng.uniform(0.8, 1.2))
    finally:
        for _, writer in streams:
            writer.close()


def _measure_viewports(port: int, key: str, views: list[list[Tile]], analysts: int,
                       connections: int, *, seconds: float | None, server: psutil.Process,
                       answered: set[str]) -> dict:
    """Per-tile latencies (ms) of one phase: each view once (``seconds`` None), the views
    shared out among the analysts, or random views for ``seconds``."""
    found: dict = {"cold": [], "cached": [], "not_found": [], "views": [], "errors": []}
    if seconds is None:
        queue = iter(views)

        def next_view() -> list[Tile] | None:
            return next(queue, None)
    else:
        pick = random.Random(2)
        until = time.perf_counter() + seconds

        def next_view() -> list[Tile] | None:
            return pick.choice(views) if time.perf_counter() < until else None

    async def run_all() -> None:
        await asyncio.gather(*(_analyst(port, key, connections, next_view, random.Random(a),
                                        answered, found["cold"], found["cached"],
                                        found["not_found"], found["views"], found["errors"])
                               for a in range(analysts)))

    cpu_before = sum(server.cpu_times()[:2])
    start = time.perf_counter()
    uvloop.run(run_all())
    found["wall"] = time.perf_counter() - start
    found["cpu"] = sum(server.cpu_times()[:2]) - cpu_before
    return found


def _report_viewports(phase: str, found: dict) -> None:
    """Per-tile percentiles of the phase's cold and cached tiles, the 404s apart, and the
    time to load a whole view; tiles/s and server CPU over every answer of the phase."""
    answered = len(found["cold"]) + len(found["cached"]) + len(found["not_found"])
    views = np.array(found["views"]) * 1000
    missing = np.array(found["not_found"]) * 1000
    print(f"  {phase} phase: {len(views)} views, {answered} tiles in {found['wall']:.1f} s "
          f"({answered / found['wall']:.0f} tiles/s, server CPU "
          f"{found['cpu'] / max(answered, 1) * 1000:.2f} ms/tile), errors "
          f"{len(found['errors'])}; whole view p50 {np.percentile(views, 50):.0f} ms, p95 "
          f"{np.percentile(views, 95):.0f} ms, p99 {np.percentile(views, 99):.0f} ms")
    for error in found["errors"][:3]:
        print("    error:", error)
    for name, ms, target in (("cold", found["cold"], 100), ("cached", found["cached"], 10),
                             ("404", missing, None)):
        if len(ms):
            p50, p95, p99 = np.percentile(np.array(ms) * (1 if name == "404" else 1000),
                                          [50, 95, 99])
            verdict = "" if target is None else \
                f"  (target p99 < {target} ms: {'met' if p99 < target else 'MISSED'})"
            print(f"    {name:<7} {len(ms):5d} tiles  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  "
                  f"p99 {p99:6.1f} ms{verdict}")


class _Server:
    """`floodwarn serve` on a free port with the benchmark's store, until closed."""

    def __init__(self, data_dir: Path, terrain_dir: Path, key: str) -> None:
        env = {**os.environ, "FLOODWARN_DATA_DIR": str(data_dir),
               "FLOODWARN_TERRAIN_DIR": str(terrain_dir), "FLOODWARN_RUN_WORKER": "false"}
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.popen = subprocess.Popen([sys.executable, "-c", "from api.cli import app; app()",
                                       "serve", "--port", str(self.port), "--no-demo"],
                                      env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{self.port}"
        try:
            for _ in range(600):
                try:
                    if httpx.get(base + "/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            self.process = psutil.Process(self.popen.pid)
            # One request outside the measurement: connections, imports, the first GDAL open.
            httpx.get(base + "/runs/1/tiles/depth/6/16/29.png", headers={"X-API-Key": key},
                      timeout=30)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.popen.terminate()
        self.popen.wait(timeout=60)


def _run_folder(forecast_dir: Path, folder: Path, source: str) -> None:
    """The benchmark's run folder: links to the demo run's UTM rasters and, for
    ``web-mercator``, its Web Mercator copies (written here when the demo has none)."""
    from floodwarn.io.forecast_outputs import (
        DEPTH_FILE,
        DEPTH_WEB_MERCATOR_FILE,
        FIRST_FLOODING_FILE,
        FIRST_FLOODING_WEB_MERCATOR_FILE,
    )
    from floodwarn.io.raster import write_web_mercator_cog

    folder.mkdir(parents=True)
    for name in (DEPTH_FILE, FIRST_FLOODING_FILE):
        (folder / name).symlink_to(forecast_dir / name)
    if source == "utm":
        return
    for name, copy, kind in ((DEPTH_FILE, DEPTH_WEB_MERCATOR_FILE, "continuous"),
                             (FIRST_FLOODING_FILE, FIRST_FLOODING_WEB_MERCATOR_FILE,
                              "arrival")):
        if (forecast_dir / copy).exists():
            (folder / copy).symlink_to(forecast_dir / copy)
        else:
            start = time.perf_counter()
            write_web_mercator_cog(forecast_dir / name, folder / copy, kind=kind)
            print(f"wrote {copy} ({(folder / copy).stat().st_size / 1e6:.1f} MB) in "
                  f"{time.perf_counter() - start:.1f} s: the demo output predates it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--mode", choices=("closed-loop", "viewport", "both"),
                        default="closed-loop")
    parser.add_argument("--clients", type=int, default=20,
                        help="closed-loop clients, or analysts in viewport mode")
    parser.add_argument("--connections", type=int, default=6,
                        help="viewport mode: connections per analyst")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="duration of the cached phase")
    parser.add_argument("--source", choices=("web-mercator", "utm"), default="web-mercator",
                        help="read tiles from the run's Web Mercator copies or (an older "
                             "run) its UTM COGs")
    args = parser.parse_args()
    forecast_dir = (args.work / "forecast").resolve()
    terrain_dir = (args.work / "terrain").resolve()
    tiles = wet_tiles(forecast_dir / "depth.tif")
    random.Random(0).shuffle(tiles)
    paths = [f"/runs/1/tiles/depth/{z}/{x}/{y}.png" for z, x, y in tiles]
    by_zoom = {z: sum(1 for t in tiles if t[0] == z) for z in ZOOMS}
    print(f"{len(tiles)} tiles with flooded cells, zoom 8–12 ({by_zoom}); source "
          f"{args.source}; {os.cpu_count()} cores shared by server and clients")
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        _run_folder(forecast_dir, run_dir, args.source)
        data_dir = Path(tmp) / "data"
        key = _prepare_store(data_dir, run_dir)
        if args.mode in ("closed-loop", "both"):
            server = _Server(data_dir, terrain_dir, key)
            try:
                cold = _measure(server.port, key, paths, args.clients, seconds=None,
                                server=server.process)
                cached = _measure(server.port, key, paths, args.clients,
                                  seconds=args.seconds, server=server.process)
            finally:
                server.close()
            print(f"closed-loop: {args.clients} concurrent clients")
            _report("cold", *cold, target_ms=100)
            _report("cached", *cached, target_ms=10)
        if args.mode in ("viewport", "both"):
            views = viewports(tiles, random.Random(0))
            random.Random(1).shuffle(views)
            answered: set[str] = set()
            server = _Server(data_dir, terrain_dir, key)
            try:
                first = _measure_viewports(server.port, key, views, args.clients,
                                           args.connections, seconds=None,
                                           server=server.process, answered=answered)
                again = _measure_viewports(server.port, key, views, args.clients,
                                           args.connections, seconds=args.seconds,
                                           server=server.process, answered=answered)
            finally:
                server.close()
            sizes = [len(v) for v in views]
            print(f"viewport: {args.clients} analysts × {args.connections} connections, "
                  f"{len(views)} views of {min(sizes)}–{max(sizes)} tiles, 0.8–1.2 s "
                  "between views")
            _report_viewports("first", first)
            _report_viewports("second", again)


if __name__ == "__main__":
    main()
