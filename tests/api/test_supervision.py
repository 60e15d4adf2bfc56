"""The worker cannot fail silently: it survives exceptions in a scan or a run (counted in
/metrics), /health turns 503 when it is dead or stalled, and runs abandoned by a crash are
taken again by a lease that expires."""

import os
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from api.store.models import Run
from api.store.runs import MAX_RUN_ATTEMPTS, recover_abandoned
from api.worker import Worker
from tests.api.test_runs import _rain
from tests.test_forecast_cli import salvadoran_terrain  # noqa: F401  (fixture)

ADMIN = "fw_supervision_admin_0123456789"


def _wait(check, timeout, what):
    deadline = time.time() + timeout
    while not (value := check()):
        assert time.time() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.1)
    return value


def test_worker_survives_a_locked_store_and_a_symlink_loop(salvadoran_terrain,  # noqa: F811
                                                           tmp_path):
    """The two failures of the review, for real: another process holds SQLite's write lock
    past the busy timeout while the worker queues a file, and a symlink loop sits in the
    inbox. The worker logs and counts the failure, then runs the forecast once the lock is
    released; the loop is never followed."""
    terrain_dir, _ = salvadoran_terrain
    settings = Settings(data_dir=tmp_path / "data", terrain_dir=terrain_dir, admin_key=ADMIN)
    app = create_app(settings)
    settings.inbox_dir.mkdir(parents=True)
    os.symlink(settings.inbox_dir / "loop.nc", settings.inbox_dir / "loop.nc")  # ELOOP
    with TestClient(app, headers={"X-API-Key": ADMIN}) as client:
        worker = app.state.service.worker
        worker.poll_s = 0.2
        holder = sqlite3.connect(settings.data_dir / "floodwarn.sqlite", timeout=1)
        holder.execute("BEGIN EXCLUSIVE")  # a writer that does not let go for 7 s
        _rain(tmp_path / "storm.nc")
        (tmp_path / "storm.nc").rename(settings.inbox_dir / "storm.nc")
        os.utime(settings.inbox_dir / "storm.nc", (time.time() - 60, time.time() - 60))
        _wait(lambda: worker.health.errors["scan_inbox"] + worker.health.errors["recover"],
              30, "a failure caused by the lock")
        time.sleep(1)
        holder.rollback()
        holder.close()
        runs = _wait(lambda: [r for r in client.get("/runs").json()
                              if r["status"] in ("succeeded", "failed")], 120, "the run")
        assert runs[0]["status"] == "succeeded", runs[0]["error"]
        assert [r["rain_file"] for r in client.get("/runs").json()] == ["storm.nc"]
        assert worker.alive
        health = client.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        metrics = client.get("/metrics").text
        assert "floodwarn_worker_alive 1.0" in metrics
        failures = sum(float(line.split()[-1]) for line in metrics.splitlines()
                       if line.startswith("floodwarn_worker_errors{"))
        assert failures >= 1
        assert "database is locked" in worker.health.last_error


def test_an_exception_in_every_stage_is_caught_and_counted(tmp_path, monkeypatch):
    import api.worker as worker_module

    calls = {"scan": 0}

    def failing_scan(*_args, **_kwargs):
        calls["scan"] += 1
        raise KeyError("a bug in the scanner")

    monkeypatch.setattr(worker_module, "scan_inbox", failing_scan)
    monkeypatch.setattr(worker_module.Worker, "BACKOFF_S", (0.05, 0.1))
    settings = Settings(data_dir=tmp_path / "data", run_worker=False)
    app = create_app(settings)
    worker = Worker(app.state.sessions, settings, poll_s=0.05)
    worker.start()
    try:
        _wait(lambda: calls["scan"] >= 3, 10, "three failing scans")
        assert worker.alive and worker.health.errors["scan_inbox"] >= 3
        assert "KeyError" in worker.health.last_error
    finally:
        worker.stop()


def test_health_is_503_when_the_worker_is_dead_or_stalled(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", run_worker=False, worker_stall_s=60)
    app = create_app(settings)
    client = TestClient(app)
    assert client.get("/health").json()["worker"] == "disabled"
    # A worker whose thread is not running (it died): unhealthy, with why.
    app.state.service.worker = Worker(app.state.sessions, settings)
    answer = client.get("/health")
    assert answer.status_code == 503
    assert answer.json()["status"] == "unhealthy"
    assert "the worker thread has stopped" in answer.json()["problems"][0]
    # A live worker that has shown no sign of life for longer than the stall limit.
    stalled = Worker(app.state.sessions, settings)
    stalled.start()
    try:
        _wait(lambda: stalled.health.doing == "waiting for work", 60, "worker idle")
        app.state.service.worker = stalled
        assert client.get("/health").status_code == 200
        stalled.health.heartbeat -= 61  # as if a step had hung for a minute
        answer = client.get("/health")
        assert answer.status_code == 503
        assert "no progress for 6" in answer.json()["problems"][0]
    finally:
        stalled.stop()


def test_runs_left_running_by_a_crash_are_requeued_then_failed(tmp_path):
    app = create_app(Settings(data_dir=tmp_path / "data", run_worker=False))
    sessions = app.state.sessions
    now = datetime.now(UTC)
    with sessions.begin() as session:
        session.add_all([
            Run(id=1, status="running", rain_path="a.nc", created_at=now, worker="dead",
                lease_until=now - timedelta(seconds=1), attempts=1),
            Run(id=2, status="running", rain_path="b.nc", created_at=now, worker="alive",
                lease_until=now + timedelta(seconds=30), attempts=1),
            Run(id=3, status="running", rain_path="c.nc", created_at=now, worker="dead",
                lease_until=now - timedelta(seconds=1), attempts=MAX_RUN_ATTEMPTS),
            Run(id=4, status="running", rain_path="d.nc", created_at=now, attempts=0),
        ])
    assert recover_abandoned(sessions, now=now) == {"requeued": [1, 4], "failed": [3]}
    with sessions() as session:
        statuses = {r.id: (r.status, r.worker) for r in session.query(Run)}
        failed = session.get(Run, 3)
        assert failed is not None and "interrupted 3 times" in str(failed.error)
    assert statuses == {1: ("queued", None), 2: ("running", "alive"), 3: ("failed", "dead"),
                        4: ("queued", None)}
    assert recover_abandoned(sessions, now=now) == {"requeued": [], "failed": []}


def _execute_in_thread(sessions, settings, tmp_path, forecast):
    """A queued run (1) executed by the worker's code on a thread, with ``forecast`` as the
    runner."""
    import api.worker as worker_module

    with sessions.begin() as session:
        session.add(Run(id=1, status="queued", rain_path=str(tmp_path / "x.nc"),
                        created_at=datetime.now(UTC),
                        request={"terrain_dir": str(tmp_path), "rain_path": "x.nc"}))
    runner = threading.Thread(target=worker_module.execute_next, args=(sessions, settings),
                              kwargs={"runner": forecast})
    runner.start()
    return runner


def test_a_lease_is_renewed_while_a_long_step_works(tmp_path):
    """A run whose step takes longer than the lease stays its worker's: the lease keeper
    renews it from its own thread."""

    settings = Settings(data_dir=tmp_path / "data", run_worker=False, run_lease_s=2)
    app = create_app(settings)
    sessions = app.state.sessions
    release = threading.Event()

    def slow_forecast(request, out_dir, cache_dir, progress, execution):
        release.wait(10)
        raise RuntimeError("stopped on purpose")

    runner = _execute_in_thread(sessions, settings, tmp_path, slow_forecast)
    time.sleep(5)  # more than two leases
    assert recover_abandoned(sessions, now=datetime.now(UTC)) == {"requeued": [],
                                                                  "failed": []}
    release.set()
    runner.join(10)
    with sessions() as session:
        run = session.get(Run, 1)
        assert run is not None and run.status == "failed"
        assert run.error == "RuntimeError: stopped on purpose"


def test_a_dead_process_of_this_host_is_recognised_at_once():
    """After a restart the worker need not wait for the lease: a run held by a process of
    this host that no longer exists, or by an earlier life of this very process id, is taken
    back at once; another host's or a live process's run is left to its lease."""
    import socket
    import subprocess
    import sys

    from api.worker import new_worker_id, worker_is_dead

    host = socket.gethostname()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    assert worker_is_dead(f"{host}:{gone.stdout.strip()}:abcd")
    assert worker_is_dead(f"{host}:{os.getpid()}:previous-life")
    assert not worker_is_dead(f"{host}:1:abcd")  # alive (init)
    assert not worker_is_dead(f"another-host:{gone.stdout.strip()}:abcd")
    assert not worker_is_dead("w-legacy")
    assert new_worker_id().startswith(f"{host}:{os.getpid()}:")


def test_a_forecast_process_that_dies_is_reported_and_replaced():
    """The child executing a forecast is killed (as the kernel's OOM killer would): the call
    fails with the reason, and the next call gets a fresh child."""
    import signal

    import pytest

    from api.runner import ForecastProcess, ForecastProcessDiedError

    process = ForecastProcess()
    try:
        first = process.call(os.getpid, what="a test")
        assert first != os.getpid()
        threading.Timer(1.0, lambda: os.kill(first, signal.SIGKILL)).start()
        with pytest.raises(ForecastProcessDiedError, match="ended abruptly"):
            process.call(time.sleep, 30, what="forecast")
        assert process.call(os.getpid, what="a test") not in (first, os.getpid())
    finally:
        process.close()


def test_a_running_ensemble_shows_members_done_and_the_time_left(tmp_path):
    """The run's status carries the members done of the total and the estimate of the time
    left, as the forecast reports them."""
    from floodwarn.ensemble import MemberProgress

    settings = Settings(data_dir=tmp_path / "data", run_worker=False, run_lease_s=2)
    sessions = create_app(settings).state.sessions
    reported, release = threading.Event(), threading.Event()

    def ensemble_forecast(request, out_dir, cache_dir, progress, execution):
        progress.step("simulate")
        progress.members(MemberProgress(0, 51, 0.0, None))
        progress.members(MemberProgress(51, 51, 20.0, 0.0))  # the last is always stored
        progress.members(MemberProgress(12, 51, 5.0, 16.25))  # stored once two seconds pass
        reported.set()
        release.wait(10)
        raise RuntimeError("stopped on purpose")

    runner = _execute_in_thread(sessions, settings, tmp_path, ensemble_forecast)
    try:
        assert reported.wait(10)
        with sessions() as session:
            progress = session.get(Run, 1).progress
        assert progress["step"] == "simulate"
        assert (progress["members_done"], progress["members_total"]) == (51, 51)
        assert progress["eta_s"] == 0.0
        time.sleep(2.5)  # the lease keeper's next renewals store the latest count
        with sessions() as session:
            progress = session.get(Run, 1).progress
        assert (progress["members_done"], progress["eta_s"]) == (12, 16.2)
    finally:
        release.set()
        runner.join(10)
