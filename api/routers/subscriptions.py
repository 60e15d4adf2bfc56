"""Committee webhooks: subscribe a URL to a municipality's alerts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from api.auth import ForbiddenError
from api.deps import CallerDep, MunicipalityId, ServiceDep, municipality_id
from api.errors import COMMON_RESPONSES
from api.store.access import add_subscription, list_subscriptions, remove_subscription

router = APIRouter(prefix="/subscriptions", tags=["subscriptions"], responses=COMMON_RESPONSES)


class SubscriptionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    municipality_id: MunicipalityId
    url: str = Field(max_length=2000, pattern=r"^https?://\S+$",
                     description="Where CAP messages are POSTed.")
    secret: str = Field(min_length=16, max_length=256,
                        description="Shared secret of the HMAC signature (stored sealed).")


class SubscriptionInfo(BaseModel):
    id: int
    municipality_id: str
    url: str


@router.post("", status_code=201, response_model=SubscriptionInfo)
def subscribe(who: CallerDep, service: ServiceDep,
              request: SubscriptionRequest) -> SubscriptionInfo:
    """A committee's webhook (its own municipality) or any (admin)."""
    who.require("admin", "committee")
    if not who.may_see(request.municipality_id):
        raise ForbiddenError("a committee manages only its own municipality's subscription.")
    municipality_id(request.municipality_id)
    with service.sessions.begin() as session:
        sub = add_subscription(session, municipality_id=request.municipality_id,
                               url=request.url, secret=request.secret,
                               box=service.secret_box, actor=who.name, now=datetime.now(UTC))
        return SubscriptionInfo(id=sub.id, municipality_id=sub.municipality_id, url=sub.url)


@router.delete("/{subscription_id}", response_model=SubscriptionInfo)
def unsubscribe(who: CallerDep, service: ServiceDep, subscription_id: Annotated[
        int, PathParam(ge=1, le=2**31 - 1, description="Subscription id")]) -> SubscriptionInfo:
    """Delete a webhook (a committee: its own municipality's): nothing more is sent to it,
    pending deliveries are dropped; what was sent stays in the delivery log."""
    who.require("admin", "committee")
    with service.sessions.begin() as session:
        sub = remove_subscription(session, subscription_id, may_see=who.may_see,
                                  actor=who.name, now=datetime.now(UTC))
        return SubscriptionInfo(id=sub.id, municipality_id=sub.municipality_id, url=sub.url)


@router.get("", response_model=list[SubscriptionInfo])
def subscriptions(who: CallerDep, service: ServiceDep) -> list[SubscriptionInfo]:
    """The webhooks the caller may see (a committee: its own municipality's)."""
    who.require("admin", "committee")
    with service.sessions() as session:
        return [SubscriptionInfo(id=s.id, municipality_id=s.municipality_id, url=s.url)
                for s in list_subscriptions(session) if who.may_see(s.municipality_id)]
