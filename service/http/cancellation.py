"""Cancel work whose client has gone: an auction nobody will read should not hold K samples of GPU/CPU time.

Same pattern as vLLM's ``with_cancellation``: race the handler against the ASGI ``http.disconnect`` message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from fastapi import Request

from service.errors import ServiceError

T = TypeVar("T")


class ClientClosedRequest(ServiceError):
    status_code = 499  # nginx's code for "client closed request"; nobody reads it
    error_type = "client_closed_request"


async def _wait_for_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def cancel_on_disconnect(request: Request, work: Coroutine[Any, Any, T]) -> T:
    handler = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_wait_for_disconnect(request))
    try:
        await asyncio.wait({handler, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not handler.done():
            handler.cancel()  # cancelling the engine call aborts all K samples
    if handler.cancelled():
        raise ClientClosedRequest("the client closed the connection; generation was aborted")
    return handler.result()
