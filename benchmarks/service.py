"""Service benchmark: p99 latency of a mixed read load (settlements, alerts, the public Atom
feed, runs) from 50 concurrent clients for 60 s while forecast runs execute.

    python benchmarks/service.py --work demo-output [--backend sqlite|postgresql]
    # needs demo-output/forecast and demo-output/terrain (floodwarn demo --out demo-output)

Loads the demo run's settlements and alerts into a fresh store (SQLite, or a new database on
the PostgreSQL server at $FLOODWARN_TEST_POSTGRES), starts `floodwarn serve` (the real uvicorn
server with its worker) on the demo terrain, waits until the worker has prepared it, then
drops the demo storm into the inbox every few seconds so that runs execute (and publish)
throughout the measurement. Prints requests per second, latency percentiles and errors
(target: p99 under 100 ms, no errors), and how many runs executed meanwhile.

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
    from api.publish import publish_run_alerts
    from api.settings import Settings
    from api.store.access import create_api_key
    from api.store.models import Alert, Run
    from api.worker import _store_settlements

    app = create_app(Settings(data_dir=data_dir, run_worker=False,
                              database_url=os.environ.get("FLOODWARN_DATABASE_URL")))
    now = datetime.now(UTC)
    with app.state.sessions.begin() as session:
        session.add(Run(id=1, status="succeeded", rain_path="demo.nc", out_dir=str(run_dir),
                        created_at=now))
        session.flush()
        _store_settlements(session, 1, run_dir)
        publish_run_alerts(session, run_id=1, out_dir=run_dir, sender="bench@floodwarn",
                           now=now)
        _, key = create_api_key(session, role="analyst", name="bench", now=now)
    with app.state.sessions() as session:
        n_alerts = session.scalar(select(func.count()).select_from(Alert)
                                  .where(Alert.in_force.is_(True)))
    if not n_alerts:
        raise RuntimeError("the demo run published no alerts; nothing to query")
    print(f"store: 1 run, its settlements and {n_alerts} alerts in force", flush=True)
    app.state.engine.dispose()
    return key


WARM_UP_S = 2.0  # connections opened and caches filled before latencies count
PATHS = ("/alerts", "/runs/1/settlements?level=roja", "/alerts/feed.atom",
         "/runs/1/settlements", "/runs?limit=20", "/runs/1/settlements?level=amarilla",
         "/alerts/feed.atom", "/runs/1/summary")


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """Head and body of one HTTP/1.1 response with a Content-Length, on a keep-alive stream."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return head, await reader.readexactly(length)


async def _client(port: int, key: str, since: float, until: float,
                  latencies: list[tuple[int, float]], errors: list[str], i: int) -> None:
    """One client; latencies of requests started after ``since`` (the warm-up) are kept."""
    requests = [f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n\r\n".encode()
                for p in PATHS]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = i
    try:
        while time.perf_counter() < until:
            start = time.perf_counter()
            writer.write(requests[n % len(requests)])
            head, body = await read_response(reader)
            if start >= since:
                latencies.append((n % len(PATHS), time.perf_counter() - start))
            if head[9:12] != b"200":
                errors.append(f"{PATHS[n % len(PATHS)]}: {head[:12]!r} {body[:200]!r}")
            n += 1
    finally:
        writer.close()


def new_postgres_database() -> str:
    """A new, empty database on the PostgreSQL server (dropped by the caller)."""
    import secrets

    from sqlalchemy import create_engine, text

    admin_url = os.environ.get("FLOODWARN_TEST_POSTGRES",
                               "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    name = f"floodwarn_bench_{secrets.token_hex(4)}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres_database(url: str) -> None:
    from sqlalchemy import create_engine, text

    admin_url = os.environ.get("FLOODWARN_TEST_POSTGRES",
                               "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} "
                                "WITH (FORCE)"))
    engine.dispose()


def live_storm_file(into: Path) -> Path:
    """The demo's Amanda-scale storm, dated from this hour (its alerts are in force now)."""
    import dataclasses

    from floodwarn.io.rainfall import write_rainfall_netcdf
    from floodwarn.rainfall.storm import AMANDA_2020, storm_forecast

    this_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    live = dataclasses.replace(AMANDA_2020, start=this_hour.isoformat(timespec="minutes"))
    return write_rainfall_netcdf(storm_forecast(live), into / "storm.nc")


async def _feed_runs(inbox: Path, storm: Path, until: float, every_s: float) -> int:
    """Drop the storm into the inbox every ``every_s`` seconds (renamed in, as writers
    should); returns how many were dropped."""
    dropped = 0
    while until - time.perf_counter() > 0.5:
        target = inbox / f"storm_{dropped:03d}.nc"
        shutil.copyfile(storm, inbox / f".{target.name}.part")
        (inbox / f".{target.name}.part").rename(target)
        dropped += 1
        await asyncio.sleep(max(0.0, min(every_s, until - time.perf_counter())))
    return dropped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--run-every", type=float, default=10.0,
                        help="seconds between forecast files dropped into the inbox")
    args = parser.parse_args()
    run_dir = args.work / "forecast"
    database_url = new_postgres_database() if args.backend == "postgresql" else None
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        env = {**os.environ, "FLOODWARN_DATA_DIR": str(data_dir),
               "FLOODWARN_TERRAIN_DIR": str(args.work / "terrain"),
               "FLOODWARN_WORKER_STALL_S": "900"}
        if database_url:
            env["FLOODWARN_DATABASE_URL"] = database_url
            os.environ["FLOODWARN_DATABASE_URL"] = database_url
        key = _prepare_store(data_dir, _live_copy(run_dir, Path(tmp) / "run"))
        # The demo's prepared terrain (reach geometry, thresholds): the worker starts warm.
        if (args.work / "cache").exists():
            shutil.copytree(args.work / "cache", data_dir / "cache")
        storm = live_storm_file(Path(tmp))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-c", "from api.cli import app; app()",
                                   "serve", "--port", str(port), "--no-demo"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(3000):  # up, and the worker past its terrain preparation
                try:
                    health = httpx.get(base + "/health", timeout=1).json()
                    if health["worker"].endswith("waiting for work"):
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            latencies: list[tuple[int, float]] = []
            errors: list[str] = []
            since = time.perf_counter() + WARM_UP_S
            until = since + args.seconds
            inbox = data_dir / "inbox"
            inbox.mkdir(parents=True, exist_ok=True)

            async def run_all() -> int:
                clients = asyncio.gather(*(_client(port, key, since, until, latencies, errors,
                                                   i) for i in range(args.clients)))
                dropped, _ = await asyncio.gather(
                    _feed_runs(inbox, storm, until, args.run_every), clients)
                return int(dropped)

            dropped = uvloop.run(run_all())
            runs = httpx.get(base + "/runs?limit=500", headers={"X-API-Key": key},
                             timeout=30).json()
        finally:
            server.terminate()
            server.wait(timeout=60)
            os.environ.pop("FLOODWARN_DATABASE_URL", None)
            if database_url:
                drop_postgres_database(database_url)
    ms = np.array([seconds for _, seconds in latencies]) * 1000
    by_path = np.array([path for path, _ in latencies])
    finished = [r for r in runs if r["id"] > 1 and r["status"] in ("succeeded", "failed")]
    failed = [r for r in finished if r["status"] == "failed"]
    print(f"{args.backend}: {args.clients} concurrent clients for {args.seconds:.0f} s, mixed "
          f"reads incl. the Atom feed: {len(ms):,} requests, {len(ms) / args.seconds:.0f} "
          f"req/s; latency p50 {np.percentile(ms, 50):.1f} ms, p95 "
          f"{np.percentile(ms, 95):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms (target p99 "
          f"< 100 ms); errors {len(errors)}; forecast runs meanwhile: {dropped} dropped, "
          f"{len(finished)} finished ({len(failed)} failed)")
    for path in dict.fromkeys(PATHS):
        chosen = ms[np.isin(by_path, [i for i, p in enumerate(PATHS) if p == path])]
        print(f"  {path:<38} p50 {np.percentile(chosen, 50):6.1f} ms  p99 "
              f"{np.percentile(chosen, 99):6.1f} ms")
    for error in errors[:5]:
        print("  error:", error)
    for run in failed[:3]:
        print("  failed run:", run["error"])


if __name__ == "__main__":
    main()
