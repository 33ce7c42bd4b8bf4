"""Dependencies every route may use, as ``Annotated`` aliases (domain packages keep theirs in their ``deps``).

Every dependency is ``async def`` although none awaits: FastAPI runs a plain ``def`` dependency in its thread
pool, a thread hop per dependency per request (2.9 % of the cache-hit path's GIL time, docs/benchmarks.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.http.state import request_id_of, service_app
from service.settings import Settings


async def get_settings(request: Request) -> Settings:
    return service_app(request).settings


async def get_request_id(request: Request) -> str | None:
    return request_id_of(request)


SettingsDep = Annotated[Settings, Depends(get_settings)]
RequestIdDep = Annotated[str | None, Depends(get_request_id)]
