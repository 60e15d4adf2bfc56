"""The FastAPI application: ``create_app(settings)``."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import geopandas as gpd
import pandas as pd
from fastapi import Depends, FastAPI, Header, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import func, select

from api.auth import (
    KEY_HEADER,
    Caller,
    ForbiddenError,
    UnauthorizedError,
    authenticate,
    create_api_key,
    hash_key,
)
from api.readcache import ReadCache, in_force_with_latest
from api.settings import Settings
from api.store.db import open_store
from api.store.models import (
    Alert,
    AlertVersion,
    ApiKey,
    AuditEntry,
    Delivery,
    DeliveryAttempt,
    Run,
    Subscription,
)
from api.worker import RAIN_SUFFIXES, Worker, inbox_name, queue_run
from floodwarn import __version__
from floodwarn.alerts.atom import FeedEntry, atom_feed
from floodwarn.errors import DataFileError, FloodwarnError, InputError
from floodwarn.io.forecast_outputs import (
    CENTRES_FILE,
    DEPTH_FILE,
    EVACUATION_FILE,
    SETTLEMENTS_FILE,
    SUMMARY_FILE,
)
from floodwarn.io.gis_data import load_municipalities, place_key
from floodwarn.io.rainfall import read_rainfall
from floodwarn.parameters import LEVELS

#: One table from floodwarn's errors to HTTP answers (most specific first); anything else is a
#: 500.
ERROR_STATUS: dict[type[Exception], int] = {UnauthorizedError: 401, ForbiddenError: 403,
                                            InputError: 422, DataFileError: 400,
                                            FloodwarnError: 400, LookupError: 404}


#: Seconds a verified key is trusted without asking the store again (a revoked key stops
#: working within this time).
KEY_CACHE_S = 30.0


async def _caller(request: Request,
                  api_key: Annotated[str | None, Header(alias=KEY_HEADER)] = None) -> Caller:
    """The caller behind the request's API key (401 without a valid one).

    Async, so that a cached key costs no hop to the thread pool.
    """
    cache: dict[str, tuple[float, Caller]] = request.app.state.key_cache
    now = time.monotonic()
    if api_key and (hit := cache.get(api_key)) is not None and now - hit[0] < KEY_CACHE_S:
        return hit[1]
    with request.app.state.sessions() as session:
        who = authenticate(session, api_key)
    cache[str(api_key)] = (now, who)
    return who


CallerDep = Annotated[Caller, Depends(_caller)]
#: Run ids are positive and fit the store's integer column (larger ones are simply not found).
RunId = Annotated[int, PathParam(ge=1, le=2**31 - 1, description="Run id")]


class AlertInForce(BaseModel):
    """An alert in force: its municipality, level and latest CAP message."""

    municipality_id: str
    level: str
    identifier: str
    msg_type: str
    sent: datetime
    expires: datetime | None
    cap_url: str


class SubscriptionRequest(BaseModel):
    municipality_id: str
    url: str
    secret: str


class KeyRequest(BaseModel):
    role: str
    name: str
    municipality_id: str | None = None


class RunRequest(BaseModel):
    """A run of a forecast file already in the service's inbox folder, with the initial
    levels of reservoirs and lakes DGPC got from CEL (m a.s.l. by id of
    ``models/reservoirs.yaml``; the others start at their normal level for the month)."""

    inbox_file: str
    reservoir_levels: dict[str, float] | None = None


def create_app(settings: Settings, *,
               clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> FastAPI:
    """The API over the store named by ``settings`` (migrated on start); with
    ``settings.run_worker`` a background worker executes queued runs and watches the inbox.

    ``clock`` tells which alerts have expired (replayed storms in tests and exercises set it).
    """
    settings.cap_signer()  # a misconfigured signing key stops the start, not the first run
    engine, sessions = open_store(settings.store_url)
    worker = Worker(sessions, settings, settings.terrain, inbox=settings.inbox_dir) \
        if settings.run_worker else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if worker is not None:
            worker.start()
        yield
        if worker is not None:
            worker.stop()

    app = FastAPI(title="floodwarn", version=__version__, lifespan=lifespan,
                  description="Flood warnings for El Salvador: runs, settlements, CAP alerts, "
                              "Atom feed / alertas de inundación para El Salvador.")
    app.state.settings = settings
    app.state.sessions = sessions
    app.state.key_cache = {}
    read_cache = ReadCache(sessions, clock)
    if settings.admin_key:  # bootstrap: the configured admin key always works
        with sessions.begin() as session:
            if session.scalars(select(ApiKey).where(
                    ApiKey.key_hash == hash_key(settings.admin_key))).one_or_none() is None:
                session.add(ApiKey(key_hash=hash_key(settings.admin_key), role="admin",
                                   municipality_id=None, name="bootstrap admin",
                                   created_at=datetime.now(UTC), revoked=False))

    async def _errors(_request: Request, exc: Exception) -> JSONResponse:
        status = next(code for kind, code in ERROR_STATUS.items() if isinstance(exc, kind))
        return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=status)

    for kind in ERROR_STATUS:
        app.add_exception_handler(kind, _errors)

    async def _invalid_request(_request: Request, exc: Exception) -> JSONResponse:
        """Malformed requests answer in the same shape as every other error, with each
        problem's place ('query.level', 'body.secret') and reason."""
        assert isinstance(exc, RequestValidationError)
        problems = [f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}"
                    for e in exc.errors()]
        return JSONResponse({"error": "InvalidRequest", "detail": "; ".join(problems)},
                            status_code=422)

    app.add_exception_handler(RequestValidationError, _invalid_request)

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus metrics: runs by status, alerts in force, deliveries by status."""
        from prometheus_client import CollectorRegistry, Gauge, generate_latest

        registry = CollectorRegistry()
        runs = Gauge("floodwarn_runs", "Forecast runs by status", ["status"], registry=registry)
        alerts = Gauge("floodwarn_alerts_in_force", "Alerts in force", registry=registry)
        deliveries = Gauge("floodwarn_deliveries", "Webhook deliveries by status", ["status"],
                           registry=registry)
        with sessions() as session:
            for status, count in session.execute(
                    select(Run.status, func.count()).group_by(Run.status)):
                runs.labels(status).set(count)
            alerts.set(len(in_force_with_latest(session, clock())))
            for status, count in session.execute(
                    select(Delivery.status, func.count()).group_by(Delivery.status)):
                deliveries.labels(status).set(count)
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")

    @app.get("/health")
    def health() -> dict[str, object]:
        with sessions() as session:
            runs = session.scalars(select(Run).order_by(Run.id.desc()).limit(1)).all()
        return {"status": "ok", "version": __version__,
                "last_run": runs[0].status if runs else None}

    def known_municipality(municipality_id: str | None) -> None:
        """Refuse a municipality id that is not one of the 262 (a committee keyed to a typo
        would never receive its alerts)."""
        if municipality_id is None:
            return
        municipalities = load_municipalities()
        if municipality_id not in set(municipalities["id"]):
            key = place_key(municipality_id)
            named = municipalities.loc[(municipalities["name"].map(place_key) == key)
                                       | (municipalities["boundary_name"].map(place_key) == key)]
            ids = ", ".join(f"{m.id} ({m.name}, {m.department})" for m in named.itertuples())
            hint = f"; {municipality_id!r} is a name, its id is {ids}" if len(named) else ""
            raise InputError(f"unknown municipality id {municipality_id!r}: use a geoBoundaries "
                             f"ADM2 id such as SLV-ADM2-79315794B8480972{hint}.")

    @app.post("/keys", status_code=201)
    def create_key(who: CallerDep, request: KeyRequest) -> dict[str, str]:
        """A new API key (admin); shown once."""
        who.require("admin")
        known_municipality(request.municipality_id)
        try:
            with sessions.begin() as session:
                key = create_api_key(session, role=request.role, name=request.name,
                                     municipality_id=request.municipality_id,
                                     now=datetime.now(UTC))
        except ValueError as exc:
            raise InputError(str(exc)) from exc
        return {"key": key, "role": request.role}

    @app.post("/subscriptions", status_code=201)
    def subscribe(who: CallerDep, request: SubscriptionRequest) -> dict[str, object]:
        """A committee's webhook (its own municipality) or any (admin)."""
        who.require("admin", "committee")
        if not who.may_see(request.municipality_id):
            raise ForbiddenError("a committee manages only its own municipality's subscription.")
        known_municipality(request.municipality_id)
        if not request.url.startswith(("http://", "https://")) or len(request.secret) < 16:
            raise InputError("a subscription needs an http(s) URL and a secret of at least 16 "
                             "characters.")
        with sessions.begin() as session:
            sub = Subscription(municipality_id=request.municipality_id, url=request.url,
                               secret=request.secret, created_at=datetime.now(UTC))
            session.add(sub)
            session.flush()
            session.add(AuditEntry(at=datetime.now(UTC), actor=who.name, action="subscribe",
                                   detail={"subscription_id": sub.id,
                                           "municipality_id": request.municipality_id}))
            return {"id": sub.id, "municipality_id": sub.municipality_id, "url": sub.url}

    @app.get("/subscriptions")
    def subscriptions(who: CallerDep) -> list[dict[str, object]]:
        who.require("admin", "committee")
        with sessions() as session:
            rows = session.scalars(select(Subscription).order_by(Subscription.id)).all()
            return [{"id": s.id, "municipality_id": s.municipality_id, "url": s.url}
                    for s in rows if who.may_see(s.municipality_id)]

    @app.post("/runs", status_code=202)
    def create_run(who: CallerDep, request: RunRequest) -> dict[str, object]:
        """Queue a run of a forecast file in the inbox; the worker executes it."""
        who.require("analyst", "admin")
        name = Path(request.inbox_file).name
        path = settings.inbox_dir / name
        if name != request.inbox_file or not path.is_file():
            raise InputError(f"no file {request.inbox_file!r} in the inbox "
                             f"({settings.inbox_dir}); put the forecast there first.")
        with sessions.begin() as session:
            run = queue_run(session, path, actor="api", now=datetime.now(UTC),
                            reservoir_levels=request.reservoir_levels)
            return _run_json(run)

    @app.post("/runs/upload", status_code=202)
    def upload_run(who: CallerDep, forecast: UploadFile) -> dict[str, object]:
        """Upload a forecast file (NetCDF or GRIB) and queue its run. The file is checked
        (size, format, variables, units, times) before anything is stored; a refused upload
        leaves the inbox and the store unchanged."""
        who.require("analyst", "admin")
        name = Path(forecast.filename or "").name
        if not name or Path(name).suffix.lower() not in RAIN_SUFFIXES:
            raise InputError(f"upload {forecast.filename!r}: expected a forecast file named "
                             f"*{', *'.join(RAIN_SUFFIXES)}.")
        limit = int(settings.max_upload_mb * 1024 * 1024)
        # Staged outside the inbox (which the worker scans) until it has passed the checks.
        staging = settings.data_dir / "uploads"
        staging.mkdir(parents=True, exist_ok=True)
        staged = staging / inbox_name(name, datetime.now(UTC))
        size = 0
        try:
            with staged.open("wb") as out:
                while chunk := forecast.file.read(1 << 20):
                    size += len(chunk)
                    if size > limit:
                        raise InputError(f"upload {name!r} is larger than the "
                                         f"{settings.max_upload_mb:g} MB limit.")
                    out.write(chunk)
            read_rainfall(staged)  # refuses what a run would refuse, with the reason
        except Exception:
            staged.unlink(missing_ok=True)
            raise
        settings.inbox_dir.mkdir(parents=True, exist_ok=True)
        target = settings.inbox_dir / staged.name
        staged.replace(target)
        with sessions.begin() as session:
            run = queue_run(session, target, actor=who.name, now=datetime.now(UTC))
            return _run_json(run)

    @app.get("/runs")
    def list_runs(who: CallerDep) -> list[dict[str, object]]:
        who.require("analyst", "admin")
        with sessions() as session:
            return [_run_json(r) for r in session.scalars(select(Run).order_by(Run.id.desc()))]

    @app.get("/runs/{run_id}")
    def get_run(who: CallerDep, run_id: RunId) -> dict[str, object]:
        who.require("analyst", "admin")
        with sessions() as session:
            run = session.get(Run, run_id)
            if run is None:
                raise LookupError(f"no run {run_id}")
            return _run_json(run)

    @app.get("/runs/{run_id}/settlements")
    async def run_settlements(who: CallerDep, run_id: RunId, level: str | None = None,
                              municipality: str | None = None, department: str | None = None
                              ) -> Response:
        """The run's settlements as GeoJSON, filtered by level, municipality id, department;
        a committee sees only its own municipality."""
        if who.role == "committee":
            if municipality not in (None, who.municipality_id):
                raise ForbiddenError("a committee reads only its own municipality.")
            municipality = who.municipality_id
        if level is not None and level not in LEVELS:
            raise InputError(f"level {level!r} unknown; use one of {list(LEVELS)}.")
        body = read_cache.settlements(run_id).geojson(level=level, municipality=municipality,
                                                      department=department)
        return Response(body, media_type="application/geo+json")

    def run_output(run_id: int, name: str) -> Path:
        """A file of a succeeded run."""
        with sessions() as session:
            run = session.get(Run, run_id)
            if run is None:
                raise LookupError(f"no run {run_id}")
            if run.status != "succeeded" or run.out_dir is None:
                raise LookupError(f"run {run_id} has no outputs (status {run.status}).")
        path = Path(run.out_dir) / name
        if not path.exists():
            raise LookupError(f"run {run_id} has no {name} (no settlements in its domain).")
        return path

    @app.get("/runs/{run_id}/centres")
    def run_centres(who: CallerDep, run_id: RunId) -> Response:
        """Collective centres with status (safe / at_risk / unsafe) and occupancy, GeoJSON."""
        centres = gpd.read_file(run_output(run_id, CENTRES_FILE))
        if who.role == "committee":
            centres = centres[centres["municipality_id"] == who.municipality_id]
        return Response(centres.to_json(drop_id=True), media_type="application/geo+json")

    @app.get("/runs/{run_id}/evacuation")
    def run_evacuation(who: CallerDep, run_id: RunId) -> list[dict[str, object]]:
        """The evacuation plan: settlement → centre flows; unmet demand has no centre."""
        plan = pd.read_csv(run_output(run_id, EVACUATION_FILE), dtype={"centre_id": str},
                           keep_default_na=False)
        if who.role == "committee":
            towns = gpd.read_file(run_output(run_id, SETTLEMENTS_FILE))
            own = set(towns.loc[towns["municipality_id"] == who.municipality_id, "id"])
            plan = plan[plan["settlement_id"].isin(own)]
        return [{"settlement_id": int(r.settlement_id), "centre_id": r.centre_id or None,
                 "people": int(r.people),
                 "distance_km": None if r.distance_km == "" else float(r.distance_km)}
                for r in plan.itertuples()]

    @app.get("/runs/{run_id}/summary")
    def run_summary(who: CallerDep, run_id: RunId) -> dict[str, object]:
        """Per municipality (keyed by id) and department (keyed by ISO code): people exposed
        by level, centres unsafe, unmet evacuation demand (a committee: its own municipality
        by id — never a namesake's figures)."""
        summary = json.loads(run_output(run_id, SUMMARY_FILE).read_text())
        if who.role == "committee":
            own = summary["by_municipality"].get(who.municipality_id)
            return {"by_municipality": {} if own is None else {who.municipality_id: own}}
        return dict(summary)

    @app.get("/runs/{run_id}/depth.tif")
    def run_depth(who: CallerDep, run_id: RunId) -> FileResponse:
        """The flood depth raster (Cloud Optimized GeoTIFF)."""
        who.require("analyst", "admin")
        return FileResponse(run_output(run_id, DEPTH_FILE), media_type="image/tiff",
                            filename=f"floodwarn_run{run_id}_depth.tif")

    @app.get("/alerts", response_model=list[AlertInForce])
    async def alerts_in_force(who: CallerDep) -> Response:
        """Alerts in force, one per municipality (a committee: its own), with their latest
        CAP message."""
        visible = None if who.role in ("analyst", "admin") else {str(who.municipality_id)}
        return Response(read_cache.alerts_in_force().json_for(visible),
                        media_type="application/json")

    @app.get("/alerts/feed.atom")
    def feed(request: Request) -> Response:
        """Atom feed of the alerts in force (public)."""
        entries = []
        with sessions() as session:
            for alert, last in in_force_with_latest(session, clock()):
                entries.append(FeedEntry(
                    identifier=last.identifier, title=_headline(last.cap_xml),
                    summary=f"{alert.level}: {alert.municipality_id}", updated=last.sent,
                    cap_url=str(request.url_for("cap_message", identifier=last.identifier)),
                    area=alert.municipality_id))
        body = atom_feed(entries, feed_id="urn:floodwarn:alerts",
                         self_url=str(request.url), title="floodwarn — alertas de inundación",
                         updated=max((e.updated for e in entries),
                                     default=clock()))
        return Response(body, media_type="application/atom+xml")

    @app.get("/alerts/{identifier}/deliveries")
    def delivery_log(who: CallerDep, identifier: str) -> list[dict[str, object]]:
        """The delivery log of the alert that CAP message ``identifier`` belongs to: every
        message of the alert, every subscription it went to, every attempt and its outcome (a
        committee: its own municipality's alerts)."""
        with sessions() as session:
            version = session.scalars(select(AlertVersion).where(
                AlertVersion.identifier == identifier)).one_or_none()
            if version is None:
                raise LookupError(f"no CAP message {identifier!r}")
            alert = session.get_one(Alert, version.alert_id)
            if not who.may_see(alert.municipality_id):
                raise ForbiddenError("a committee reads only its own municipality's alerts.")
            rows = session.execute(
                select(AlertVersion, Delivery, Subscription)
                .join(Delivery, Delivery.alert_version_id == AlertVersion.id)
                .join(Subscription, Subscription.id == Delivery.subscription_id)
                .where(AlertVersion.alert_id == alert.id)
                .order_by(AlertVersion.id, Delivery.id)).all()
            attempts: dict[int, list[dict[str, object]]] = {}
            for attempt in session.scalars(
                    select(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(
                        [d.id for _, d, _ in rows])).order_by(DeliveryAttempt.id)):
                attempts.setdefault(attempt.delivery_id, []).append(
                    {"at": attempt.at.isoformat(), "outcome": attempt.outcome,
                     "detail": attempt.detail})
            return [{"identifier": v.identifier, "msg_type": v.msg_type,
                     "subscription_id": sub.id, "url": sub.url, "status": d.status,
                     "attempts": attempts.get(d.id, []),
                     "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
                     "next_attempt_at": None if d.status != "pending"
                     else d.next_attempt_at.isoformat()}
                    for v, d, sub in rows]

    @app.get("/alerts/{identifier}.xml", name="cap_message")
    def cap(identifier: str) -> Response:
        """One CAP 1.2 message, as sent."""
        with sessions() as session:
            version = session.scalars(select(AlertVersion).where(
                AlertVersion.identifier == identifier)).one_or_none()
        if version is None:
            raise LookupError(f"no CAP message {identifier!r}")
        return Response(version.cap_xml, media_type="application/cap+xml")

    app.state.engine = engine
    return app


def _run_json(run: Run) -> dict[str, object]:
    return {"id": run.id, "status": run.status, "rain_path": Path(run.rain_path).name,
            "created_at": run.created_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "error": run.error, "synthetic": run.synthetic, "summary": run.summary,
            "options": run.options}


def _headline(cap_xml: str) -> str:
    from lxml import etree

    from floodwarn.alerts.cap import CAP_NS

    doc = etree.fromstring(cap_xml.encode("utf-8"))
    return doc.findtext(f"{{{CAP_NS}}}info/{{{CAP_NS}}}headline") or ""
