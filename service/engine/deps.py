"""The engine as a route dependency (readiness, health)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.engine.base import Engine
from service.errors import EngineUnavailable
from service.http.state import resource


def current_engine(request: Request) -> Engine | None:
    return resource(request, "engine", Engine)  # type: ignore[type-abstract]


async def get_engine(request: Request) -> Engine:
    engine = current_engine(request)
    if engine is None:
        raise EngineUnavailable("the engine is not loaded")
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]
