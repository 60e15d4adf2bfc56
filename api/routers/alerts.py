"""Alerts: those in force, the public Atom feed and CAP messages, and delivery logs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel

from api.auth import ForbiddenError
from api.deps import PLACES, CallerDep, ServiceDep
from api.errors import COMMON_RESPONSES
from api.store.access import cap_message, delivery_log

router = APIRouter(prefix="/alerts", tags=["alerts"], responses=COMMON_RESPONSES)

Identifier = Annotated[str, PathParam(max_length=128, description="CAP message identifier")]

#: The feed is UTF-8 XML; saying so in the header keeps browsers and readers that ignore the
#: XML declaration from showing "inundaciÃ³n".
ATOM_MEDIA_TYPE = "application/atom+xml; charset=utf-8"


class AlertInForce(BaseModel):
    """An alert in force: its municipality, level and latest CAP message."""

    municipality_id: str
    level: str
    identifier: str
    msg_type: str
    sent: datetime
    expires: datetime | None
    cap_url: str


class DeliveryAttemptInfo(BaseModel):
    at: datetime
    outcome: str
    detail: str | None


class DeliveryInfo(BaseModel):
    identifier: str
    msg_type: str
    subscription_id: int
    url: str
    status: str
    attempts: list[DeliveryAttemptInfo]
    delivered_at: datetime | None
    next_attempt_at: datetime | None


@router.get("", response_model=list[AlertInForce])
async def alerts_in_force(who: CallerDep, service: ServiceDep) -> Response:
    """Alerts in force, one per municipality (a committee: its own), with their latest CAP
    message; cached until the next publication."""
    visible = None if who.role in ("analyst", "admin") else {str(who.municipality_id)}
    return Response(service.read_cache.alerts_in_force().json_for(visible),
                    media_type="application/json")


@router.get("/feed.atom", response_class=Response, responses={
    200: {"content": {"application/atom+xml": {"schema": {"type": "string"}}},
          "description": "Atom feed of the alerts in force"}})
async def feed(request: Request, service: ServiceDep) -> Response:
    """Atom feed of the alerts in force (public), rebuilt only after a publication."""
    body = service.read_cache.feed(
        str(request.url),
        lambda identifier: str(request.url_for("cap_message", identifier=identifier)),
        # An id missing from the table (a boundary file changed since publication) is shown
        # as is: better than no place at all.
        lambda municipality_id: ", ".join(PLACES.get(municipality_id, (municipality_id,))))
    return Response(body, media_type=ATOM_MEDIA_TYPE)


@router.get("/{identifier}/deliveries", response_model=list[DeliveryInfo])
def deliveries(who: CallerDep, service: ServiceDep,
               identifier: Identifier) -> list[dict[str, Any]]:
    """The delivery log of the alert that CAP message ``identifier`` belongs to: every
    message of the alert, every subscription it went to, every attempt and its outcome (a
    committee: its own municipality's alerts)."""
    with service.sessions() as session:
        version = cap_message(session, identifier)
        alert, rows = delivery_log(session, version)
        if not who.may_see(alert.municipality_id):
            raise ForbiddenError("a committee reads only its own municipality's alerts.")
        return rows


@router.get("/{identifier}.xml", name="cap_message", response_class=Response, responses={
    200: {"content": {"application/cap+xml": {"schema": {"type": "string"}}},
          "description": "The CAP 1.2 message as sent (signed when signing is set up)"}})
def cap(service: ServiceDep, identifier: Identifier) -> Response:
    """One CAP 1.2 message, as sent (public)."""
    with service.sessions() as session:
        xml = cap_message(session, identifier).cap_xml
    return Response(xml, media_type="application/cap+xml; charset=utf-8")
