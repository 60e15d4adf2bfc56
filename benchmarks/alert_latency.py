"""Service benchmark: from a forecast file landing in the inbox to committee webhooks received.

    python benchmarks/alert_latency.py --work demo-output   # reuses demo-output/terrain

Starts `floodwarn serve --no-demo` (the real server with its worker, SQLite store) on the
demo terrain, subscribes a webhook receiver on localhost for every municipality, then drops
forecast files into the inbox the way a feed would (written under a hidden name, then renamed)
and times, for each, the webhooks that arrive (each one's signature is checked):

1. the Amanda-scale demo storm, landing as soon as the service answers on a cache that has
   never seen this terrain (the worst case after a deployment: the worker is still preparing
   reach geometry, channel sizes and return-period thresholds when the file arrives);
2. a weaker storm (half the rates), on the now prepared cache: the usual case. Its alerts
   are Updates and Cancels of the first ones.

Target: under 30 s from the file landing to the webhooks sent.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

ADMIN_KEY = "fw_bench_" + secrets.token_urlsafe(16)
SECRET = secrets.token_urlsafe(24)


class Receiver:
    """Committee endpoint: records when each signed webhook arrives."""

    def __init__(self) -> None:
        from api.webhooks import SIGNATURE_HEADER, verify

        self.arrivals: list[tuple[float, str]] = []
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if not verify(SECRET, self.headers[SIGNATURE_HEADER], body):
                    receiver.bad_signatures += 1
                msg_type = body.split(b"<msgType>")[1].split(b"<")[0].decode()
                receiver.arrivals.append((time.time(), msg_type))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cap"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _drop(forecast: object, inbox: Path, name: str) -> float:
    """Write a forecast under a hidden name and rename it into the inbox; the landing time."""
    from floodwarn.io.rainfall import write_rainfall_netcdf

    hidden = inbox / f".{name}.part"
    write_rainfall_netcdf(forecast, hidden)  # type: ignore[arg-type]
    landed = time.time()
    os.utime(hidden, (landed, landed))
    hidden.rename(inbox / name)
    return landed


def _wait_for_run(client: httpx.Client, n_runs: int, timeout_s: float) -> dict:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        runs = client.get("/runs").json()
        if len(runs) >= n_runs and runs[0]["status"] in ("succeeded", "failed"):
            return runs[0]
        time.sleep(0.1)
    raise TimeoutError(f"run {n_runs} not finished after {timeout_s:.0f} s")


def _wait_for_webhooks(receiver: Receiver, expected: int, timeout_s: float) -> None:
    deadline = time.time() + timeout_s
    while len(receiver.arrivals) < expected and time.time() < deadline:
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True,
                        help="folder with the demo terrain (built there if missing)")
    args = parser.parse_args()
    from floodwarn.pipeline import demo_terrain
    from floodwarn.rainfall.storm import AMANDA_2020, storm_forecast

    if not (args.work / "terrain" / "terrain.json").exists():
        print("building the demo terrain…", flush=True)
        demo_terrain(args.work)
    # Dated from this hour, as live forecasts are (a past storm publishes nothing).
    this_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    live = dataclasses.replace(AMANDA_2020, start=this_hour.isoformat(timespec="minutes"))
    storms = [("amanda_live.nc", live),
              ("amanda_half.nc", dataclasses.replace(
                  live, name="amanda-half", core_rate_mm_h=live.core_rate_mm_h / 2,
                  shield_rate_mm_h=live.shield_rate_mm_h / 2))]
    forecasts = [(name, storm_forecast(params)) for name, params in storms]
    receiver = Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        inbox = data_dir / "inbox"
        inbox.mkdir(parents=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "FLOODWARN_DATA_DIR": str(data_dir),
               "FLOODWARN_TERRAIN_DIR": str((args.work / "terrain").resolve()),
               "FLOODWARN_ADMIN_KEY": ADMIN_KEY}
        server = subprocess.Popen([sys.executable, "-c", "from api.cli import app; app()",
                                   "serve", "--port", str(port), "--no-demo"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}",
                              headers={"X-API-Key": ADMIN_KEY}, timeout=30)
        try:
            for _ in range(300):
                try:
                    client.get("/health", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            from floodwarn.io.gis_data import load_municipalities

            for muni in load_municipalities()["id"]:
                client.post("/subscriptions", json={"municipality_id": muni,
                                                    "url": receiver.url, "secret": SECRET}
                            ).raise_for_status()
            results = []
            for n, (name, forecast) in enumerate(forecasts, start=1):
                before = len(receiver.arrivals)
                landed = _drop(forecast, inbox, name)
                run = _wait_for_run(client, n, timeout_s=300)
                if run["status"] != "succeeded":
                    raise RuntimeError(f"{name}: run failed: {run['error']}")
                in_force = len(client.get("/alerts").json())
                expected = _deliveries_enqueued(client)
                _wait_for_webhooks(receiver, expected, timeout_s=120)
                got = receiver.arrivals[before:]
                if not got:
                    raise RuntimeError(f"{name}: no webhook arrived")
                kinds = {k: sum(1 for _, m in got if m == k) for k in ("Alert", "Update",
                                                                       "Cancel")}
                results.append((name, landed, got, kinds, in_force))
        finally:
            client.close()
            server.terminate()
            server.wait(timeout=30)
    for (name, landed, got, kinds, in_force), label in zip(
            results, ["landed while the fresh service prepares", "prepared cache"], strict=True):
        first = min(t for t, _ in got) - landed
        last = max(t for t, _ in got) - landed
        print(f"{name} [{label}]: {len(got)} webhooks "
              f"({', '.join(f'{v} {k}' for k, v in kinds.items() if v)}); first after "
              f"{first:.1f} s, last after {last:.1f} s from the file landing "
              f"(target < 30 s); alerts in force after: {in_force}")
    print(f"signatures that failed verification: {receiver.bad_signatures}")


def _deliveries_enqueued(client: httpx.Client) -> int:
    """Webhooks the service owes so far: one per message and subscription, any status."""
    text = client.get("/metrics").text
    total = 0
    for line in text.splitlines():
        if line.startswith("floodwarn_deliveries{"):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


if __name__ == "__main__":
    main()
