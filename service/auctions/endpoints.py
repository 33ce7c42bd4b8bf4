"""Routes of the auction API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from service.auctions import stream as streaming
from service.auctions.deps import AuctionServiceDep
from service.auctions.mapping import new_auction_id
from service.auctions.schemas import AuctionRequest, AuctionResponse, ErrorResponse
from service.auctions.sse import auction_events
from service.auctions.stream import StreamEvent
from service.http.cancellation import cancel_on_disconnect
from service.http.deps import RequestIdDep
from service.observability import log_context
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
        "description": "The auction; with `stream: true`, Server-Sent Events (see `service/auctions/sse.py`)",
        "content": {"text/event-stream": {}},
    }
}


@router.post("/v1/auctions", response_model=AuctionResponse, responses={**STREAM_DOC, **ERRORS}, tags=["auctions"])
async def create_auction(
    body: AuctionRequest, request: Request, service: AuctionServiceDep, _: AuctionAccess, request_id: RequestIdDep
) -> Any:
    """Run one auction: K samples of the answer, one served, ads priced."""
    auction_id = new_auction_id()  # the one place an auction gets its id
    log_context.auction_id.set(auction_id)  # here, so that lines logged outside the auction's task carry it too
    if not body.stream:
        return await cancel_on_disconnect(request, service.run(body, auction_id, request_id))

    events = streaming.stream(service, body, auction_id, request_id)

    async def first_event() -> StreamEvent:
        return await anext(events)

    try:  # errors before the first words (bad prompt, engine down) still get their status code
        first = await cancel_on_disconnect(request, first_event())
    except BaseException:
        await events.aclose()
        raise
    return StreamingResponse(
        auction_events(first, events, auction_id, service.model_name, request_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
