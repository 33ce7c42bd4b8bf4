"""The controls as a route dependency (the click route bills through them; the admin API sets them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.controls.service import Controls
from service.errors import ServiceStarting
from service.http.state import required


async def get_controls(request: Request) -> Controls:
    return required(
        request,
        "controls",
        Controls,
        ServiceStarting("the service is starting: budgets and caps cannot be checked yet"),
    )


ControlsDep = Annotated[Controls, Depends(get_controls)]
