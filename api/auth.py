"""API keys and roles: analyst (everything), committee (its own municipality), admin (keys,
subscriptions). The CAP feed and messages are public."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from floodwarn.errors import FloodwarnError

ROLES = ("analyst", "committee", "admin")
KEY_HEADER = "X-API-Key"


class UnauthorizedError(FloodwarnError):
    """No valid API key (401)."""


class ForbiddenError(FloodwarnError):
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
