"""LLM engines behind one interface (``base.Engine``): vLLM in-process, or remote vLLM servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from service.engine.base import Engine
from service.settings import Settings


@asynccontextmanager
async def open_engine(settings: Settings) -> AsyncIterator[Engine]:
    """The configured engine, opened for the life of the app (``AUCTION_ENGINE``)."""
    if settings.engine == "remote":
        from service.engine.remote import RemoteVLLMEngine

        async with RemoteVLLMEngine.open(settings) as remote:
            yield remote
    else:
        from service.engine.vllm_engine import VLLMEngine

        async with VLLMEngine.open(settings) as local:
            yield local
