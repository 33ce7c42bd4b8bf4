"""The public click endpoint: verify the signed token, log the click (once per auction and ad), redirect."""

from __future__ import annotations

import time
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from service.clicks.deps import ClickSignerDep, EventLogDep
from service.clicks.events import click_event, click_once_key
from service.controls.deps import ControlsDep
from service.errors import ExpiredClickToken, ServiceError
from service.events.log import CLICKS
from service.http.deps import RequestIdDep
from service.observability import metrics

router = APIRouter(tags=["clicks"])


@router.get(
    "/c/{token}",
    status_code=302,
    response_class=RedirectResponse,
    responses={404: {"description": "Unknown or tampered link"}, 410: {"description": "Expired link"}},
)
async def click(
    token: str,
    request: Request,
    signer: ClickSignerDep,
    events: EventLogDep,
    controls: ControlsDep,
    request_id: RequestIdDep,
) -> RedirectResponse:
    try:
        target = signer.verify(token)
    except ExpiredClickToken:
        metrics.CLICK_REQUESTS.labels("expired").inc()
        raise
    except ServiceError:
        metrics.CLICK_REQUESTS.labels("invalid").inc()
        raise
    metrics.CLICK_REQUESTS.labels("valid").inc()
    # Billing is one atomic Redis script: charged once per auction and ad, never past the budget by more than one
    # price. The user is redirected whatever the verdict (a refused charge is the advertiser's, not the user's).
    charge = await controls.charge(target.auction_id, target.ad_id, target.payer, target.price)
    # Every valid click is logged with its own id; the writer flags all but the first per auction and ad.
    events.emit(
        CLICKS,
        click_event(
            target=target,
            timestamp=time.time(),
            request_id=request_id,
            user_agent=request.headers.get("user-agent", ""),
            billed=charge.billed,
            billing=charge.reason,
        ),
        event_id=f"click:{uuid.uuid4().hex}",  # never the caller-supplied request id
        once=click_once_key(target),
        amount=target.price if charge.billed else 0.0,
    )
    return RedirectResponse(target.url, status_code=302, headers={"Cache-Control": "no-store"})
