"""The public click endpoint: verify the signed token, log the click (once per auction and ad), redirect."""

from __future__ import annotations

import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse

from service.clicks.tokens import ClickSigner
from service.errors import EngineUnavailable, ExpiredClickToken, ServiceError
from service.events.log import CLICKS, EventLog
from service.events.schema import click_event, click_once_key
from service.observability import metrics

router = APIRouter(tags=["clicks"])


def get_click_signer(request: Request) -> ClickSigner:
    signer: ClickSigner = request.app.state.click_signer
    return signer


def get_event_log(request: Request) -> EventLog:
    events: EventLog | None = request.app.state.events
    if events is None:
        raise EngineUnavailable("the service is starting")
    return events


ClickSignerDep = Annotated[ClickSigner, Depends(get_click_signer)]
EventLogDep = Annotated[EventLog, Depends(get_event_log)]


@router.get(
    "/c/{token}",
    status_code=302,
    response_class=RedirectResponse,
    responses={404: {"description": "Unknown or tampered link"}, 410: {"description": "Expired link"}},
)
async def click(token: str, request: Request, signer: ClickSignerDep, events: EventLogDep) -> RedirectResponse:
    try:
        target = signer.verify(token)
    except ExpiredClickToken:
        metrics.CLICK_REQUESTS.labels("expired").inc()
        raise
    except ServiceError:
        metrics.CLICK_REQUESTS.labels("invalid").inc()
        raise
    metrics.CLICK_REQUESTS.labels("valid").inc()
    # Every valid click is logged with its own id; the writer flags all but the first per auction and ad.
    request_id = getattr(request.state, "request_id", None)
    events.emit(
        CLICKS,
        click_event(
            target=target,
            timestamp=time.time(),
            request_id=request_id,
            user_agent=request.headers.get("user-agent", ""),
        ),
        event_id=f"click:{uuid.uuid4().hex}",  # never the caller-supplied request id
        once=click_once_key(target),
        amount=target.price,
    )
    return RedirectResponse(target.url, status_code=302, headers={"Cache-Control": "no-store"})
