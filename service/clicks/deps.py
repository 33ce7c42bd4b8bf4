"""Dependencies of the click route."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.clicks.tokens import ClickSigner
from service.errors import ServiceStarting
from service.events.log import EventLog
from service.http.state import required


async def get_click_signer(request: Request) -> ClickSigner:
    return required(
        request,
        "click_signer",
        ClickSigner,
        ServiceStarting("the service is starting: click links cannot be verified yet"),
    )


async def get_event_log(request: Request) -> EventLog:
    return required(
        request, "events", EventLog, ServiceStarting("the service is starting: the event log is not open yet")
    )


ClickSignerDep = Annotated[ClickSigner, Depends(get_click_signer)]
EventLogDep = Annotated[EventLog, Depends(get_event_log)]
