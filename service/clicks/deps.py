"""Dependencies of the click route."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.clicks.tokens import ClickSigner
from service.errors import ServiceStarting
from service.events.log import EventLog
from service.http.state import resource


def get_click_signer(request: Request) -> ClickSigner:
    signer = resource(request, "click_signer", ClickSigner)
    if signer is None:
        raise ServiceStarting("the service is starting: click links cannot be verified yet")
    return signer


def get_event_log(request: Request) -> EventLog:
    events = resource(request, "events", EventLog)
    if events is None:
        raise ServiceStarting("the service is starting: the event log is not open yet")
    return events


ClickSignerDep = Annotated[ClickSigner, Depends(get_click_signer)]
EventLogDep = Annotated[EventLog, Depends(get_event_log)]
