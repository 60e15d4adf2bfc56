"""Webhook secrets sealed at rest.

A committee's webhook secret must be usable (the service signs every delivery with it), so it
cannot be stored as a hash; it is stored encrypted with Fernet (AES-128-CBC + HMAC-SHA256,
cryptography's recipe) under the service's secret key: ``FLOODWARN_SECRET_KEY``, or, when
unset, a key made on first start and kept in ``data_dir/secret.key`` (owner-only). A copy of
the store without the key reveals no secret.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from floodwarn.errors import InputError, ServiceUnavailableError

#: Sealed values start with this, so clear values left by older versions are recognised.
SEALED_PREFIX = "fernet:"


class SecretBox:
    """Seal and open webhook secrets with one Fernet key."""

    def __init__(self, key: str | bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as exc:
            raise InputError("FLOODWARN_SECRET_KEY is not a Fernet key (32 url-safe base64 "
                             "bytes); make one with `python -c \"from cryptography.fernet "
                             "import Fernet; print(Fernet.generate_key().decode())\"`.") from exc

    @classmethod
    def from_settings(cls, configured: str | None, key_file: Path) -> SecretBox:
        """The configured key, else the one in ``key_file`` (made, owner-only, if missing)."""
        if configured:
            return cls(configured)
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as out:
                out.write(Fernet.generate_key())
        return cls(key_file.read_bytes().strip())

    def seal(self, secret: str) -> str:
        return SEALED_PREFIX + self._fernet.encrypt(secret.encode()).decode()

    def open(self, stored: str) -> str:
        """The clear secret of a stored value (a clear value from before sealing is returned
        as it is, until :func:`api.store.access.seal_clear_secrets` seals it)."""
        if not stored.startswith(SEALED_PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored.removeprefix(SEALED_PREFIX).encode()).decode()
        except InvalidToken as exc:
            raise ServiceUnavailableError("a webhook secret was sealed with another key than the "
                             "configured FLOODWARN_SECRET_KEY; restore that key.") from exc
