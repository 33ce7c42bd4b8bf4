"""Routes of the auction API."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from service.api.cancellation import cancel_on_disconnect
from service.api.deps import AuctionServiceDep, EngineDep
from service.api.protocol import AuctionRequest, AuctionResponse, ErrorResponse
from service.api.serving import StreamEvent
from service.api.sse import auction_events
from service.errors import EngineUnavailable, ServiceError
from service.observability import log_context, metrics
from service.security.deps import AuctionAccess

router = APIRouter()

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The body cannot be decoded (e.g. not UTF-8)"},
    401: {"model": ErrorResponse, "description": "Missing or unknown API key"},
    403: {"model": ErrorResponse, "description": "The key may not run auctions"},
    413: {"model": ErrorResponse, "description": "Request body too large"},
    422: {"model": ErrorResponse, "description": "Invalid request"},
    429: {"model": ErrorResponse, "description": "Rate limit reached (Retry-After)"},
    502: {"model": ErrorResponse, "description": "The engine failed"},
    503: {"model": ErrorResponse, "description": "The engine is not available, or too many auctions in flight"},
    504: {"model": ErrorResponse, "description": "Generation timed out and was aborted"},
}


STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The auction; with `stream: true`, Server-Sent Events (see `service/api/sse.py`)",
        "content": {"text/event-stream": {}},
    }
}


@router.post("/v1/auctions", response_model=AuctionResponse, responses={**STREAM_DOC, **ERRORS}, tags=["auctions"])
async def create_auction(body: AuctionRequest, request: Request, _: AuctionAccess, service: AuctionServiceDep) -> Any:
    """Run one auction: K samples of the answer, one served at random, ads priced at first price."""
    auction_id = uuid.uuid4().hex
    log_context.auction_id.set(auction_id)  # here, so that lines logged outside the auction's task carry it too
    request_id = getattr(request.state, "request_id", None)
    if not body.stream:
        return await cancel_on_disconnect(request, service.run(body, request_id, auction_id))

    events = service.stream(body, request_id, auction_id)

    async def first_event() -> StreamEvent:
        return await anext(events)

    try:  # errors before the first words (bad prompt, engine down) still get their status code
        first = await cancel_on_disconnect(request, first_event())
    except BaseException:
        await events.aclose()
        raise
    return StreamingResponse(
        auction_events(first, events, auction_id, service.model_name),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/healthz", tags=["health"], responses={503: {"model": ErrorResponse}})
async def healthz(request: Request) -> dict[str, str]:
    """The process is alive — and not holding a dead in-process engine, which only a restart brings back."""
    engine = getattr(request.app.state, "engine", None)
    if engine is not None and engine.is_dead():
        raise EngineUnavailable("the in-process engine died; this process must be restarted")
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
