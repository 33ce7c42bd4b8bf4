"""Routes of the auction API."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request

from service.api.cancellation import cancel_on_disconnect
from service.api.deps import AuctionServiceDep, EngineDep
from service.api.protocol import AuctionRequest, AuctionResponse, ErrorResponse
from service.errors import ServiceError
from service.observability import log_context, metrics

router = APIRouter()

ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorResponse, "description": "Invalid request"},
    502: {"model": ErrorResponse, "description": "The engine failed"},
    503: {"model": ErrorResponse, "description": "The engine is not available"},
    504: {"model": ErrorResponse, "description": "Generation timed out and was aborted"},
}


@router.post("/v1/auctions", response_model=AuctionResponse, responses=ERRORS, tags=["auctions"])
async def create_auction(body: AuctionRequest, request: Request, service: AuctionServiceDep) -> AuctionResponse:
    """Run one auction: K samples of the answer, one served at random, ads priced at first price."""
    auction_id = uuid.uuid4().hex
    log_context.auction_id.set(auction_id)  # here, so that lines logged outside the auction's task carry it too
    request_id = getattr(request.state, "request_id", None)
    return await cancel_on_disconnect(request, service.run(body, request_id, auction_id))


@router.get("/healthz", tags=["health"])
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", tags=["health"], responses={503: {"model": ErrorResponse}})
async def readyz(engine: EngineDep) -> dict[str, str]:
    """The engine is loaded and answering."""
    try:
        await engine.check_health()
    except ServiceError:
        metrics.ENGINE_READY.set(0)
        raise
    metrics.ENGINE_READY.set(1)
    return {"status": "ready", "model": engine.model_name}
