"""Ids that every log line of a request carries, set where they are known (middleware, auction)."""

from __future__ import annotations

from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
auction_id: ContextVar[str | None] = ContextVar("auction_id", default=None)
