"""Operations: health (for load balancers and supervisors) and Prometheus metrics."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import ServiceDep
from api.errors import COMMON_RESPONSES, ErrorBody
from api.readcache import in_force_with_latest
from api.store.access import delivery_counts
from api.store.runs import latest_run_status, run_counts
from floodwarn import __version__

router = APIRouter(tags=["operations"], responses={
    500: COMMON_RESPONSES[500]})


class Health(BaseModel):
    status: Literal["ok", "unhealthy"]
    version: str
    last_run: str | None
    worker: str  # running | stopped | disabled, with what it is doing
    problems: list[str]


@router.get("/health", response_model=Health,
            responses={503: {"model": Health, "description": "The service cannot do its job: "
                             "the worker is dead or stalled, or the store is unreachable"}})
def health(service: ServiceDep) -> Response:
    """``ok`` only when the store answers and the worker (when enabled) is alive and making
    progress; otherwise 503 with the reasons, so that a supervisor restarts the service."""
    problems: list[str] = []
    last_run = None
    try:
        with service.sessions() as session:
            last_run = latest_run_status(session)
    except Exception as exc:
        problems.append(f"the store does not answer: {type(exc).__name__}")
    worker = service.worker
    if worker is None:
        state = "disabled"
    else:
        problems += worker.problems()
        state = f"{'running' if worker.alive else 'stopped'}: {worker.health.doing}"
    body = Health(status="unhealthy" if problems else "ok", version=__version__,
                  last_run=last_run, worker=state, problems=problems)
    return JSONResponse(body.model_dump(), status_code=503 if problems else 200)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "Prometheus text format"},
                       503: {"model": ErrorBody, "description": "The store does not answer"}})
def metrics(service: ServiceDep) -> Response:
    """Prometheus metrics: runs by status, alerts in force, deliveries by status, worker
    errors by stage, runs recovered after a crash, seconds since the worker's heartbeat."""
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    registry = CollectorRegistry()
    runs = Gauge("floodwarn_runs", "Forecast runs by status", ["status"], registry=registry)
    alerts = Gauge("floodwarn_alerts_in_force", "Alerts in force", registry=registry)
    deliveries = Gauge("floodwarn_deliveries", "Webhook deliveries by status", ["status"],
                       registry=registry)
    with service.sessions() as session:
        for status, count in run_counts(session).items():
            runs.labels(status).set(count)
        alerts.set(len(in_force_with_latest(session, service.clock())))
        for status, count in delivery_counts(session).items():
            deliveries.labels(status).set(count)
    if service.worker is not None:
        health = service.worker.health
        errors = Gauge("floodwarn_worker_errors", "Exceptions caught by the worker since "
                       "start, by stage", ["stage"], registry=registry)
        for stage in ("recover", "prepare", "scan_inbox", "run", "deliver"):
            errors.labels(stage).set(health.errors[stage])
        Gauge("floodwarn_worker_alive", "1 while the worker thread runs",
              registry=registry).set(int(service.worker.alive))
        Gauge("floodwarn_worker_heartbeat_age_seconds", "Seconds since the worker last showed "
              "progress", registry=registry).set(service.worker.heartbeat_age())
        Gauge("floodwarn_runs_recovered", "Runs taken back from a dead worker since start",
              registry=registry).set(health.runs_recovered)
    return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")
