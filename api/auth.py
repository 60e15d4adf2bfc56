"""API keys and roles: analyst (everything), committee (its own municipality), admin (keys,
subscriptions), site_manager (the collective centres its key is bound to: their reports only).
The CAP feed and messages, the aggregated data-sharing exports and the OGC API are public."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from floodwarn.errors import FloodwarnError

ROLES = ("analyst", "committee", "admin", "site_manager")
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
    key_id: int | None = None
    #: The collective centres a site manager's key is bound to (empty for other roles).
    site_ids: frozenset[str] = frozenset()

    def require(self, *roles: str) -> None:
        if self.role not in roles:
            raise ForbiddenError(
                f"the {self.role} role cannot do this; it needs {' or '.join(roles)}.")

    def may_see(self, municipality_id: str | None) -> bool:
        return self.role in ("analyst", "admin") or municipality_id == self.municipality_id

    def may_read_site(self, site_id: str, municipality_id: str) -> bool:
        """Staff read every site; a committee its municipality's; a site manager its own."""
        if self.role == "site_manager":
            return site_id in self.site_ids
        return self.may_see(municipality_id)

    def require_site(self, site_id: str) -> None:
        """May this caller report for ``site_id``? Analysts and administrators for any site (data
        entered for a centre without a connection), a site manager for its own only."""
        if self.role in ("analyst", "admin"):
            return
        if self.role == "site_manager" and site_id in self.site_ids:
            return
        raise ForbiddenError(f"this key may not report for site {site_id!r}"
                             + (f"; it reports for {sorted(self.site_ids)}"
                                if self.role == "site_manager" else "") + ".")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
