"""Authentication and rate limiting as route dependencies (``AuctionAccess``, ``MetricsAccess``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.errors import Forbidden, RateLimited, ServiceStarting, Unauthorized
from service.http.state import resource, service_app
from service.observability import metrics
from service.security.keys import ApiKey, KeyStore
from service.security.ratelimit import RateLimiter


def presented_key(request: Request) -> str | None:
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    return request.headers.get("x-api-key") or None


async def authenticate(request: Request, scope: str) -> ApiKey | None:
    """The caller's key (None when authentication is off); 401 without a valid key, 403 without the scope.

    Auctions need a key when ``auth_required`` (production by default); the Prometheus scrape needs one exactly
    when ``metrics_require_key`` is set, in every environment (a scrape config sends a metrics-scoped key then)."""
    settings = service_app(request).settings
    # The admin API moves money (budgets, caps): it always needs a key with the admin scope.
    required = {"metrics": settings.metrics_require_key, "admin": True}.get(scope, settings.auth_required)
    if not required:
        return None
    keys = resource(request, "keys", KeyStore)
    if keys is None:
        raise ServiceStarting("the service is starting: the key store is not open yet")
    presented = presented_key(request)
    if presented is None:
        metrics.AUTH_FAILURES.labels("missing").inc()
        raise Unauthorized("an API key is required: Authorization: Bearer <key> (or X-API-Key)")
    key = await keys.lookup(presented)
    if key is None:
        metrics.AUTH_FAILURES.labels("invalid").inc()
        raise Unauthorized("unknown or revoked API key")
    if scope not in key.scopes:
        metrics.AUTH_FAILURES.labels("forbidden").inc()
        raise Forbidden(f"the key {key.name!r} may not use {scope}")
    request.state.api_key = key.name
    return key


async def auction_access(request: Request) -> ApiKey | None:
    key = await authenticate(request, "auctions")
    limiter = resource(request, "rate_limiter", RateLimiter)
    if limiter is not None:
        identity = f"key:{key.name}" if key else f"addr:{request.client.host if request.client else 'unknown'}"
        decision = await limiter.check(identity, key.per_minute if key else None)
        if not decision.allowed:
            metrics.RATE_LIMITED.inc()
            raise RateLimited(
                f"rate limit reached ({key.per_minute if key and key.per_minute is not None else limiter.per_minute}"
                f" auctions per minute); retry in {decision.retry_after_s} s",
                decision.retry_after_s,
            )
    return key


async def metrics_access(request: Request) -> None:
    await authenticate(request, "metrics")


async def admin_access(request: Request) -> ApiKey | None:
    return await authenticate(request, "admin")


AuctionAccess = Annotated[ApiKey | None, Depends(auction_access)]
MetricsAccess = Annotated[None, Depends(metrics_access)]
AdminAccess = Annotated[ApiKey | None, Depends(admin_access)]
