"""Committee webhooks: a persistent outbox, signed deliveries, retries with backoff.

Every CAP message for a municipality becomes one delivery per subscription of that
municipality, stored in the same transaction as the message. Deliveries are attempted until a
2xx answer (at-least-once); each carries an idempotency key so a receiver applies it once, and
an HMAC-SHA256 signature over the timestamp and body with the subscription's secret. The
outbox lives in the store, so pending deliveries survive a restart of the service.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from api.secrets import SecretBox
from api.store.models import (
    AlertVersion,
    AuditEntry,
    Delivery,
    DeliveryAttempt,
    Subscription,
)

SIGNATURE_HEADER = "X-Floodwarn-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Backoff after the n-th failure: base · 2^(n−1), at most the cap; given up after max tries.
BACKOFF_BASE_S = 30.0
BACKOFF_CAP_S = 3600.0
MAX_ATTEMPTS = 20


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>``: receivers recompute it and
    reject old timestamps, so a captured request cannot be replayed later."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes) -> bool:
    """Receiver side of :func:`sign` (constant-time comparison)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        expected = sign(secret, int(parts["t"]), body)
    except (KeyError, ValueError):
        return False
    return hmac.compare_digest(expected, header)


def enqueue_deliveries(session: Session, version: AlertVersion, municipality_id: str,
                       *, now: datetime) -> int:
    """One pending delivery per subscription of the municipality; returns how many."""
    subscriptions = session.scalars(select(Subscription).where(
        Subscription.municipality_id == municipality_id,
        Subscription.deleted_at.is_(None))).all()
    for sub in subscriptions:
        key = hashlib.sha256(f"{version.identifier}|{sub.id}".encode()).hexdigest()[:32]
        session.add(Delivery(alert_version_id=version.id, subscription_id=sub.id,
                             idempotency_key=key, status="pending", attempts=0,
                             next_attempt_at=now))
    return len(subscriptions)


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_BASE_S * 2 ** (attempts - 1), BACKOFF_CAP_S))


#: Deliveries attempted at once: a committee endpoint that hangs until the timeout holds up
#: only its own delivery, not every other committee's.
PARALLEL_DELIVERIES = 8
DELIVERY_TIMEOUT_S = 10.0


def deliver_due(sessions: sessionmaker[Session], client: httpx.Client, box: SecretBox, *,
                now: datetime, parallel: int = PARALLEL_DELIVERIES,
                clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> dict[str, int]:
    """Attempt every pending delivery due at ``now``, ``parallel`` at a time; returns counts
    by outcome. Each request is signed with ``clock()``'s time at the moment it is sent, so a
    backlog sent in batches never carries stamps older than a receiver's replay window."""
    with sessions() as session:
        due = session.scalars(select(Delivery.id).where(
            Delivery.status == "pending", Delivery.next_attempt_at <= now)
            .order_by(Delivery.id)).all()
    counts = {"delivered": 0, "retry": 0, "failed": 0, "skipped": 0}
    if not due:
        return {k: v for k, v in counts.items() if k != "skipped"}
    with ThreadPoolExecutor(max_workers=min(parallel, len(due)),
                            thread_name_prefix="floodwarn-webhook") as pool:
        for outcome in pool.map(lambda d: _attempt(sessions, client, box, d, now, clock), due):
            counts[outcome] += 1
    counts.pop("skipped")
    return counts


def _attempt(sessions: sessionmaker[Session], client: httpx.Client, box: SecretBox,
             delivery_id: int, now: datetime, clock: Callable[[], datetime]) -> str:
    """One delivery attempt; the outcome.

    The HTTP call happens outside any transaction, and the outcome is written by one guarded
    UPDATE (still pending, same attempt count): a transaction that read first and wrote after a
    slow call could find SQLite's snapshot stale once another thread has written.
    """
    with sessions() as session:
        delivery = session.get(Delivery, delivery_id)
        if delivery is None or delivery.status != "pending":
            return "skipped"  # another worker took it
        version = session.get_one(AlertVersion, delivery.alert_version_id)
        sub = session.get_one(Subscription, delivery.subscription_id)
        body = version.cap_xml.encode("utf-8")
        url, attempts = sub.url, delivery.attempts
        secret, key = box.open(sub.secret), delivery.idempotency_key
    headers = {"Content-Type": "application/cap+xml",
               SIGNATURE_HEADER: sign(secret, int(clock().timestamp()), body),
               IDEMPOTENCY_HEADER: key}
    try:
        answer = client.post(url, content=body, headers=headers, timeout=DELIVERY_TIMEOUT_S)
        ok, error = answer.is_success, f"HTTP {answer.status_code}"
    except httpx.HTTPError as exc:
        ok, error = False, f"{type(exc).__name__}: {exc}"
    values: dict[str, object] = {"attempts": attempts + 1}
    if ok:
        outcome = "delivered"
        values.update(status="delivered", delivered_at=now, last_error=None)
    elif attempts + 1 >= MAX_ATTEMPTS:
        outcome = "failed"
        values.update(status="failed", last_error=error)
    else:
        outcome = "retry"
        values.update(next_attempt_at=now + backoff(attempts + 1), last_error=error)
    with sessions.begin() as session:
        written = session.execute(
            update(Delivery).where(Delivery.id == delivery_id, Delivery.status == "pending",
                                   Delivery.attempts == attempts).values(**values))
        if written.rowcount == 0:  # type: ignore[attr-defined]
            return "skipped"
        session.add(DeliveryAttempt(delivery_id=delivery_id, at=now, outcome=outcome,
                                    detail=error))
        if outcome == "failed":
            session.add(AuditEntry(at=now, actor="webhooks", action="delivery_failed",
                                   detail={"delivery_id": delivery_id, "error": error}))
    return outcome
