"""The FastAPI application: the lifespan opens Redis, the engine and the event log, builds the auction service,
and closes them in reverse order (the event log is flushed before the engine shuts down)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service import __version__
from service.api.router import router as api_router
from service.api.serving import AuctionService
from service.clicks.router import router as clicks_router
from service.clicks.tokens import ClickSigner
from service.config import Settings, get_settings
from service.demo.router import router as demo_router
from service.engine import open_engine
from service.errors import install_error_handlers
from service.events.log import EventLog
from service.events.spool import Spool
from service.mechanism.ctr import DEFAULT_CTR_MODEL, CTRModel
from service.mechanism.objective import ObjectiveWeights
from service.mechanism.prompt import PROMPT_VERSION
from service.middleware import RequestIdMiddleware
from service.observability import metrics
from service.observability.http import PrometheusMiddleware
from service.security.deps import MetricsAccess
from service.security.keys import KeyStore
from service.security.limits import BodySizeLimitMiddleware
from service.security.ratelimit import RateLimiter
from service.storage.redis import open_redis
from service.storage.sample_cache import SampleCache
from service.training.ctr_artifact import load_ctr_model

logger = logging.getLogger(__name__)


def click_signer(settings: Settings) -> ClickSigner:
    keys = [k.get_secret_value() for k in settings.previous_secret_keys] + [settings.secret_key.get_secret_value()]
    return ClickSigner(keys, settings.base_url, settings.click_token_ttl_s)


def ctr_model(settings: Settings) -> CTRModel:
    if settings.ctr_model_path is None:
        return DEFAULT_CTR_MODEL
    return load_ctr_model(settings.ctr_model_path)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            redis = await stack.enter_async_context(open_redis(settings))
            # The engine opens before the event log and closes after it: loading and shutting down the in-process
            # engine block the event loop for seconds, which must not fall in the middle of a Redis write.
            engine = await stack.enter_async_context(open_engine(settings))
            events = EventLog(
                redis,
                Spool(settings.spool_path),
                queue_size=settings.event_queue_size,
                batch_size=settings.event_batch_size,
                stream_maxlen=settings.event_stream_maxlen,
                dedupe_ttl_s=settings.event_dedupe_ttl_s,
                once_ttl_s=settings.click_token_ttl_s + settings.event_dedupe_ttl_s,
                retry_interval_s=settings.event_retry_interval_s,
            )
            await events.start()
            stack.push_async_callback(events.close)
            auctions = AuctionService(
                engine=engine,
                ctr_model=ctr_model(settings),
                weights=ObjectiveWeights(
                    lam=settings.objective_lambda,
                    ad_penalty=settings.ad_penalty,
                    format_error_penalty=settings.format_error_penalty,
                ),
                click_signer=app.state.click_signer,
                events=events,
                cache=SampleCache(redis, settings.sample_cache_ttl_s) if settings.sample_cache_ttl_s else None,
                settings=settings,
            )
            stack.push_async_callback(auctions.drain)
            app.state.keys = KeyStore(settings.api_keys, redis)
            app.state.rate_limiter = RateLimiter(redis, settings.rate_limit_per_minute, settings.rate_limit_burst)
            app.state.redis, app.state.events, app.state.engine, app.state.auctions = redis, events, engine, auctions
            metrics.BUILD_INFO.labels(__version__, engine.model_name, auctions.ctr_model_version, PROMPT_VERSION).set(1)
            metrics.ENGINE_READY.set(1)
            logger.info("serving model %s", engine.model_name)
            yield
            metrics.ENGINE_READY.set(0)
            app.state.auctions = app.state.engine = app.state.events = app.state.keys = app.state.rate_limiter = None

    app = FastAPI(
        title="LLM-Auction service",
        version=__version__,
        description="Ads inside an LLM's answer, allocated by the LLM and priced by first-price auction.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.click_signer = click_signer(settings)
    app.state.auctions = app.state.engine = app.state.events = app.state.keys = app.state.rate_limiter = None
    install_error_handlers(app)
    app.include_router(api_router)
    app.include_router(clicks_router)
    app.include_router(demo_router)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics(_: MetricsAccess) -> Response:
        # vLLM registers its engine metrics (vllm:*) in the default registry; they appear here too.
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(PrometheusMiddleware)
    app.add_middleware(RequestIdMiddleware)  # outermost: ids are set before anything logs
    return app
