"""Keys, subscriptions, CAP messages and delivery logs in the store."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.auth import ROLES, Caller, UnauthorizedError, hash_key
from api.secrets import SEALED_PREFIX, SecretBox
from api.store.models import (
    Alert,
    AlertVersion,
    ApiKey,
    ApiKeySite,
    AuditEntry,
    Delivery,
    DeliveryAttempt,
    Site,
    Subscription,
)
from floodwarn.errors import InputError, NotFoundError


def create_api_key(session: Session, *, role: str, name: str, now: datetime,
                   municipality_id: str | None = None,
                   site_ids: Sequence[str] = ()) -> tuple[int, str]:
    """A new key for ``role``: its id and the key itself (returned once, stored as its
    SHA-256 only). A site manager's key is bound to ``site_ids`` (sites of the store)."""
    if role not in ROLES:
        raise InputError(f"role {role!r} unknown; use one of {ROLES}.")
    if (role == "committee") != (municipality_id is not None):
        raise InputError("a committee key names exactly one municipality; other roles none.")
    if (role == "site_manager") != bool(site_ids):
        raise InputError("a site_manager key names one or more sites (site_ids); other roles "
                         "none.")
    if site_ids:
        known = set(session.scalars(select(Site.site_id).where(Site.site_id.in_(site_ids))))
        unknown = sorted(set(site_ids) - known)
        if unknown:
            raise InputError(f"sites {unknown[:10]} are not in the store; import the list of "
                             "collective centres first (the API's sites/import) or check the "
                             "ids (the API's sites list).")
    key = "fw_" + secrets.token_urlsafe(32)
    row = ApiKey(key_hash=hash_key(key), role=role, municipality_id=municipality_id,
                 name=name, created_at=now, revoked=False)
    session.add(row)
    session.flush()
    session.add_all(ApiKeySite(key_id=row.id, site_id=s) for s in sorted(set(site_ids)))
    return row.id, key


def ensure_bootstrap_key(session: Session, key: str, *, now: datetime) -> None:
    """The configured administrator key exists (it always works, unless revoked)."""
    if session.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_key(key))) is None:
        session.add(ApiKey(key_hash=hash_key(key), role="admin", municipality_id=None,
                           name="bootstrap admin", created_at=now, revoked=False))


def count_keys(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(ApiKey)) or 0)


def authenticate(session: Session, key: str | None, key_header: str) -> tuple[int, Caller]:
    """The id and caller of a valid, unrevoked key; UnauthorizedError otherwise."""
    if not key:
        raise UnauthorizedError(f"an API key is required in the {key_header} header.")
    row = session.scalars(select(ApiKey).where(ApiKey.key_hash == hash_key(key),
                                               ApiKey.revoked.is_(False))).one_or_none()
    if row is None:
        raise UnauthorizedError("unknown or revoked API key.")
    sites = frozenset(session.scalars(select(ApiKeySite.site_id).where(
        ApiKeySite.key_id == row.id))) if row.role == "site_manager" else frozenset()
    return row.id, Caller(role=row.role, municipality_id=row.municipality_id, name=row.name,
                          key_id=row.id, site_ids=sites)


def key_sites(session: Session) -> dict[int, list[str]]:
    """The sites each site manager's key is bound to."""
    bound: dict[int, list[str]] = {}
    for key_id, site_id in session.execute(select(ApiKeySite.key_id, ApiKeySite.site_id)
                                           .order_by(ApiKeySite.site_id)):
        bound.setdefault(key_id, []).append(site_id)
    return bound


def list_keys(session: Session) -> Sequence[ApiKey]:
    return session.scalars(select(ApiKey).order_by(ApiKey.id)).all()


def revoke_key(session: Session, key_id: int, *, actor: str, now: datetime) -> ApiKey:
    """Revoke key ``key_id`` for good (idempotent; the audit log says who and when)."""
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFoundError(f"no API key {key_id}")
    if not row.revoked and row.role == "admin" and session.scalar(
            select(func.count()).select_from(ApiKey).where(
                ApiKey.role == "admin", ApiKey.revoked.is_(False))) == 1:
        raise InputError(f"key {key_id} is the last administrator key: revoking it would lock "
                         "every administrator out. Make another admin key first "
                         "(POST /keys).")
    if not row.revoked:
        row.revoked, row.revoked_at = True, now
        session.add(AuditEntry(at=now, actor=actor, action="revoke_key",
                               detail={"key_id": key_id, "name": row.name}))
    return row


def add_subscription(session: Session, *, municipality_id: str, url: str, secret: str,
                     box: SecretBox, actor: str, now: datetime) -> Subscription:
    """A webhook for a municipality; the same URL twice for one municipality is refused (the
    committee would get every message twice, under different idempotency keys)."""
    same = session.scalar(select(Subscription.id).where(
        Subscription.municipality_id == municipality_id, Subscription.url == url,
        Subscription.deleted_at.is_(None)))
    if same is not None:
        raise InputError(f"{url} already receives this municipality's alerts (subscription "
                         f"{same}); delete it first to change its secret.")
    sub = Subscription(municipality_id=municipality_id, url=url, secret=box.seal(secret),
                       created_at=now)
    session.add(sub)
    session.flush()
    session.add(AuditEntry(at=now, actor=actor, action="subscribe",
                           detail={"subscription_id": sub.id,
                                   "municipality_id": municipality_id}))
    return sub


def remove_subscription(session: Session, subscription_id: int, *, may_see: Callable[[str], bool],
                        actor: str, now: datetime) -> Subscription:
    """Delete a subscription and its pending deliveries (sent ones stay in the log)."""
    sub = session.get(Subscription, subscription_id)
    if sub is None or sub.deleted_at is not None or not may_see(sub.municipality_id):
        raise NotFoundError(f"no subscription {subscription_id}")
    pending = session.scalars(select(Delivery).where(
        Delivery.subscription_id == subscription_id, Delivery.status == "pending")).all()
    for delivery in pending:
        delivery.status, delivery.last_error = "failed", "subscription deleted"
    session.add(AuditEntry(at=now, actor=actor, action="unsubscribe",
                           detail={"subscription_id": subscription_id,
                                   "municipality_id": sub.municipality_id,
                                   "pending_dropped": len(pending)}))
    sub.deleted_at, sub.secret = now, ""
    return sub


def list_subscriptions(session: Session) -> Sequence[Subscription]:
    """The subscriptions in force (not deleted)."""
    return session.scalars(select(Subscription).where(Subscription.deleted_at.is_(None))
                           .order_by(Subscription.id)).all()


def seal_clear_secrets(session: Session, box: SecretBox) -> int:
    """Seal webhook secrets stored in clear by an older version; returns how many."""
    clear = session.scalars(select(Subscription).where(
        Subscription.secret.not_like(f"{SEALED_PREFIX}%"), Subscription.secret != "")).all()
    for sub in clear:
        sub.secret = box.seal(sub.secret)
    return len(clear)


def cap_message(session: Session, identifier: str) -> AlertVersion:
    version = session.scalars(select(AlertVersion).where(
        AlertVersion.identifier == identifier)).one_or_none()
    if version is None:
        raise NotFoundError(f"no CAP message {identifier!r}")
    return version


def delivery_log(session: Session, version: AlertVersion) -> tuple[Alert,
                                                                     list[dict[str, Any]]]:
    """The alert of ``version`` and, for every message of that alert, every subscription it
    went to with every attempt and its outcome."""
    alert = session.get_one(Alert, version.alert_id)
    rows = session.execute(
        select(AlertVersion, Delivery, Subscription)
        .join(Delivery, Delivery.alert_version_id == AlertVersion.id)
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .where(AlertVersion.alert_id == alert.id)
        .order_by(AlertVersion.id, Delivery.id)).all()
    attempts: dict[int, list[dict[str, object]]] = {}
    for attempt in session.scalars(
            select(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(
                [d.id for _, d, _ in rows])).order_by(DeliveryAttempt.id)):
        attempts.setdefault(attempt.delivery_id, []).append(
            {"at": attempt.at.isoformat(), "outcome": attempt.outcome,
             "detail": attempt.detail})
    return alert, [{"identifier": v.identifier, "msg_type": v.msg_type,
                    "subscription_id": sub.id, "url": sub.url, "status": d.status,
                    "attempts": attempts.get(d.id, []),
                    "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
                    "next_attempt_at": None if d.status != "pending"
                    else d.next_attempt_at.isoformat()}
                   for v, d, sub in rows]


def delivery_counts(session: Session) -> dict[str, int]:
    return {status: count for status, count in session.execute(
        select(Delivery.status, func.count()).group_by(Delivery.status))}
