"""Map tile benchmark: latency of depth tiles, cold (first request of each tile: rio-tiler
renders it) and cached, from concurrent clients against a real `floodwarn serve`.

    python benchmarks/tiles.py --work demo-output [--clients 20] [--seconds 20]
    # needs demo-output/forecast and demo-output/terrain (floodwarn demo --out demo-output)

Registers the demo run's outputs as a succeeded run in a fresh store, starts `floodwarn serve`
(the real uvicorn server; its worker disabled, so that only tiles load the cores) on the demo
terrain, and picks the tiles a user would look at: every zoom 8–12 tile holding flooded cells
(depth ≥ 0.05 m) of the demo run. Prints latency percentiles for

* cold: each tile requested once, from ``--clients`` clients pulling from one shuffled list
  (targets: p99 under 100 ms);
* cached: the same tiles requested again at random for ``--seconds`` (target: p99 under
  10 ms);

with the tiles per second and the server's CPU time per tile. The clients are closed-loop
(each sends its next request as soon as the answer arrives) over keep-alive HTTP/1.1
connections on raw asyncio streams, as in benchmarks/service.py: the load generator shares
the two cores with the server it measures, and a general HTTP client would cost it more
than the server spends. Closed-loop clients keep ``--clients`` requests in flight at every
moment — twenty users panning without pause; ``--clients 1`` shows a tile's own cost.
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


async def _client(port: int, key: str, paths: list[str], next_index, latencies: list[float],
                  errors: list[str]) -> None:
    """One client: requests ``paths[next_index()]`` until it returns None."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while (i := next_index()) is not None:
            request = (f"GET {paths[i]} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}"
                       "\r\n\r\n").encode()
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
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
            target_ms: float) -> None:
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    verdict = "met" if p99 < target_ms else "MISSED"
    print(f"{name:<7} {len(ms):5d} tiles  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  p99 "
          f"{p99:6.1f} ms  (target p99 < {target_ms:g} ms: {verdict})"
          f"  {len(ms) / wall:6.0f} tiles/s  server CPU {cpu / len(ms) * 1000:5.2f} ms/tile  "
          f"errors {len(errors)}")
    for error in errors[:3]:
        print("  error:", error)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="duration of the cached phase")
    args = parser.parse_args()
    run_dir = (args.work / "forecast").resolve()
    tiles = wet_tiles(run_dir / "depth.tif")
    random.Random(0).shuffle(tiles)
    paths = [f"/runs/1/tiles/depth/{z}/{x}/{y}.png" for z, x, y in tiles]
    by_zoom = {z: sum(1 for t in tiles if t[0] == z) for z in ZOOMS}
    print(f"{len(tiles)} tiles with flooded cells, zoom 8–12 ({by_zoom}); {args.clients} "
          f"concurrent closed-loop clients; {os.cpu_count()} cores shared by server and "
          "clients")
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        key = _prepare_store(data_dir, run_dir)
        env = {**os.environ, "FLOODWARN_DATA_DIR": str(data_dir),
               "FLOODWARN_TERRAIN_DIR": str((args.work / "terrain").resolve()),
               "FLOODWARN_RUN_WORKER": "false"}
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-c", "from api.cli import app; app()",
                                   "serve", "--port", str(port), "--no-demo"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    if httpx.get(base + "/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            process = psutil.Process(server.pid)
            # One request outside the measurement: connections, imports, the first GDAL open.
            httpx.get(base + "/runs/1/tiles/depth/6/16/29.png", headers={"X-API-Key": key},
                      timeout=30)
            cold = _measure(port, key, paths, args.clients, seconds=None, server=process)
            cached = _measure(port, key, paths, args.clients, seconds=args.seconds,
                              server=process)
        finally:
            server.terminate()
            server.wait(timeout=60)
    _report("cold", *cold, target_ms=100)
    _report("cached", *cached, target_ms=10)


if __name__ == "__main__":
    main()
