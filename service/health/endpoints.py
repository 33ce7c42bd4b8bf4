"""Liveness, readiness and the Prometheus scrape."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.auctions.schemas import ErrorResponse
from service.engine.deps import EngineDep, current_engine
from service.errors import EngineUnavailable, ServiceError
from service.observability import metrics
from service.security.deps import MetricsAccess

router = APIRouter(tags=["health"])


@router.get("/healthz", responses={503: {"model": ErrorResponse}})
async def healthz(request: Request) -> dict[str, str]:
    """The process is alive — and not holding a dead in-process engine, which only a restart brings back."""
    engine = current_engine(request)
    if engine is not None and engine.is_dead():
        raise EngineUnavailable("the in-process engine died; this process must be restarted")
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"model": ErrorResponse}})
async def readyz(engine: EngineDep) -> dict[str, str]:
    """The engine is loaded and answering."""
    try:
        await engine.check_health()
    except ServiceError:
        metrics.ENGINE_READY.set(0)
        raise
    metrics.ENGINE_READY.set(1)
    return {"status": "ready", "model": engine.model_name}


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(_: MetricsAccess) -> Response:
    # vLLM registers its engine metrics (vllm:*) in the default registry; they appear here too.
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
