"""The run worker: executes queued forecast runs outside requests, one at a time, and sends
due webhook deliveries — supervised, so that no exception stops it silently.

A run goes queued → running → succeeded | failed. On success its settlement results are
stored and its alerts published in one transaction; a failed run records why and changes no
published alert. New files in the inbox folder become queued runs.

Supervision: every pass of the loop (scan, recover, run, deliver) is guarded; an exception is
logged, counted (``/metrics``) and the loop goes on after a short back-off. The worker beats a
heartbeat on every pass and every step of a run; ``/health`` answers 503 when the thread has
died or has not beaten for ``worker_stall_s``. A run is held by a lease renewed by a separate
thread while it executes; runs whose lease lapsed (their worker was killed) are queued again
(:func:`api.store.runs.recover_abandoned`) on start and on every pass.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import geopandas as gpd
import httpx
from sqlalchemy.orm import Session, sessionmaker

from api.errors import scrub_paths
from api.publish import publish_run_alerts
from api.runner import ForecastProcess, ForecastRunner, run_here
from api.settings import Settings
from api.store.models import Run, SettlementResult
from api.store.runs import (
    claim_next,
    finish_run,
    record_failure,
    recover_abandoned,
    renew_lease,
)
from api.store.sites import latest_state, site_count
from api.submit import scan_inbox
from api.webhooks import deliver_due
from floodwarn.ensemble import MemberProgress
from floodwarn.io.forecast_outputs import SETTLEMENTS_FILE
from floodwarn.logs import get_logger
from floodwarn.pipeline import FORECAST_JOB_STEPS
from floodwarn.request import ForecastRequest
from floodwarn.sites.profiles import write_site_profiles

log = get_logger(__name__)

#: A file in the inbox is taken once it has been left unchanged this long (s), so that one
#: still being copied in is not run half-written. Writers that rename a finished file into
#: the inbox (the safe way) are not held up by more than this.
INBOX_SETTLE_S = 1.0


#: Workers of this process that are alive (their ids), for :func:`worker_is_dead`.
_LIVE_WORKERS: set[str] = set()


def new_worker_id() -> str:
    """A name for one worker's claims, unique across processes and restarts: host, process
    id and a random part (``host:pid:token``)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def worker_is_dead(worker: str) -> bool:
    """True when ``worker`` certainly no longer runs: it belonged to this host and its process
    is gone, or it belonged to this very process (a previous life with the same process id, as
    in a restarted container) and is not one of its live workers. Anything else — another
    host, a process id now reused — is left to its lease."""
    host, _, rest = worker.partition(":")
    pid_text, _, _ = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return worker not in _LIVE_WORKERS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


@dataclass
class WorkerHealth:
    """What the worker shows of itself: heartbeat, what it is doing, errors by stage."""

    heartbeat: float = field(default_factory=time.monotonic)
    doing: str = "starting"
    errors: Counter[str] = field(default_factory=Counter)
    last_error: str | None = None
    runs_recovered: int = 0

    def beat(self, doing: str) -> None:
        self.heartbeat, self.doing = time.monotonic(), doing

    def failed(self, stage: str, exc: BaseException) -> None:
        self.errors[stage] += 1
        self.last_error = f"{stage}: {type(exc).__name__}: {scrub_paths(str(exc))[:300]}"


def _stored_request(run: Run, settings: Settings) -> ForecastRequest:
    """The run's request as stored; runs queued by older versions kept only the file and the
    options."""
    if run.request is not None:
        return ForecastRequest.model_validate(run.request)
    return ForecastRequest.build(terrain_dir=settings.terrain, rain_path=Path(run.rain_path),
                                 **(run.options or {}))


#: The sites a run of the service plans with: the store's list at the run's start, with each
#: site's latest occupancy and status (live capacity), written beside the run's outputs.
LIVE_SITES_FILE = "live_sites.geojson"


def _with_live_sites(request: ForecastRequest, sessions: sessionmaker[Session],
                     out_dir: Path) -> ForecastRequest:
    """``request`` planning with the store's collective centres as they are now (remaining
    capacity = profiled − latest occupancy; closed and full sites no destination), unless it
    names its own centres file or the store holds no sites."""
    if request.centres_path is not None or request.centres_layer_path is not None:
        return request
    with sessions() as session:
        if not site_count(session):
            return request
        state = latest_state(session)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / LIVE_SITES_FILE
    write_site_profiles(state, path)
    return request.model_copy(update={"centres_layer_path": path})


class _LeaseKeeper:
    """Renews a run's lease (and its progress) from a thread of its own while the run works:
    a long step still shows the run alive, and a killed process stops renewing."""

    def __init__(self, sessions: sessionmaker[Session], run_id: int, worker: str,
                 lease: timedelta, health: WorkerHealth) -> None:
        self.sessions, self.run_id, self.worker, self.lease = sessions, run_id, worker, lease
        self.health = health
        self.progress: dict[str, object] = {"step": "claimed", "done": 0,
                                            "total": len(FORECAST_JOB_STEPS)}
        self._stop = threading.Event()
        self._members_renewed = 0.0
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name=f"floodwarn-lease-{run_id}")

    def __enter__(self) -> _LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def step(self, name: str) -> None:
        done = FORECAST_JOB_STEPS.index(name) if name in FORECAST_JOB_STEPS else 0
        self.progress = {"step": name, "done": done, "total": len(FORECAST_JOB_STEPS),
                         "at": datetime.now(UTC).isoformat(timespec="seconds")}
        self.health.beat(f"run {self.run_id}: {name}")
        self._renew()

    def members(self, progress: MemberProgress) -> None:
        """Ensemble members done of the total, with the estimate of the time left."""
        self.progress = {**self.progress, **progress.to_json(),
                         "at": datetime.now(UTC).isoformat(timespec="seconds")}
        self.health.beat(f"run {self.run_id}: members {progress.done}/{progress.total}")
        now = time.monotonic()
        # At most every two seconds: a store write per chunk of members would be noise.
        if now - self._members_renewed >= 2.0 or progress.done == progress.total:
            self._members_renewed = now
            self._renew()

    def _renew(self) -> None:
        try:
            if not renew_lease(self.sessions, self.run_id, worker=self.worker,
                               now=datetime.now(UTC), lease=self.lease,
                               progress=self.progress):
                log.warning("run no longer held by this worker (taken over after a stall); "
                            "its result will be discarded", extra={"run_id": self.run_id})
        except Exception as exc:  # a busy store now and then: the next renewal may pass
            log.warning("lease renewal failed", extra={"run_id": self.run_id,
                                                       "error": str(exc)})

    def _loop(self) -> None:
        while not self._stop.wait(self.lease.total_seconds() / 3):
            self._renew()


def execute_next(sessions: sessionmaker[Session], settings: Settings, *,
                 worker: str | None = None, health: WorkerHealth | None = None,
                 runner: ForecastRunner = run_here,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> int | None:
    """Run the oldest queued forecast with ``runner`` (in this process by default); returns
    its id, or None when nothing waits."""
    if worker is None:  # a one-off worker (the command line): alive while it executes
        worker = new_worker_id()
        _LIVE_WORKERS.add(worker)
        try:
            return execute_next(sessions, settings, worker=worker, health=health,
                                runner=runner, clock=clock)
        finally:
            _LIVE_WORKERS.discard(worker)
    health = health or WorkerHealth()
    lease = timedelta(seconds=settings.run_lease_s)
    run = claim_next(sessions, worker=worker, now=clock(), lease=lease)
    if run is None:
        return None
    run_id = run.id
    # A run taken again after a crash writes afresh, beside what the interrupted attempt left.
    out_dir = settings.data_dir / "runs" / (
        str(run_id) if run.attempts <= 1 else f"{run_id}.{run.attempts}")
    log.info("run started", extra={"run_id": run_id, "attempt": run.attempts})
    with _LeaseKeeper(sessions, run_id, worker, lease, health) as keeper:
        try:
            request = _with_live_sites(_stored_request(run, settings), sessions, out_dir)
            record, has_risk = runner(request, out_dir, settings.data_dir / "cache", keeper,
                                      settings.execution())
            with sessions.begin() as session:
                if not finish_run(session, run_id, worker=worker, now=clock(), out_dir=out_dir,
                                  synthetic=bool(record["synthetic"]),
                                  summary=record.get("risk", {})):
                    log.warning("run taken over while it executed; its result is discarded",
                                extra={"run_id": run_id})
                    return run_id
                towns = _store_settlements(session, run_id, out_dir)
                if has_risk:
                    publish_run_alerts(session, run_id=run_id, out_dir=out_dir,
                                       sender=settings.sender, now=clock(),
                                       signer=settings.cap_signer(), towns=towns)
        except Exception as exc:
            log.error("run failed", extra={"run_id": run_id, "error": str(exc)})
            with sessions.begin() as session:
                if finish_run(session, run_id, worker=worker, now=clock(),
                              error=scrub_paths(f"{type(exc).__name__}: {exc}")):
                    record_failure(session, run_id, actor="worker", now=clock(),
                                   traceback_tail=traceback.format_exc()[-2000:])
    return run_id


def _store_settlements(session: Session, run_id: int, out_dir: Path
                       ) -> gpd.GeoDataFrame | None:
    """Store a run's settlement results; returns the settlements read (None: the run's domain
    holds none)."""
    path = out_dir / SETTLEMENTS_FILE
    if not path.exists():
        return None
    towns = gpd.read_file(path)
    metrics = ("max_depth_m", "mean_depth_m", "flooded_share", "people_exposed",
               "hours_to_flooding", "return_period_years", "evacuees", "unmet_evacuees",
               "prob_amarilla", "prob_naranja", "prob_roja")
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
    return towns


class Worker:
    """A background thread: recovers abandoned runs, scans the inbox, executes queued runs
    and sends due webhooks until stopped; no exception ends it."""

    #: Back-off after a failed pass (s), doubling up to the cap while failures repeat.
    BACKOFF_S = (1.0, 30.0)

    def __init__(self, sessions: sessionmaker[Session], settings: Settings, *,
                 poll_s: float = 2.0, watch_inbox: bool = True) -> None:
        self.sessions, self.settings, self.poll_s = sessions, settings, poll_s
        self.watch_inbox = watch_inbox
        self.worker_id = new_worker_id()
        self.health = WorkerHealth()
        self.secret_box = settings.secret_box()
        self._inbox_skipped: set[str] = set()
        # Forecasts run in a child process started from the worker's thread (see api.runner).
        self._process = ForecastProcess()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervised, name="floodwarn-worker",
                                        daemon=True)

    def start(self) -> None:
        _LIVE_WORKERS.add(self.worker_id)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._process.close()
        _LIVE_WORKERS.discard(self.worker_id)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def heartbeat_age(self) -> float:
        return time.monotonic() - self.health.heartbeat

    def problems(self) -> list[str]:
        """Why the worker cannot be trusted to run forecasts now (empty when it can)."""
        if not self._thread.is_alive():
            return [f"the worker thread has stopped (last error: {self.health.last_error})"]
        silent = self.heartbeat_age()
        if silent > self.settings.worker_stall_s:
            return [f"the worker has shown no progress for {silent:.0f} s (doing: "
                    f"{self.health.doing}; last error: {self.health.last_error})"]
        return []

    def _prepare(self) -> None:
        """Prepare the terrain once (reach geometry, channel sizing, thresholds: what every
        forecast reuses), so that a forecast landing later reaches committees in seconds."""
        if not (self.settings.terrain / "terrain.json").exists():
            return
        self.health.beat("preparing the terrain")
        seconds = self._process.prepare(self.settings.terrain, self.settings.data_dir / "cache")
        log.info("terrain prepared", extra={"seconds": seconds})

    def _guarded(self, stage: str, step: Callable[[], object]) -> tuple[bool, object]:
        try:
            return True, step()
        except Exception as exc:
            self.health.failed(stage, exc)
            log.error("worker step failed", exc_info=exc, extra={"stage": stage})
            return False, None

    def _recover(self) -> None:
        moved = recover_abandoned(self.sessions, now=datetime.now(UTC),
                                  known_dead=worker_is_dead)
        if moved["requeued"] or moved["failed"]:
            self.health.runs_recovered += len(moved["requeued"]) + len(moved["failed"])
            log.warning("abandoned runs recovered", extra=moved)

    def _supervised(self) -> None:
        # Recovery first: a forecast accepted before a crash must not wait for the terrain.
        self._guarded("recover", self._recover)
        self._guarded("prepare", self._prepare)
        failures = 0
        with httpx.Client() as client:
            while not self._stop.is_set():
                self.health.beat("polling")
                passed = [self._guarded("recover", self._recover)[0]]
                if self.watch_inbox:
                    passed.append(self._guarded("scan_inbox", lambda: scan_inbox(
                        self.sessions, self.settings, now=datetime.now(UTC),
                        settle_s=INBOX_SETTLE_S, skipped=self._inbox_skipped))[0])
                ok, ran = self._guarded("run", lambda: execute_next(
                    self.sessions, self.settings, worker=self.worker_id, health=self.health,
                    runner=self._process))
                passed.append(ok)
                self.health.beat("delivering webhooks")
                passed.append(self._guarded("deliver", lambda: deliver_due(
                    self.sessions, client, self.secret_box, now=datetime.now(UTC)))[0])
                failures = 0 if all(passed) else failures + 1
                self.health.beat("waiting for work")
                if failures:
                    low, high = self.BACKOFF_S
                    self._stop.wait(min(high, low * 2 ** (failures - 1)))
                elif ran is None:
                    self._stop.wait(self.poll_s)
