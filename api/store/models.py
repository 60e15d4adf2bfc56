"""Tables: runs, settlement results, alerts and their versions, subscriptions, deliveries,
an audit log, and collective centres (profiles, occupancy reports, warehouse stock)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Times in UTC on every backend: SQLite keeps no time zone, so values are converted to
    UTC on the way in (naive times are refused) and read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("store times must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, datetime: UTCDateTime}


class Run(Base):
    """One forecast run: queued → running → succeeded | failed (with why).

    A running run belongs to ``worker`` until ``lease_until``; a worker renews the lease while
    it works, so a run whose lease has lapsed was left by a crash and is taken again (at most
    ``MAX_RUN_ATTEMPTS`` times, see :mod:`api.store.runs`).
    """

    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    rain_path: Mapped[str] = mapped_column(Text)
    out_dir: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    synthetic: Mapped[bool | None]
    summary: Mapped[dict[str, Any] | None]
    options: Mapped[dict[str, Any] | None]  # the caller's ForecastOptions (JSON)
    request: Mapped[dict[str, Any] | None]  # the whole ForecastRequest (JSON)
    worker: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    progress: Mapped[dict[str, Any] | None]  # {"step": …, "done": n, "total": n, "at": …}


class SettlementResult(Base):
    __tablename__ = "settlement_results"
    __table_args__ = (UniqueConstraint("run_id", "settlement_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    settlement_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)
    municipality_id: Mapped[str] = mapped_column(String(64), index=True)
    department: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(String(16), index=True)
    metrics: Mapped[dict[str, Any]]


class Alert(Base):
    """A municipality's warning; ``in_force`` until cancelled."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    municipality_id: Mapped[str] = mapped_column(String(64), index=True)
    in_force: Mapped[bool] = mapped_column(index=True)
    level: Mapped[str] = mapped_column(String(16))


class AlertVersion(Base):
    """Every CAP message sent for an alert (Alert, Update, Cancel), as sent."""

    __tablename__ = "alert_versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    identifier: Mapped[str] = mapped_column(String(128), unique=True)
    msg_type: Mapped[str] = mapped_column(String(8))
    level: Mapped[str | None] = mapped_column(String(16))
    sent: Mapped[datetime]
    expires: Mapped[datetime | None]  # None for Cancel messages
    cap_xml: Mapped[str] = mapped_column(Text)
    facts: Mapped[dict[str, Any] | None]  # what the warning said (the update rule compares)


class Subscription(Base):
    """A committee's webhook; ``secret`` is sealed (see :mod:`api.secrets`), never clear."""

    __tablename__ = "subscriptions"
    id: Mapped[int] = mapped_column(primary_key=True)
    municipality_id: Mapped[str] = mapped_column(String(64), index=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]  # deleted: kept for the delivery log, never sent to


class Delivery(Base):
    """The outbox: one row per (message, subscription), retried until delivered."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("alert_version_id", "subscription_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_version_id: Mapped[int] = mapped_column(ForeignKey("alert_versions.id"), index=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]


class DeliveryAttempt(Base):
    """One attempt of a delivery: when, the outcome, and the answer or error."""

    __tablename__ = "delivery_attempts"
    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(16))  # delivered | retry | failed
    detail: Mapped[str | None] = mapped_column(Text)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]]


class ApiKey(Base):
    """An API key (stored as its SHA-256 only) with a role: analyst, committee (of one
    municipality) or admin."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    municipality_id: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    revoked: Mapped[bool] = mapped_column(default=False)
    revoked_at: Mapped[datetime | None]


class ApiKeySite(Base):
    """The collective centres a site manager's key may report for (and read)."""

    __tablename__ = "api_key_sites"
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"),
                                        primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.site_id"), primary_key=True)


class SiteImport(Base):
    """One import of the official list of collective centres: who, when, which file."""

    __tablename__ = "site_imports"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    filename: Mapped[str] = mapped_column(Text)
    sites: Mapped[int] = mapped_column(Integer)
    capacity_source: Mapped[str] = mapped_column(String(16))


class Site(Base):
    """A collective centre's profile (``floodwarn.sites.profiles``: the columns of the site
    profile frame, with missing values kept as null in ``profile``). A site dropped from a
    later official list stays, not ``active``, for its reports' history; it is never a
    destination."""

    __tablename__ = "sites"
    site_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    municipality_id: Mapped[str] = mapped_column(String(64), index=True)
    department_code: Mapped[str] = mapped_column(String(8), index=True)
    lon: Mapped[float]
    lat: Mapped[float]
    capacity_source: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(index=True)
    profile: Mapped[dict[str, Any]]
    import_id: Mapped[int | None] = mapped_column(ForeignKey("site_imports.id"))
    updated_at: Mapped[datetime]


class SiteReport(Base):
    """One occupancy report of a site, as received, never changed: who sent it (the key's id
    and name), when it was counted and when it arrived, and from where (``api``, ``form`` —
    the map's form —, ``kobo``, ``odk``). ``source_uuid`` (KoBo ``_uuid``, ODK instance id)
    makes a re-imported export add nothing twice."""

    __tablename__ = "site_reports"
    __table_args__ = (Index("ix_site_reports_site_latest", "site_id", "reported_at", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.site_id"))
    reported_at: Mapped[datetime]
    received_at: Mapped[datetime]
    author_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    author: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(8))
    source_uuid: Mapped[str | None] = mapped_column(String(128), unique=True)
    status: Mapped[str] = mapped_column(String(8))
    people: Mapped[int] = mapped_column(Integer)
    households: Mapped[int] = mapped_column(Integer)
    counts: Mapped[dict[str, Any]]  # the sex × age bands and disabled (null: not counted)
    needs: Mapped[dict[str, Any]]  # {"codes": [...]}
    note: Mapped[str | None] = mapped_column(Text)  # internal: never exported


class WarehouseStock(Base):
    """Pre-positioned stock: one item held in one warehouse, with the lead time to move it."""

    __tablename__ = "warehouse_stock"
    __table_args__ = (UniqueConstraint("warehouse_id", "item"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    warehouse_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(Text)
    lon: Mapped[float]
    lat: Mapped[float]
    item: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[float]
    lead_time_h: Mapped[float]
    updated_at: Mapped[datetime]
