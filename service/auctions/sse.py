"""Server-Sent Events for streamed auctions, wire-compatible with OpenAI's ``chat.completion.chunk`` stream.

``data:`` events are chunks (the first carries ``role``, the next ``content`` pieces, the last an empty delta and
``finish_reason``), so OpenAI SDKs and ``onmessage`` handlers read the answer unchanged. The auction result comes
as one named event, ``event: auction`` (ignored by those clients), then ``data: [DONE]``. An error after the
stream started is one ``data: {"error": {...}}`` event, then the stream ends (as vLLM's server does).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from service.auctions.stream import StreamDelta, StreamEnd, StreamEvent, StreamResult
from service.errors import ServiceError, service_error_envelope

logger = logging.getLogger(__name__)


def sse(data: str, event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return head + "".join(f"data: {line}\n" for line in data.split("\n")) + "\n"


def chunk(auction_id: str, model: str, created: int, delta: dict[str, str], finish_reason: str | None) -> str:
    body: dict[str, Any] = {
        "id": f"auction-{auction_id}",
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
    return sse(json.dumps(body, ensure_ascii=False))


async def auction_events(
    first: StreamEvent, rest: AsyncGenerator[StreamEvent, None], auction_id: str, model: str, request_id: str | None
) -> AsyncIterator[str]:
    created = int(time.time())
    yield chunk(auction_id, model, created, {"role": "assistant", "content": ""}, None)
    try:
        event: StreamEvent | None = first
        while event is not None:
            if isinstance(event, StreamDelta):
                yield chunk(auction_id, model, created, {"content": event.text}, None)
            elif isinstance(event, StreamEnd):
                yield chunk(auction_id, model, created, {}, event.finish_reason or "stop")
            elif isinstance(event, StreamResult):
                yield sse(event.response.model_dump_json(), event="auction")
            event = await anext(rest, None)
    except ServiceError as exc:
        yield sse(json.dumps(service_error_envelope(exc, request_id)))
        return
    finally:
        await rest.aclose()  # if the client left, this aborts the K samples
    yield sse("[DONE]")
