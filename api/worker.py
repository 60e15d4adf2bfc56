"""The run worker: executes queued forecast runs outside requests, one at a time, and sends
due webhook deliveries.

A run goes queued → running → succeeded | failed. On success its settlement results are
stored and its alerts published in one transaction; a failed run records why and changes no
published alert. New files in the inbox folder become queued runs.
"""

from __future__ import annotations

import secrets
import threading
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from api.publish import publish_run_alerts
from api.settings import Settings
from api.store.models import AuditEntry, Run, SettlementResult
from api.webhooks import deliver_due
from floodwarn.hydrology.water_bodies import check_reservoir_levels
from floodwarn.io.forecast_outputs import SETTLEMENTS_FILE
from floodwarn.logs import get_logger
from floodwarn.parameters import WaterBodies, load_parameters
from floodwarn.pipeline import prepare_forecasting, run_forecast

log = get_logger(__name__)

RAIN_SUFFIXES = (".nc", ".nc4", ".grib", ".grib2", ".grb", ".grb2")


def inbox_name(original: str, now: datetime) -> str:
    """A name in the inbox for a file called ``original`` arriving ``now``: sortable by arrival
    and unique, so that two arrivals of the same file never overwrite each other."""
    return f"{now:%Y%m%dT%H%M%S}_{secrets.token_hex(3)}_{Path(original).name}"


def queue_run(session: Session, rain_path: Path, *, actor: str, now: datetime,
              reservoir_levels: dict[str, float] | None = None) -> Run:
    """Queue a run of ``rain_path``; ``reservoir_levels`` (m a.s.l. by water-body id) are its
    water bodies' initial levels, checked here (the others start at their normal level)."""
    if reservoir_levels:
        check_reservoir_levels(reservoir_levels, load_parameters(WaterBodies))
    options = {"reservoir_levels": dict(reservoir_levels)} if reservoir_levels else None
    run = Run(status="queued", rain_path=str(rain_path), created_at=now, options=options)
    session.add(run)
    session.flush()
    session.add(AuditEntry(at=now, actor=actor, action="queue_run",
                           detail={"run_id": run.id, "rain_path": str(rain_path),
                                   "options": options}))
    return run


#: A file in the inbox is taken once it has been left unchanged this long (s), so that one
#: still being copied in is not run half-written. Writers that rename a finished file into
#: the inbox (the safe way) are not held up by more than this.
INBOX_SETTLE_S = 1.0


def scan_inbox(sessions: sessionmaker[Session], inbox: Path, *, now: datetime,
               settle_s: float = INBOX_SETTLE_S) -> list[int]:
    """Queue a run for every forecast file in ``inbox`` not queued before.

    Hidden files (a leading dot: temporary names of writers) and files modified less than
    ``settle_s`` seconds ago are left for a later scan.
    """
    if not inbox.exists():
        return []
    queued = []
    wall = time.time()
    with sessions.begin() as session:
        known = set(session.scalars(select(Run.rain_path)))
        for path in sorted(inbox.iterdir()):
            if (path.suffix.lower() not in RAIN_SUFFIXES or path.name.startswith(".")
                    or str(path) in known):
                continue
            try:
                info = path.stat()
            except FileNotFoundError:  # renamed away between listing and looking
                continue
            if info.st_size == 0 or wall - info.st_mtime < settle_s:
                continue
            queued.append(queue_run(session, path, actor="inbox", now=now).id)
    return queued


def execute_next(sessions: sessionmaker[Session], settings: Settings, terrain_dir: Path,
                 *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> int | None:
    """Run the oldest queued forecast; returns its id, or None when nothing waits."""
    claimed = _claim_next(sessions, clock())
    if claimed is None:
        return None
    run_id, rain, options = claimed
    out_dir = settings.data_dir / "runs" / str(run_id)
    try:
        result = run_forecast(terrain_dir, rain, out_dir, cache_dir=settings.data_dir / "cache",
                              reservoir_levels=(options or {}).get("reservoir_levels"))
        with sessions.begin() as session:
            run = session.get_one(Run, run_id)
            _store_settlements(session, run_id, out_dir)
            if result.risk is not None:
                publish_run_alerts(session, run_id=run_id, out_dir=out_dir,
                                   sender=settings.sender, now=clock(),
                                   signer=settings.cap_signer())
            run.status, run.finished_at, run.out_dir = "succeeded", clock(), str(out_dir)
            run.synthetic = bool(result.record["synthetic"])
            run.summary = result.record.get("risk", {})
    except Exception as exc:
        log.error("run failed", extra={"run_id": run_id, "error": str(exc)})
        with sessions.begin() as session:
            run = session.get_one(Run, run_id)
            run.status, run.finished_at = "failed", clock()
            run.error = f"{type(exc).__name__}: {exc}"
            session.add(AuditEntry(at=clock(), actor="worker", action="run_failed",
                                   detail={"run_id": run_id,
                                           "traceback": traceback.format_exc()[-2000:]}))
    return run_id


def _claim_next(sessions: sessionmaker[Session], now: datetime
                ) -> tuple[int, Path, dict[str, Any] | None] | None:
    """Mark the oldest queued run as running and return it; None when nothing waits.

    The claim is one guarded UPDATE (still queued), so that two workers — the service's and a
    `floodwarn runs submit --now` — never execute the same run.
    """
    while True:
        with sessions() as session:
            run = session.scalars(select(Run).where(Run.status == "queued")
                                  .order_by(Run.id).limit(1)).one_or_none()
            if run is None:
                return None
            run_id, rain, options = run.id, Path(run.rain_path), run.options
        with sessions.begin() as session:
            taken = session.execute(update(Run).where(Run.id == run_id, Run.status == "queued")
                                    .values(status="running", started_at=now))
            if taken.rowcount:  # type: ignore[attr-defined]
                return run_id, rain, options


def _store_settlements(session: Session, run_id: int, out_dir: Path) -> None:
    path = out_dir / SETTLEMENTS_FILE
    if not path.exists():
        return
    towns = gpd.read_file(path)
    metrics = ("max_depth_m", "mean_depth_m", "flooded_share", "people_exposed",
               "hours_to_flooding", "return_period_years", "evacuees", "unmet_evacuees")
    for row in towns.itertuples():
        values: dict[str, object] = {
            m: (None if getattr(row, m) != getattr(row, m) else float(getattr(row, m)))
            for m in metrics if hasattr(row, m)}
        point = row.geometry.representative_point()
        values.update({"lon": point.x, "lat": point.y, "population": int(row.population),
                       "level_reason": str(row.level_reason)})
        session.add(SettlementResult(run_id=run_id, settlement_id=int(row.id),
                                     name=str(row.name), municipality_id=str(row.municipality_id),
                                     department=str(row.department), level=str(row.level),
                                     metrics=values))


class Worker:
    """A background thread: scans the inbox and executes queued runs until stopped."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings, terrain_dir: Path,
                 *, inbox: Path | None = None, poll_s: float = 2.0) -> None:
        self.sessions, self.settings, self.terrain_dir = sessions, settings, terrain_dir
        self.inbox, self.poll_s = inbox, poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="floodwarn-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _prepare(self) -> None:
        """Prepare the terrain once (reach geometry, channel sizing, thresholds: what every
        forecast reuses), so that a forecast landing later reaches committees in seconds."""
        if not (self.terrain_dir / "terrain.json").exists():
            return
        try:
            seconds = prepare_forecasting(self.terrain_dir,
                                          cache_dir=self.settings.data_dir / "cache")
            log.info("terrain prepared", extra={"seconds": seconds})
        except Exception as exc:  # a run will prepare (or fail with the reason) itself
            log.error("terrain preparation failed", extra={"error": str(exc)})

    def _loop(self) -> None:
        self._prepare()
        with httpx.Client() as client:
            while not self._stop.is_set():
                if self.inbox is not None:
                    scan_inbox(self.sessions, self.inbox, now=datetime.now(UTC))
                ran = execute_next(self.sessions, self.settings, self.terrain_dir)
                deliver_due(self.sessions, client, now=datetime.now(UTC))
                if ran is None:
                    self._stop.wait(self.poll_s)
