"""The FastAPI application: ``create_app(settings)`` assembles the store, the caches, the
supervised worker and the routers (runs, alerts, subscriptions, keys, operations, map tiles)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI

from api.centres import CentresView
from api.deps import Service
from api.errors import install_error_handlers
from api.readcache import ReadCache
from api.routers import (
    alerts,
    docs,
    keys,
    ogc,
    ops,
    planning,
    reaches,
    runs,
    sharing,
    sites,
    subscriptions,
    tiles,
    web,
)
from api.settings import Settings
from api.store.access import ensure_bootstrap_key, seal_clear_secrets
from api.store.db import open_store
from api.store.sites import import_sites, site_count
from api.worker import Worker
from floodwarn import __version__
from floodwarn.logs import get_logger
from floodwarn.sites.profiles import default_site_profiles

log = get_logger(__name__)


def create_app(settings: Settings, *,
               clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> FastAPI:
    """The API over the store named by ``settings`` (migrated on start); with
    ``settings.run_worker`` a supervised background worker executes queued runs, watches the
    inbox and sends webhooks.

    ``clock`` tells which alerts have expired (replayed storms in tests and exercises set it).
    Misconfiguration (signing key, secret key) stops the start, not the first run.
    """
    settings.cap_signer()
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    box = settings.secret_box()
    engine, sessions = open_store(settings.store_url)
    with sessions.begin() as session:
        if settings.admin_key:  # bootstrap: the configured admin key works until revoked
            ensure_bootstrap_key(session, settings.admin_key, now=datetime.now(UTC))
        if sealed := seal_clear_secrets(session, box):
            log.warning("webhook secrets stored in clear were sealed", extra={"count": sealed})
        if not site_count(session):  # first start: the shipped sites, marked as estimates
            import_sites(session, default_site_profiles(), actor="floodwarn",
                         filename="gis_data (estimates)", now=datetime.now(UTC))
    worker = Worker(sessions, settings) if settings.run_worker else None
    service = Service(settings=settings, engine=engine, sessions=sessions,
                      read_cache=ReadCache(sessions, clock), secret_box=box, clock=clock,
                      worker=worker, centres=CentresView(sessions))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if worker is not None:
            worker.start()
        yield
        if worker is not None:
            worker.stop()

    # docs_url/redoc_url None: FastAPI's pages load their scripts from a CDN; api.routers.docs
    # serves them from the package so the docs work offline.
    app = FastAPI(title="floodwarn", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description="Flood warnings for El Salvador: runs, settlements, CAP alerts, "
                              "Atom feed / alertas de inundación para El Salvador. Every error "
                              "answers {error, detail} (and problems for malformed requests).")
    app.state.service = service
    # Kept for scripts and tests that reach the store directly.
    app.state.settings, app.state.sessions, app.state.engine = settings, sessions, engine
    install_error_handlers(app)
    # Tiles first: a map asks for dozens at once, and routes are matched in order.
    for router in (tiles.router, runs.router, alerts.router, subscriptions.router, keys.router,
                   ops.router, docs.router, reaches.router, planning.router, sites.router,
                   sharing.router, ogc.router, web.router):
        app.include_router(router)
    return app
