"""The store migrates and round-trips on SQLite (default) and on a real PostgreSQL."""

import os
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, inspect, select, text

from api.settings import Settings
from api.store.db import open_store
from api.store.models import Alert, AlertVersion, Run

PG_ADMIN_URL = os.environ.get("FLOODWARN_TEST_POSTGRES",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def _postgres_database():
    """The URL of a fresh database on the local PostgreSQL, dropped afterwards; or skip (fail
    under CI)."""
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            name = f"floodwarn_test_{uuid.uuid4().hex[:8]}"
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"no PostgreSQL at {PG_ADMIN_URL}: {exc}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _round_trip(url):
    engine, session_factory = open_store(url)
    tables = set(inspect(engine).get_table_names())
    assert {"runs", "settlement_results", "alerts", "alert_versions", "subscriptions",
            "deliveries", "audit_log", "alembic_version"} <= tables
    now = datetime(2020, 5, 31, 6, tzinfo=UTC)
    with session_factory.begin() as session:
        run = Run(status="succeeded", rain_path="amanda.nc", created_at=now,
                  summary={"roja": 3})
        alert = Alert(municipality_id="SLV-1", in_force=True, level="roja")
        session.add_all([run, alert])
        session.flush()
        session.add(AlertVersion(alert_id=alert.id, run_id=run.id, identifier="fw-1",
                                 msg_type="Alert", level="roja", sent=now, cap_xml="<alert/>"))
    with session_factory() as session:
        stored = session.scalars(select(AlertVersion)).one()
        assert stored.identifier == "fw-1" and stored.sent.astimezone(UTC) == now
        assert session.scalars(select(Run)).one().summary == {"roja": 3}
    open_store(url)  # migrating twice changes nothing
    engine.dispose()


def test_sqlite_store_by_default(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    assert settings.store_url.startswith("sqlite:///")
    _round_trip(settings.store_url)
    assert (tmp_path / "data" / "floodwarn.sqlite").exists()


def test_postgresql_store():
    with _postgres_database() as url:
        _round_trip(url)


def _upgrade_keeps_alert_expiry(url):
    """A store made before alert expiry was stored (revision 0003) gets each message's expiry
    from its CAP XML when migrated."""
    from alembic import command
    from alembic.config import Config

    from api.store.db import MIGRATIONS

    engine = create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
    cap = ('<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><info>'
           "<expires>2020-06-02T06:00:00-06:00</expires></info></alert>")
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO alerts (id, municipality_id, in_force, level) "
                                "VALUES (1, 'SLV-1', true, 'roja')"))
        connection.execute(text(
            "INSERT INTO alert_versions (id, alert_id, identifier, msg_type, level, sent, cap_xml)"
            " VALUES (1, 1, 'fw-1', 'Alert', 'roja', :sent, :cap), "
            "(2, 1, 'fw-2', 'Cancel', NULL, :sent, :cancel)"),
            {"sent": datetime(2020, 6, 1, tzinfo=UTC), "cap": cap,
             "cancel": '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"/>'})
    engine.dispose()
    engine, sessions = open_store(url)  # to the latest revision
    with sessions() as session:
        alert, cancel = session.scalars(select(AlertVersion).order_by(AlertVersion.id)).all()
    assert alert.expires == datetime(2020, 6, 2, 12, tzinfo=UTC)
    assert cancel.expires is None
    engine.dispose()


def test_migration_backfills_alert_expiry_sqlite(tmp_path):
    _upgrade_keeps_alert_expiry(f"sqlite:///{tmp_path / 'old.sqlite'}")


def test_migration_backfills_alert_expiry_postgresql():
    with _postgres_database() as url:
        _upgrade_keeps_alert_expiry(url)
