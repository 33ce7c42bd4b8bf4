"""Dependencies of the API routes, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.api.serving import AuctionService
from service.engine.base import Engine
from service.errors import EngineUnavailable


def get_auction_service(request: Request) -> AuctionService:
    service: AuctionService | None = getattr(request.app.state, "auctions", None)
    if service is None:
        raise EngineUnavailable("the service is starting; the engine is not loaded yet")
    return service


def get_engine(request: Request) -> Engine:
    engine: Engine | None = getattr(request.app.state, "engine", None)
    if engine is None:
        raise EngineUnavailable("the engine is not loaded")
    return engine


AuctionServiceDep = Annotated[AuctionService, Depends(get_auction_service)]
EngineDep = Annotated[Engine, Depends(get_engine)]
