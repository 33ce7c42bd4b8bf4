"""Dependencies of the auction routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.auctions.service import AuctionService
from service.errors import EngineUnavailable
from service.http.state import required


async def get_auction_service(request: Request) -> AuctionService:
    return required(
        request, "auctions", AuctionService, EngineUnavailable("the service is starting; the engine is not loaded yet")
    )


AuctionServiceDep = Annotated[AuctionService, Depends(get_auction_service)]
