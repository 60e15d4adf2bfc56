"""What every router shares: the service (settings, store, caches, worker) and the caller."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request, Security
from fastapi import Path as PathParam
from fastapi.security import APIKeyHeader
from pydantic import Field, WithJsonSchema
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.auth import KEY_HEADER, Caller, ForbiddenError
from api.readcache import ReadCache
from api.secrets import SecretBox
from api.settings import Settings
from api.store.access import authenticate
from api.tiles import MapTiles
from floodwarn.errors import InputError
from floodwarn.io.gis_data import load_municipalities, place_key

if TYPE_CHECKING:
    from api.centres import CentresView
    from api.worker import Worker

#: Seconds a verified key is trusted without asking the store again. A key revoked through
#: the API stops at once (the cache forgets it); one revoked in the store by other means
#: within this time.
KEY_CACHE_S = 5.0


@dataclass
class Service:
    """The running service: one per app, shared by every request."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    read_cache: ReadCache
    secret_box: SecretBox
    clock: Callable[[], datetime]
    worker: Worker | None = None
    #: The collective centres' picture: latest states, flags, needs, gaps (api.centres).
    centres: CentresView = field(default=None)  # type: ignore[assignment]
    #: Rendered map tiles and what renders them (api.routers.tiles).
    tiles: MapTiles = field(default_factory=MapTiles)
    #: key → (time verified, key id, caller)
    key_cache: dict[str, tuple[float, int, Caller]] = field(default_factory=dict)

    def forget_key(self, key_id: int) -> None:
        """Drop every cached verification of key ``key_id`` (it was just revoked)."""
        for key, (_, cached_id, _) in list(self.key_cache.items()):
            if cached_id == key_id:
                self.key_cache.pop(key, None)


async def get_service(request: Request) -> Service:
    """The app's service (async: a dependency that does no I/O must not cost a hop to the
    thread pool on every request)."""
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


#: The API key, declared as the schema's security scheme (public routes do not use it).
api_key_header = APIKeyHeader(name=KEY_HEADER, auto_error=False,
                              description="An API key made by an administrator (POST /keys).")


#: What a site manager's key reaches: its sites (and their needs) and who it is. Runs,
#: settlements, alerts, rivers and plans are the analysts' and committees'.
SITE_MANAGER_ROUTES = ("/sites", "/needs", "/map/me")


async def get_caller(request: Request, service: ServiceDep,
                     api_key: Annotated[str | None, Security(api_key_header)] = None) -> Caller:
    """The caller behind the request's API key (401 without a valid one; 403 for a site
    manager outside :data:`SITE_MANAGER_ROUTES`).

    Async, so that a cached key costs no hop to the thread pool.
    """
    now = time.monotonic()
    if api_key and (hit := service.key_cache.get(api_key)) is not None \
            and now - hit[0] < KEY_CACHE_S:
        who = hit[2]
    else:
        with service.sessions() as session:
            key_id, who = authenticate(session, api_key, KEY_HEADER)
        service.key_cache[str(api_key)] = (now, key_id, who)
    if who.role == "site_manager":
        path = str(getattr(request.scope.get("route"), "path", ""))
        if not path.startswith(SITE_MANAGER_ROUTES):
            raise ForbiddenError("a site_manager key reaches its collective centres only "
                                 "(/sites, /needs?by=site).")
    return who


CallerDep = Annotated[Caller, Depends(get_caller)]


def unknown_query_parameters(request: Request) -> list[str]:
    """The query parameters of ``request`` that its route does not declare."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return []
    declared: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        declared |= {p.alias for p in current.query_params}
        pending.extend(current.dependencies)
    return sorted(set(request.query_params) - declared)


async def only_declared_query(request: Request) -> None:
    """Refuse (422) a query parameter the route does not declare: a misspelt filter
    (``?municipio=``) silently ignored would return the whole country as if filtered."""
    if unknown := unknown_query_parameters(request):
        raise InputError(f"unknown query parameter(s) {unknown[:5]}; see /docs for the "
                         "parameters of this route.")
#: The 262 municipality ids (geoBoundaries ADM2) and 14 department codes (ISO 3166-2:SV), as
#: enumerations in the API's schema; a value outside them is answered with what was probably
#: meant (see :func:`municipality_id`).
_MUNICIPALITIES = load_municipalities()
MUNICIPALITY_IDS = tuple(sorted(_MUNICIPALITIES["id"]))
#: Department name by ISO 3166-2 code.
DEPARTMENTS = dict(zip(_MUNICIPALITIES["department_code"], _MUNICIPALITIES["department"],
                       strict=True))
DEPARTMENT_CODES = tuple(sorted(DEPARTMENTS))
_KNOWN_IDS = frozenset(MUNICIPALITY_IDS)
#: Official (name, department) of each municipality id.
PLACES: dict[str, tuple[str, str]] = {
    m.id: (m.name, m.department) for m in _MUNICIPALITIES.itertuples()}


def municipalities_table() -> Any:
    """The 262 municipalities (id, official name, department, polygon), read at start."""
    return _MUNICIPALITIES


def _enumerated(values: tuple[str, ...], description: str) -> Any:
    return WithJsonSchema({"type": "string", "enum": list(values), "description": description})


MunicipalityId = Annotated[str, Field(max_length=64), _enumerated(
    MUNICIPALITY_IDS, "Municipality id (geoBoundaries ADM2), e.g. SLV-ADM2-79315794B34056060 "
    "(Metapán)")]
DepartmentCode = Annotated[str, Field(max_length=64), _enumerated(
    DEPARTMENT_CODES, "Department, ISO 3166-2 code, e.g. SV-SS (San Salvador)")]
#: Ids are positive and fit the store's integer column (larger ones are simply not found).
RunId = Annotated[int, PathParam(ge=1, le=2**31 - 1, description="Run id")]
KeyId = Annotated[int, PathParam(ge=1, le=2**31 - 1, description="API key id")]


def municipality_id(value: str) -> str:
    """``value`` if it is one of the 262 municipality ids; otherwise an InputError that, when
    ``value`` is a name, gives the ids of every municipality of that name (17 share 8 names,
    so a name alone cannot pick one)."""
    if value in _KNOWN_IDS:  # the hot path: no table is read
        return value
    municipalities = _MUNICIPALITIES
    key = place_key(value)
    named = municipalities.loc[(municipalities["name"].map(place_key) == key)
                               | (municipalities["boundary_name"].map(place_key) == key)]
    ids = ", ".join(f"{m.id} ({m.name}, {m.department})" for m in named.itertuples())
    hint = f"; {value!r} is a name, not an id: {ids}" if len(named) else ""
    raise InputError(f"unknown municipality id {value!r}: use a geoBoundaries ADM2 id such as "
                     f"SLV-ADM2-79315794B34056060 (Metapán){hint}.")


def department_name(code: str) -> str:
    """The department of ISO 3166-2 ``code`` (SV-SS); an InputError naming the code when a
    name is given instead."""
    if code in DEPARTMENTS:
        return DEPARTMENTS[code]
    by_name = {place_key(name): c for c, name in DEPARTMENTS.items()}
    hint = (f"; {code!r} is a name, its code is {by_name[place_key(code)]}"
            if place_key(code) in by_name else "")
    raise InputError(f"unknown department code {code!r}: use an ISO 3166-2 code such as SV-SS "
                     f"(San Salvador){hint}.")
