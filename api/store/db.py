"""Open and migrate the store."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def open_store(url: str) -> tuple[Engine, sessionmaker[Session]]:
    """An engine for ``url`` migrated to the latest schema, and its session factory.

    SQLite files get their folder created (owner-only), foreign keys enforced and WAL
    journaling, so the API and the run worker can read and write at once; the database and
    its journal files are readable by their owner only (they hold keys' hashes, audit logs
    and sealed webhook secrets).
    """
    database = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not database.exists():
            os.close(os.open(database, os.O_WRONLY | os.O_CREAT, 0o600))
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

    migrate(engine)
    if database is not None:
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            if path.exists():
                path.chmod(0o600)
    return engine, sessionmaker(engine, expire_on_commit=False)


def migrate(engine: Engine) -> None:
    """Bring the store's schema to the latest alembic revision."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
