"""The FastAPI application: its lifespan opens the engine and builds the auction service, then closes them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service import __version__
from service.api.router import router as api_router
from service.api.serving import AuctionService
from service.clicks.router import router as clicks_router
from service.clicks.tokens import ClickSigner
from service.config import Settings, get_settings
from service.engine.vllm_engine import VLLMEngine
from service.errors import install_error_handlers
from service.mechanism.ctr import DEFAULT_CTR_MODEL
from service.mechanism.objective import ObjectiveWeights
from service.middleware import RequestIdMiddleware

logger = logging.getLogger(__name__)


def click_signer(settings: Settings) -> ClickSigner:
    keys = [k.get_secret_value() for k in settings.previous_secret_keys] + [settings.secret_key.get_secret_value()]
    return ClickSigner(keys, settings.base_url, settings.click_token_ttl_s)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with VLLMEngine.open(settings) as engine:
            app.state.engine = engine
            app.state.auctions = AuctionService(
                engine=engine,
                ctr_model=DEFAULT_CTR_MODEL,
                weights=ObjectiveWeights(
                    lam=settings.objective_lambda,
                    ad_penalty=settings.ad_penalty,
                    format_error_penalty=settings.format_error_penalty,
                ),
                click_signer=app.state.click_signer,
                settings=settings,
            )
            logger.info("serving model %s", engine.model_name)
            yield
            app.state.auctions = None
            app.state.engine = None

    app = FastAPI(
        title="LLM-Auction service",
        version=__version__,
        description="Ads inside an LLM's answer, allocated by the LLM and priced by first-price auction.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.click_signer = click_signer(settings)
    app.state.auctions = None
    app.state.engine = None
    install_error_handlers(app)
    app.include_router(api_router)
    app.include_router(clicks_router)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        # vLLM registers its engine metrics (vllm:*) in the default registry; they appear here too.
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(RequestIdMiddleware)
    return app
