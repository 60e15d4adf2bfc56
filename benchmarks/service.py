"""Service benchmark: p99 latency of settlement and alert queries under 50 concurrent clients.

    python benchmarks/service.py --work demo-output   # needs demo-output/forecast (floodwarn demo)

Loads the demo run's settlements and alerts into a fresh store, starts `floodwarn serve` (the
real uvicorn server, no worker) and lets 50 concurrent clients query
`/runs/1/settlements?level=…` and `/alerts` for a while; prints requests per second and the
latency percentiles (target: p99 under 50 ms).

The clients are closed-loop (each sends its next request as soon as the answer arrives), over
keep-alive HTTP/1.1 connections, so the server runs flat out. They speak HTTP over raw asyncio
streams: a general HTTP client library costs more CPU per request than the server does, and
on a 2-core machine the load generator shares the cores with the server it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import uvloop
from sqlalchemy import func, select


def _live_copy(run_dir: Path, into: Path) -> Path:
    """The demo run's outputs with its forecast window re-dated to start now, so that the
    alerts it publishes are in force while the clients query them."""
    shutil.copytree(run_dir, into)
    record = json.loads((into / "run.json").read_text())
    start = datetime.fromisoformat(record["rain"]["start"])
    shift = datetime.now(UTC).replace(tzinfo=None) - start
    for key in ("start", "end"):
        record["rain"][key] = (datetime.fromisoformat(record["rain"][key]) + shift).isoformat()
    (into / "run.json").write_text(json.dumps(record))
    return into


def _prepare_store(data_dir: Path, run_dir: Path) -> str:
    from api.app import create_app
    from api.auth import create_api_key
    from api.publish import publish_run_alerts
    from api.settings import Settings
    from api.store.models import Alert, Run
    from api.worker import _store_settlements

    app = create_app(Settings(data_dir=data_dir, run_worker=False))
    now = datetime.now(UTC)
    with app.state.sessions.begin() as session:
        session.add(Run(id=1, status="succeeded", rain_path="demo.nc", out_dir=str(run_dir),
                        created_at=now))
        session.flush()
        _store_settlements(session, 1, run_dir)
        publish_run_alerts(session, run_id=1, out_dir=run_dir, sender="bench@floodwarn",
                           now=now)
        key = create_api_key(session, role="analyst", name="bench", now=now)
    with app.state.sessions() as session:
        n_alerts = session.scalar(select(func.count()).select_from(Alert)
                                  .where(Alert.in_force.is_(True)))
    if not n_alerts:
        raise RuntimeError("the demo run published no alerts; nothing to query")
    print(f"store: 1 run, its settlements and {n_alerts} alerts in force", flush=True)
    app.state.engine.dispose()
    return key


WARM_UP_S = 2.0  # connections opened and caches filled before latencies count
PATHS = ("/alerts", "/runs/1/settlements?level=roja", "/runs/1/settlements",
         "/runs/1/settlements?level=amarilla")


async def _client(port: int, key: str, since: float, until: float, latencies: list[float],
                  i: int) -> None:
    """One client; latencies of requests started after ``since`` (the warm-up) are kept."""
    requests = [f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n\r\n".encode()
                for p in PATHS]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = i
    try:
        while time.perf_counter() < until:
            start = time.perf_counter()
            writer.write(requests[n % len(requests)])
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length)
            if start >= since:
                latencies.append(time.perf_counter() - start)
            if head[9:12] != b"200":
                raise RuntimeError(f"{PATHS[n % len(PATHS)]}: {head[:12]!r} {body[:200]!r}")
            n += 1
    finally:
        writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    run_dir = args.work / "forecast"
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        key = _prepare_store(data_dir, _live_copy(run_dir, Path(tmp) / "run"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "FLOODWARN_DATA_DIR": str(data_dir),
               "FLOODWARN_RUN_WORKER": "false"}
        server = subprocess.Popen([sys.executable, "-c", "from api.cli import app; app()",
                                   "serve", "--port", str(port), "--no-demo"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(200):
                try:
                    httpx.get(base + "/health", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            latencies: list[float] = []
            since = time.perf_counter() + WARM_UP_S
            until = since + args.seconds

            async def run_all() -> None:
                await asyncio.gather(*(_client(port, key, since, until, latencies, i)
                                       for i in range(args.clients)))

            uvloop.run(run_all())
        finally:
            server.terminate()
            server.wait(timeout=30)
    ms = np.array(latencies) * 1000
    print(f"{args.clients} concurrent clients for {args.seconds:.0f} s: {len(ms):,} requests, "
          f"{len(ms) / args.seconds:.0f} req/s; latency p50 {np.percentile(ms, 50):.1f} ms, "
          f"p95 {np.percentile(ms, 95):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms "
          f"(target p99 < 50 ms)")


if __name__ == "__main__":
    main()
