"""The FastAPI application. The lifespan resolves the served model version, opens Redis, the engine and the
event log, builds the auction service, yields the typed ``State``, and closes them in reverse order (the event
log is flushed before the engine shuts down)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TypedDict, cast

import redis.asyncio as aioredis

from service import __version__
from service.auctions.endpoints import router as auctions_router
from service.auctions.service import AuctionService
from service.clicks.endpoints import router as clicks_router
from service.clicks.tokens import ClickSigner
from service.controls.endpoints import router as admin_router
from service.controls.service import Controls, Limits
from service.controls.store import ControlStore
from service.controls.topics import BUILT_IN, TopicGate
from service.demo.endpoints import router as demo_router
from service.engine import open_engine
from service.engine.base import Engine
from service.errors import install_error_handlers
from service.events.log import EventLog
from service.events.spool import Spool
from service.health.endpoints import router as health_router
from service.http import middleware
from service.http.state import ServiceApp
from service.mechanism.ctr import DEFAULT_CTR_MODEL, CTRModel
from service.mechanism.objective import ObjectiveWeights
from service.mechanism.prompt import format_or_default
from service.models.ctr_artifact import load_ctr_model
from service.models.encoder import Encoder
from service.models.resolve import open_encoder, serving_settings
from service.observability import metrics
from service.security.keys import KeyStore
from service.security.ratelimit import RateLimiter
from service.settings import Settings, get_settings
from service.storage.redis import open_redis
from service.storage.sample_cache import SampleCache

logger = logging.getLogger(__name__)


class State(TypedDict):
    """What the lifespan opens; each domain's ``deps`` reads its entry by this name."""

    redis: aioredis.Redis
    engine: Engine
    events: EventLog
    auctions: AuctionService
    click_signer: ClickSigner
    encoder: Encoder
    controls: Controls
    keys: KeyStore
    rate_limiter: RateLimiter


def click_signer(settings: Settings) -> ClickSigner:
    keys = [k.get_secret_value() for k in settings.previous_secret_keys] + [settings.secret_key.get_secret_value()]
    return ClickSigner(keys, settings.base_url, settings.click_token_ttl_s)


def ctr_model(settings: Settings) -> CTRModel:
    if settings.ctr_model_path is None:
        return DEFAULT_CTR_MODEL
    return load_ctr_model(settings.ctr_model_path)


def weights(settings: Settings) -> ObjectiveWeights:
    return ObjectiveWeights(
        lam=settings.objective_lambda,
        ad_penalty=settings.ad_penalty,
        format_error_penalty=settings.format_error_penalty,
    )


def create_app(settings: Settings | None = None) -> ServiceApp:
    configured = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: ServiceApp) -> AsyncIterator[State]:
        signer = click_signer(configured)
        # Every entry point (serve, tests, benchmarks, jobs) comes through here: the one place the served model
        # version is resolved (merged once, cached), off the event loop.
        settings = await asyncio.to_thread(serving_settings, configured)
        encoder = await asyncio.to_thread(open_encoder, settings)  # before ready: /readyz waits for it
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
            controls = Controls(
                ControlStore(redis, settings.click_token_ttl_s + settings.event_dedupe_ttl_s),
                TopicGate(
                    encoder,
                    [BUILT_IN[name] for name in settings.sensitive_topics],
                    settings.sensitive_topic_threshold,
                ),
                Limits(settings.reserve_price, settings.frequency_cap, settings.frequency_window_s),
            )
            auctions = AuctionService(
                engine=engine,
                ctr_model=ctr_model(settings),
                encoder=encoder,
                controls=controls,
                weights=weights(settings),
                click_signer=signer,
                events=events,
                cache=SampleCache(redis, settings.sample_cache_ttl_s) if settings.sample_cache_ttl_s else None,
                settings=settings,
            )
            stack.push_async_callback(auctions.drain)
            state = State(
                click_signer=signer,
                encoder=encoder,
                controls=controls,
                redis=redis,
                engine=engine,
                events=events,
                auctions=auctions,
                keys=KeyStore(settings.api_keys, redis),
                rate_limiter=RateLimiter(redis, settings.rate_limit_per_minute, settings.rate_limit_burst),
            )
            app.resources = state
            prompt = format_or_default(settings.prompt_format)
            metrics.BUILD_INFO.labels(__version__, engine.model_name, auctions.ctr_model.version, prompt).set(1)
            metrics.ENGINE_READY.set(1)
            logger.info("serving model %s", engine.model_name)
            try:
                yield state
            finally:
                metrics.ENGINE_READY.set(0)
                app.resources = None

    app = ServiceApp(
        title="LLM-Auction service",
        version=__version__,
        description="Ads inside an LLM's answer, allocated by the LLM and priced by an auction.",
        lifespan=lifespan,
    )
    app.settings = configured
    install_error_handlers(app)
    app.include_router(auctions_router)
    app.include_router(clicks_router)
    app.include_router(health_router)
    app.include_router(demo_router)
    app.include_router(admin_router)
    middleware.install(app, configured.max_body_bytes)
    return app


@asynccontextmanager
async def running(app: ServiceApp) -> AsyncIterator[State]:
    """The app's lifespan run in this process (benchmarks, tests): its resources while it runs."""
    async with app.router.lifespan_context(app):
        if app.resources is None:
            raise RuntimeError("the lifespan did not open the service's resources")
        yield cast(State, app.resources)
