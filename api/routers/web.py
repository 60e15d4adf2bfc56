"""The analysts' map: the page at ``/``, its scripts and libraries under ``/static/``, and the
public layers it draws before any key is given (boundaries, the alerts in force)."""

from __future__ import annotations

import mimetypes
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from api.deps import PLACES, CallerDep, ServiceDep, municipalities_table
from api.errors import COMMON_RESPONSES
from api.payload import Payload, display_geojson
from floodwarn.errors import NotFoundError
from floodwarn.io.gis_data import load_countries, load_departments

router = APIRouter(tags=["map"], responses=COMMON_RESPONSES)

STATIC_DIR = Path(str(resources.files("api.web") / "static"))
#: Libraries are re-vendored only with a new release of the package: a day's reuse is safe.
VENDOR_CACHE = "public, max-age=86400"
#: The page's own files change with the service: revalidated every time (a 304 costs little).
PAGE_CACHE = "no-cache"

TEXT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
              ".html": "text/html; charset=utf-8", ".json": "application/json",
              ".svg": "image/svg+xml", ".md": "text/plain; charset=utf-8",
              ".txt": "text/plain; charset=utf-8"}


@cache
def _static_payload(relative: str) -> Payload:
    """A file under ``static/`` read and compressed once (the package's files do not change
    while it runs)."""
    path = (STATIC_DIR / relative).resolve()
    if not path.is_relative_to(STATIC_DIR.resolve()) or not path.is_file():
        raise NotFoundError(f"no file {relative!r} among the map's assets.")
    media = TEXT_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] \
        or "application/octet-stream"
    return Payload.of(path.read_bytes(), media)


@router.get("/", include_in_schema=False)
def map_page(request: Request) -> Response:
    """The map page (Spanish first, English switch)."""
    return _static_payload("index.html").response(request, cache_control=PAGE_CACHE)


@router.get("/static/{relative:path}", include_in_schema=False)
def static_file(request: Request, relative: str) -> Response:
    """The page's scripts and styles, and the vendored libraries with their licences."""
    cache_control = VENDOR_CACHE if relative.startswith("vendor/") else PAGE_CACHE
    return _static_payload(relative).response(request, cache_control=cache_control)


BoundaryLevel = Literal["country", "departments", "municipalities"]


@cache
def _boundaries(level: BoundaryLevel) -> Payload:
    if level == "municipalities":
        body = display_geojson(municipalities_table(),
                                ["id", "name", "department", "department_code"])
    elif level == "departments":
        body = display_geojson(load_departments(), ["code", "name"])
    else:
        countries = load_countries()
        countries = countries.assign(el_salvador=countries["iso_a2"] == "SV")
        body = display_geojson(countries, ["name", "iso_a2", "el_salvador"])
    return Payload.of(body, "application/geo+json")


@router.get("/map/boundaries/{level}.geojson", response_class=Response, responses={
    200: {"content": {"application/geo+json": {"schema": {"type": "object"}}},
          "description": "Boundaries, simplified for display (public)"}})
def boundaries(request: Request,
               level: Annotated[BoundaryLevel, PathParam(description="Which boundaries")]
               ) -> Response:
    """The base map (public): Central American countries, El Salvador's 14 departments or
    262 municipalities (id, official name, department), simplified to ≈ 55 m for display."""
    return _boundaries(level).response(request, cache_control=VENDOR_CACHE)


class PublicAlert(BaseModel):
    """An alert in force as anyone may read it (the CAP message and the feed are public)."""

    municipality_id: str
    municipality: str
    department: str
    level: str
    headline: str
    instruction: str = Field(description="What to do (the CAP instruction, Spanish)")
    onset: str | None = Field(description="When the flooding is expected to start")
    identifier: str
    msg_type: str
    sent: str
    expires: str | None
    cap_url: str


class PublicAlerts(BaseModel):
    version: int
    exercise: bool
    alerts: list[PublicAlert]


@router.get("/map/alerts", response_model=PublicAlerts)
async def public_alerts(service: ServiceDep) -> dict[str, Any]:
    """The alerts in force with official place names and headlines (public, as the Atom feed
    is): what the map shows before a key is given. ``version`` changes with every publication,
    so a page polls it to know when to reload; ``exercise`` when any headline is a drill."""
    alerts = service.read_cache.alerts_in_force()
    rows = [{**row, "municipality": PLACES.get(str(row["municipality_id"]), ("", ""))[0],
             "department": PLACES.get(str(row["municipality_id"]), ("", ""))[1],
             "headline": headline, "instruction": instruction, "onset": onset or None}
            for row, headline, (instruction, onset) in zip(
                alerts.rows, alerts.headlines, alerts.advice, strict=True)]
    return {"version": alerts.token, "alerts": rows,
            "exercise": any("SIMULACRO" in headline.upper() for headline in alerts.headlines)}


class Me(BaseModel):
    role: str
    name: str
    municipality_id: str | None
    municipality: str | None
    department: str | None


@router.get("/map/me", response_model=Me)
async def me(who: CallerDep) -> dict[str, Any]:
    """Who the key belongs to: the page shows what the role may see."""
    place = PLACES.get(who.municipality_id or "")
    return {"role": who.role, "name": who.name, "municipality_id": who.municipality_id,
            "municipality": place[0] if place else None,
            "department": place[1] if place else None}

