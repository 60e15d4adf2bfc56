"""API keys: made, listed and revoked by administrators."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CallerDep, KeyId, MunicipalityId, ServiceDep, municipality_id
from api.errors import COMMON_RESPONSES
from api.store.access import create_api_key, key_sites, list_keys, revoke_key
from api.store.models import ApiKey

router = APIRouter(prefix="/keys", tags=["keys"], responses=COMMON_RESPONSES)


class StaffKeyRequest(BaseModel):
    """A key for an analyst or an administrator (every municipality)."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["analyst", "admin"]
    name: str = Field(min_length=1, max_length=200, pattern=r"\S")


class CommitteeKeyRequest(BaseModel):
    """A key for a local emergency committee: its own municipality only."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["committee"]
    name: str = Field(min_length=1, max_length=200, pattern=r"\S")
    municipality_id: MunicipalityId


class SiteManagerKeyRequest(BaseModel):
    """A key for the manager of one or more collective centres: reports for those sites, and
    reads their reports only."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["site_manager"]
    name: str = Field(min_length=1, max_length=200, pattern=r"\S")
    site_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=500, description="Sites of the store (GET /sites).")


KeyRequest = Annotated[StaffKeyRequest | CommitteeKeyRequest | SiteManagerKeyRequest,
                       Field(discriminator="role")]


class NewKey(BaseModel):
    id: int
    key: str = Field(description="The key itself: shown once, stored only as its hash.")
    role: str


class KeyInfo(BaseModel):
    id: int
    role: str
    name: str
    municipality_id: str | None
    site_ids: list[str] = Field(default_factory=list)
    created_at: datetime
    revoked: bool
    revoked_at: datetime | None


def _info(row: ApiKey, site_ids: list[str] | None = None) -> KeyInfo:
    return KeyInfo(id=row.id, role=row.role, name=row.name,
                   municipality_id=row.municipality_id, site_ids=site_ids or [],
                   created_at=row.created_at, revoked=row.revoked, revoked_at=row.revoked_at)


@router.post("", status_code=201, response_model=NewKey)
def create_key(who: CallerDep, service: ServiceDep, request: KeyRequest) -> NewKey:
    """A new API key (admin); the key is shown once."""
    who.require("admin")
    municipality = None
    if isinstance(request, CommitteeKeyRequest):
        municipality = municipality_id(request.municipality_id)
    sites = request.site_ids if isinstance(request, SiteManagerKeyRequest) else []
    with service.sessions.begin() as session:
        key_id, key = create_api_key(session, role=request.role, name=request.name,
                                     municipality_id=municipality, site_ids=sites,
                                     now=datetime.now(UTC))
    return NewKey(id=key_id, key=key, role=request.role)


@router.get("", response_model=list[KeyInfo])
def keys(who: CallerDep, service: ServiceDep) -> list[KeyInfo]:
    """Every key with its role, owner and state (admin); never the keys themselves."""
    who.require("admin")
    with service.sessions() as session:
        bound = key_sites(session)
        return [_info(row, bound.get(row.id)) for row in list_keys(session)]


@router.delete("/{key_id}", response_model=KeyInfo)
def revoke(who: CallerDep, service: ServiceDep, key_id: KeyId) -> KeyInfo:
    """Revoke a key (admin): refused from the next request on, in every role. The last
    administrator key cannot be revoked (make another first)."""
    who.require("admin")
    with service.sessions.begin() as session:
        row = revoke_key(session, key_id, actor=who.name, now=datetime.now(UTC))
        info = _info(row)
    service.forget_key(key_id)
    return info
