"""Runs in the store: queue, claim with a lease, renew, recover from crashes, finish, read.

A worker claims the oldest queued run with one guarded UPDATE and holds it by a lease it
renews while it works. A run whose lease has lapsed was left by a worker that died (kill -9,
power cut, OOM): it is queued again, or failed with the reason after ``MAX_RUN_ATTEMPTS``
interrupted attempts, so every accepted forecast ends published or failed — never ``running``
forever.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from api.store.models import AuditEntry, Run
from floodwarn.errors import NotFoundError
from floodwarn.request import ForecastRequest

#: A run taken this many times without finishing (its worker died each time) is failed: the
#: forecast itself probably kills the worker (memory), and trying forever would starve the
#: queue.
MAX_RUN_ATTEMPTS = 3

TERMINAL = ("succeeded", "failed")


def queue_run(session: Session, request: ForecastRequest, *, actor: str, now: datetime,
              options: dict[str, Any] | None = None) -> Run:
    """Queue ``request`` (already validated). The caller's ``options`` (as they were given,
    shown with the run) and the whole request are kept with the run, so that a later or
    repeated execution does exactly what was asked."""
    run = Run(status="queued", rain_path=str(request.rain_path), created_at=now,
              options=options, request=request.to_json(), attempts=0)
    session.add(run)
    session.flush()
    session.add(AuditEntry(at=now, actor=actor, action="queue_run",
                           detail={"run_id": run.id, "rain_file": request.rain_path.name,
                                   "options": options}))
    return run


def known_rain_paths(session: Session) -> set[str]:
    """Rain files some run was queued for (the inbox takes each file once)."""
    return set(session.scalars(select(Run.rain_path)))


def claim_next(sessions: sessionmaker[Session], *, worker: str, now: datetime,
               lease: timedelta) -> Run | None:
    """Mark the oldest queued run as running for ``worker`` until ``now + lease``; None when
    nothing waits. The claim is one guarded UPDATE (still queued), so two workers — the
    service's and a `floodwarn runs submit --now` — never execute the same run."""
    while True:
        with sessions() as session:
            run_id = session.scalar(select(Run.id).where(Run.status == "queued")
                                    .order_by(Run.id).limit(1))
        if run_id is None:
            return None
        with sessions.begin() as session:
            taken = session.execute(
                update(Run).where(Run.id == run_id, Run.status == "queued")
                .values(status="running", started_at=now, worker=worker,
                        lease_until=now + lease, attempts=Run.attempts + 1,
                        progress=None))
            if taken.rowcount:  # type: ignore[attr-defined]
                return session.get_one(Run, run_id)


def renew_lease(sessions: sessionmaker[Session], run_id: int, *, worker: str, now: datetime,
                lease: timedelta, progress: dict[str, Any] | None = None) -> bool:
    """Extend ``worker``'s lease on a run it holds (and record its progress); False when the
    run is no longer its own (recovered by another worker after a stall)."""
    values: dict[str, Any] = {"lease_until": now + lease}
    if progress is not None:
        values["progress"] = progress
    with sessions.begin() as session:
        renewed = session.execute(update(Run).where(
            Run.id == run_id, Run.worker == worker, Run.status == "running").values(**values))
        return bool(renewed.rowcount)  # type: ignore[attr-defined]


def recover_abandoned(sessions: sessionmaker[Session], *, now: datetime,
                      max_attempts: int = MAX_RUN_ATTEMPTS,
                      known_dead: Callable[[str], bool] = lambda _worker: False
                      ) -> dict[str, list[int]]:
    """Runs left ``running`` by a dead worker — its lease lapsed, or ``known_dead`` says its
    worker is gone (a process of this host that no longer exists): queued again, or failed
    after ``max_attempts`` interrupted attempts. Returns the ids by what happened to them."""
    outcome: dict[str, list[int]] = {"requeued": [], "failed": []}
    with sessions.begin() as session:
        running = session.scalars(select(Run).where(Run.status == "running")).all()
        abandoned = [run for run in running
                     if run.lease_until is None or run.lease_until < now
                     or (run.worker is not None and known_dead(run.worker))]
        for run in abandoned:
            lost = run.worker
            run.progress, run.started_at = None, None
            if run.attempts >= max_attempts:
                run.status, run.finished_at = "failed", now
                run.error = (f"interrupted {run.attempts} times (the worker executing it "
                             "stopped each time; see the service log); not tried again.")
                outcome["failed"].append(run.id)
            else:
                run.status, run.worker, run.lease_until = "queued", None, None
                outcome["requeued"].append(run.id)
            session.add(AuditEntry(at=now, actor="supervisor", action="run_recovered",
                                   detail={"run_id": run.id, "lost_worker": lost,
                                           "attempts": run.attempts, "now": run.status}))
    return outcome


def finish_run(session: Session, run_id: int, *, worker: str, now: datetime,
               out_dir: Path | None = None, synthetic: bool | None = None,
               summary: dict[str, Any] | None = None, error: str | None = None) -> bool:
    """Record a run's end (succeeded with its outputs, or failed with ``error``) if ``worker``
    still holds it; False when it lost the run to recovery (its result is then discarded)."""
    values: dict[str, Any] = {"finished_at": now, "lease_until": None, "progress": None}
    if error is None:
        values.update(status="succeeded", out_dir=str(out_dir), synthetic=synthetic,
                      summary=summary, error=None)
    else:
        values.update(status="failed", error=error)
    written = session.execute(update(Run).where(
        Run.id == run_id, Run.worker == worker, Run.status == "running").values(**values))
    return bool(written.rowcount)  # type: ignore[attr-defined]


def get_run(session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFoundError(f"no run {run_id}")
    return run


def list_runs(session: Session, *, limit: int, before: int | None = None) -> Sequence[Run]:
    """The newest runs first, ``limit`` of them, older than run ``before`` when given."""
    query = select(Run).order_by(Run.id.desc()).limit(limit)
    if before is not None:
        query = query.where(Run.id < before)
    return session.scalars(query).all()


def latest_run_status(session: Session) -> str | None:
    return session.scalar(select(Run.status).order_by(Run.id.desc()).limit(1))


def run_counts(session: Session) -> dict[str, int]:
    """How many runs are in each status."""
    return {status: count for status, count in session.execute(
        select(Run.status, func.count()).group_by(Run.status))}


def succeeded_output_dir(session: Session, run_id: int) -> Path:
    """The output folder of a succeeded run (NotFoundError otherwise, saying why)."""
    run = get_run(session, run_id)
    if run.status != "succeeded" or run.out_dir is None:
        raise NotFoundError(f"run {run_id} has no outputs (status {run.status}).")
    return Path(run.out_dir)


def record_failure(session: Session, run_id: int, *, actor: str, now: datetime,
                   traceback_tail: str) -> None:
    session.add(AuditEntry(at=now, actor=actor, action="run_failed",
                           detail={"run_id": run_id, "traceback": traceback_tail}))
