"""Site-report benchmark: 2,000 collective centres and 50 occupancy reports a minute for 10
minutes against the real service; p99 of report writes (target < 100 ms), no lost report, and
how soon the country's needs and gaps include a new report (target < 1 s).

    python benchmarks/site_reports.py [--backend sqlite|postgresql] [--minutes 10] [--rate 50]
        [--run-dir demo-output/forecast]

Starts `floodwarn serve --no-demo` (uvicorn, its worker idle) on a fresh store (SQLite, or a
new database on the PostgreSQL server at $FLOODWARN_TEST_POSTGRES), imports a list of 2,000
sites spread over the municipalities (CSV through POST /sites/import), stock in 6 warehouses,
and 20 site-manager keys of 100 sites each. Then, at ``rate`` reports a minute spread evenly
(Poisson arrivals), a site manager posts a report for one of its sites; right after every
tenth report an analyst asks for the needs by municipality and for the gaps, and the time from
the report's answer until the needs show it is recorded. At the end the store is counted: every
report answered 201 must be there exactly once.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service import drop_postgres_database, new_postgres_database

ADMIN_KEY = "fw_bench_admin_0123456789"


def site_list(n: int, seed: int = 0) -> bytes:
    """``n`` sites at random points inside the municipalities (CSV, Spanish headers), with
    capacities, areas and services drawn so that some flags and gaps appear."""
    from floodwarn.io.gis_data import load_municipalities

    rng = np.random.default_rng(seed)
    polygons = load_municipalities()
    points = polygons.geometry.sample_points(size=int(np.ceil(n / len(polygons))) + 1,
                                             rng=seed).explode(index_parts=False)
    points = points.sample(n=n, random_state=seed)
    capacity = rng.integers(40, 600, n)
    yes_no = np.array(["sí", "no", ""])
    rows = ["codigo,nombre,longitud,latitud,capacidad_personas,area_cubierta_m2,agua,"
            "inodoros_mujeres,inodoros_hombres,iluminacion,puertas_con_llave,espacio_privado,"
            "habilitado"]
    for i, point in enumerate(points):
        rows.append(f"SV-CC-{i + 1:04d},Centro colectivo {i + 1},{point.x:.5f},{point.y:.5f},"
                    f"{capacity[i]},{capacity[i] * 3.5:.0f},{rng.choice(yes_no)},"
                    f"{rng.integers(0, 6)},{rng.integers(0, 4)},{rng.choice(yes_no)},"
                    f"{rng.choice(yes_no)},{rng.choice(yes_no)},sí")
    return ("\n".join(rows) + "\n").encode()


STOCK = """warehouse_id,name,lon,lat,item,quantity,lead_time_h
B-SS,Bodega San Salvador,-89.19,13.69,hygiene_kits,3000,6
B-SS,Bodega San Salvador,-89.19,13.69,water_l,200000,6
B-SM,Bodega San Miguel,-88.18,13.48,hygiene_kits,1500,8
B-SM,Bodega San Miguel,-88.18,13.48,nfi_kits,1200,8
B-SA,Bodega Santa Ana,-89.56,13.99,nfi_kits,800,12
B-SA,Bodega Santa Ana,-89.56,13.99,menstrual_hygiene_kits,2000,12
"""


def report_body(rng: np.random.Generator) -> dict[str, object]:
    bands = rng.integers(0, 40, 8)
    names = ("female_0_5", "male_0_5", "female_6_17", "male_6_17", "female_18_59",
             "male_18_59", "female_60_plus", "male_60_plus")
    people = int(bands.sum())
    return {"status": "open", "households": max(1, people // 4) if people else 0,
            **{k: int(v) for k, v in zip(names, bands, strict=True)},
            "disabled": int(rng.integers(0, max(1, people // 10) + 1)),
            "needs": ["water", "hygiene"]}


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=50.0, help="reports per minute")
    parser.add_argument("--sites", type=int, default=2000)
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="a forecast run's folder, recorded as a new run half-way")
    args = parser.parse_args()
    database_url = new_postgres_database() if args.backend == "postgresql" else None
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "FLOODWARN_DATA_DIR": str(Path(tmp) / "data"),
               "FLOODWARN_ADMIN_KEY": ADMIN_KEY}
        if database_url:
            env["FLOODWARN_DATABASE_URL"] = database_url
        port = free_port()
        server = subprocess.Popen([sys.executable, "-c", "from api.cli import app; app()",
                                   "serve", "--port", str(port), "--no-demo"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        admin = {"X-API-Key": ADMIN_KEY}
        try:
            with httpx.Client(base_url=base, timeout=30) as client:
                for _ in range(600):
                    try:
                        client.get("/health", timeout=1)
                        break
                    except httpx.TransportError:
                        time.sleep(0.3)
                started = time.perf_counter()
                answer = client.post("/sites/import", headers=admin, files={
                    "file": ("albergues.csv", io.BytesIO(site_list(args.sites)), "text/csv")})
                answer.raise_for_status()
                print(f"imported {answer.json()['sites']} sites in "
                      f"{time.perf_counter() - started:.2f} s")
                client.post("/warehouses/stock", headers=admin, files={
                    "file": ("stock.csv", io.BytesIO(STOCK.encode()), "text/csv")}
                            ).raise_for_status()
                analyst = {"X-API-Key": client.post("/keys", headers=admin, json={
                    "role": "analyst", "name": "bench analyst"}).json()["key"]}
                ids = [f"SV-CC-{i + 1:04d}" for i in range(args.sites)]
                managers = []
                for k in range(20):
                    mine = ids[k * (args.sites // 20):(k + 1) * (args.sites // 20)]
                    key = client.post("/keys", headers=admin, json={
                        "role": "site_manager", "name": f"gestor {k}", "site_ids": mine}
                                      ).json()["key"]
                    managers.append(({"X-API-Key": key}, mine))
                started = time.perf_counter()
                client.get("/needs", headers=analyst).raise_for_status()
                print(f"first needs computation (cold): {time.perf_counter() - started:.3f} s")
                rng = np.random.default_rng(1)
                total = int(args.rate * args.minutes)
                writes: list[float] = []
                refresh: list[float] = []
                after_run = float("nan")
                accepted: list[int] = []
                failures: list[str] = []
                begin = time.perf_counter()
                due = begin
                for n in range(total):
                    due += rng.exponential(60.0 / args.rate)
                    wait = due - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                    headers, mine = managers[int(rng.integers(len(managers)))]
                    site = mine[int(rng.integers(len(mine)))]
                    t0 = time.perf_counter()
                    answer = client.post(f"/sites/{site}/reports", headers=headers,
                                         json=report_body(rng))
                    writes.append((time.perf_counter() - t0) * 1000)
                    if answer.status_code != 201:
                        failures.append(f"{answer.status_code} {answer.text[:200]}")
                        continue
                    accepted.append(int(answer.json()["id"]))
                    if args.run_dir is not None and n == total // 2:
                        record_run(database_url or sqlite_url(tmp), args.run_dir.resolve())
                        t1 = time.perf_counter()
                        shown = client.get("/needs", headers=analyst).json()
                        client.get("/needs/gaps", headers=analyst).raise_for_status()
                        after_run = time.perf_counter() - t1
                        if shown["run_id"] is None:
                            failures.append("the needs did not take the new run")
                    if n % 10 == 0:
                        t1 = time.perf_counter()
                        needs = client.get("/needs", headers=analyst,
                                           params={"by": "site"}).json()
                        client.get("/needs/gaps", headers=analyst).raise_for_status()
                        refresh.append(time.perf_counter() - t1)
                        shown = {r["site_id"]: r for r in needs["rows"]}
                        if shown[site]["last_report_at"] is None:
                            failures.append(f"needs did not show the report for {site}")
                elapsed = time.perf_counter() - begin
                count = client.get("/needs", headers=analyst, params={"by": "site"}).json()
                stored_sites = sum(1 for r in count["rows"] if r["last_report_at"] is not None)
            stored = count_reports(database_url or sqlite_url(tmp))
        finally:
            server.terminate()
            server.wait(timeout=30)
            if database_url:
                drop_postgres_database(database_url)
    print(f"backend {args.backend}: {len(writes)} reports in {elapsed / 60:.1f} min "
          f"({len(writes) / elapsed * 60:.0f}/min) over {args.sites} sites")
    print(f"report write latency ms: p50 {percentile(writes, 50):.1f}  "
          f"p95 {percentile(writes, 95):.1f}  p99 {percentile(writes, 99):.1f}  "
          f"max {max(writes):.1f}  (target p99 < 100)")
    print(f"needs + gaps after a report, s: p50 {percentile(refresh, 50):.3f}  "
          f"p99 {percentile(refresh, 99):.3f}  max {max(refresh):.3f}  (target < 1 s)")
    if args.run_dir is not None:
        print(f"needs + gaps after a new run, s: {after_run:.3f}  (target < 1 s)")
    print(f"accepted {len(accepted)}, stored {stored}, distinct ids {len(set(accepted))}, "
          f"sites with a report {stored_sites}, failures {len(failures)}"
          + (f": {failures[:3]}" if failures else ""))
    print("LOST REPORTS" if stored != len(accepted) else "no lost report")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sqlite_url(tmp: str) -> str:
    return f"sqlite:///{Path(tmp) / 'data' / 'floodwarn.sqlite'}"


def record_run(url: str, out_dir: Path) -> None:
    """Record ``out_dir`` as a new succeeded run, as the worker does when a run finishes."""
    from datetime import UTC, datetime

    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from api.store.models import Run

    engine = create_engine(url)
    with Session(engine) as session, session.begin():
        now = datetime.now(UTC)
        session.add(Run(status="succeeded", rain_path="bench.nc", created_at=now,
                        finished_at=now, out_dir=str(out_dir), synthetic=True, summary={}))
    engine.dispose()


def count_reports(url: str) -> int:
    from sqlalchemy import create_engine, func, select

    from api.store.models import SiteReport

    engine = create_engine(url)
    with engine.connect() as connection:
        count = int(connection.execute(select(func.count()).select_from(SiteReport)).scalar()
                    or 0)
    engine.dispose()
    return count


if __name__ == "__main__":
    main()
