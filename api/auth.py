"""API keys and roles: analyst (everything), committee (its own municipality), admin (keys,
subscriptions). The CAP feed and messages are public."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.store.models import ApiKey

ROLES = ("analyst", "committee", "admin")
KEY_HEADER = "X-API-Key"


class UnauthorizedError(Exception):
    """No valid API key (401)."""


class ForbiddenError(Exception):
    """The key's role does not allow this (403)."""


@dataclass(frozen=True)
class Caller:
    role: str
    municipality_id: str | None
    name: str

    def require(self, *roles: str) -> None:
        if self.role not in roles:
            raise ForbiddenError(
                f"the {self.role} role cannot do this; it needs {' or '.join(roles)}.")

    def may_see(self, municipality_id: str | None) -> bool:
        return self.role in ("analyst", "admin") or municipality_id == self.municipality_id


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(session: Session, *, role: str, name: str, now: datetime,
                   municipality_id: str | None = None) -> str:
    """A new key (returned once, never stored in clear) for ``role``."""
    if role not in ROLES:
        raise ValueError(f"role {role!r} unknown; use one of {ROLES}.")
    if (role == "committee") != (municipality_id is not None):
        raise ValueError("a committee key names exactly one municipality; other roles none.")
    key = "fw_" + secrets.token_urlsafe(32)
    session.add(ApiKey(key_hash=hash_key(key), role=role, municipality_id=municipality_id,
                       name=name, created_at=now, revoked=False))
    return key


def authenticate(session: Session, key: str | None) -> Caller:
    if not key:
        raise UnauthorizedError(f"an API key is required in the {KEY_HEADER} header.")
    row = session.scalars(select(ApiKey).where(ApiKey.key_hash == hash_key(key),
                                               ApiKey.revoked.is_(False))).one_or_none()
    if row is None:
        raise UnauthorizedError("unknown or revoked API key.")
    return Caller(role=row.role, municipality_id=row.municipality_id, name=row.name)
