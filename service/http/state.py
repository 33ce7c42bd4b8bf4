"""The application's state, typed: what exists before the lifespan runs (``ServiceApp.settings``) and what the
lifespan opens (``ServiceApp.resources``: the ``State`` that ``service.app``'s lifespan yields, as polar's does,
and also keeps on the app for ASGI hosts without lifespan state, e.g. httpx's transport).

This module is the bottom of the HTTP layer: it imports no domain package. Each domain reads its own resource
through ``resource`` with the type it expects (its ``deps`` module), never with ``getattr`` on ``app.state``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar, cast

from fastapi import FastAPI, Request

from service.errors import ServiceError
from service.settings import Settings

T = TypeVar("T")


class ServiceApp(FastAPI):
    """The FastAPI app with its settings and, while the lifespan runs, its resources."""

    settings: Settings
    resources: Mapping[str, object] | None = None


def service_app(request: Request) -> ServiceApp:
    return cast(ServiceApp, request.app)


def resource(request: Request, name: str, kind: type[T]) -> T | None:
    """The lifespan's resource ``name`` (a key of ``service.app.State``), or None while the service starts."""
    resources = service_app(request).resources
    return None if resources is None else cast(T, resources[name])


def required(request: Request, name: str, kind: type[T], missing: ServiceError) -> T:
    """The lifespan's resource ``name``; ``missing`` (a 503) while the service starts."""
    value = resource(request, name, kind)
    if value is None:
        raise missing
    return value


def request_id_of(request: Request) -> str | None:
    """The id the request-id middleware put in the ASGI scope's state."""
    value = (request.scope.get("state") or {}).get("request_id")
    return value if isinstance(value, str) else None
