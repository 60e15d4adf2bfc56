"""Crash recovery on the demo terrain: a forecast accepted, the service killed with SIGKILL
while the run executes, then restarted; seconds from the restart until the run has succeeded
and its alerts are published (target < 60 s), on SQLite and PostgreSQL.

    python benchmarks/crash_recovery.py --work demo-output [--backend sqlite|postgresql]
    # needs demo-output/terrain and demo-output/cache (floodwarn demo --out demo-output)
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from service import drop_postgres_database, live_storm_file, new_postgres_database
from sqlalchemy import create_engine, text

ADMIN = "fw_bench_recovery_0123456789abcdef"
LEASE_S = 30.0  # the service's default run lease


def _serve(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    server = subprocess.Popen([sys.executable, "-c", "from api.cli import app; app()",
                               "serve", "--port", str(port), "--no-demo"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return server
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("the service did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        url = (new_postgres_database() if args.backend == "postgresql"
               else f"sqlite:///{data / 'floodwarn.sqlite'}")
        env = {**os.environ, "FLOODWARN_DATA_DIR": str(data), "FLOODWARN_ADMIN_KEY": ADMIN,
               "FLOODWARN_TERRAIN_DIR": str(args.work / "terrain"),
               "FLOODWARN_DATABASE_URL": url, "FLOODWARN_RUN_LEASE_S": str(LEASE_S)}
        data.mkdir(parents=True)
        if (args.work / "cache").exists():
            shutil.copytree(args.work / "cache", data / "cache")
        engine = create_engine(url)

        def status() -> str | None:
            with engine.connect() as connection:
                return connection.execute(text("select status from runs")).scalar()

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = _serve(port, env)
        try:
            storm = live_storm_file(Path(tmp))
            (data / "inbox").mkdir(parents=True, exist_ok=True)
            storm.rename(data / "inbox" / "tormenta.nc")
            while status() != "running":
                time.sleep(0.02)
            time.sleep(1.0)  # well into the run
            os.kill(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
            killed_status = status()
            restarted = time.perf_counter()
            server = _serve(port, env)
            while status() != "succeeded":
                if status() == "failed":
                    raise RuntimeError("the recovered run failed")
                time.sleep(0.1)
            seconds = time.perf_counter() - restarted
            with engine.connect() as connection:
                messages = connection.execute(text("select count(*) from alert_versions")
                                              ).scalar()
                attempts = connection.execute(text("select attempts from runs")).scalar()
        finally:
            server.kill()
            server.wait(timeout=10)
            engine.dispose()
            if args.backend == "postgresql":
                drop_postgres_database(url)
    print(f"{args.backend}: killed while the run was {killed_status}; after the restart the "
          f"run succeeded and published {messages} CAP messages in {seconds:.1f} s (attempt "
          f"{attempts}; run lease {LEASE_S:.0f} s; target < 60 s)")


if __name__ == "__main__":
    main()
