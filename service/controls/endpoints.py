"""The admin API (an API key with the ``admin`` scope, always): advertisers' budgets, pacing, frequency caps,
topic exclusions and display names; the publisher's blocked categories; spend read back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from service.controls.deps import ControlsDep
from service.controls.service import Controls
from service.controls.store import AdvertiserConfig
from service.errors import ErrorResponse
from service.observability import metrics
from service.security.deps import AdminAccess

router = APIRouter(prefix="/admin", tags=["admin"])

AdvertiserId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$", max_length=64)]
ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse} for status in (400, 401, 403, 413, 422, 503)
}


class AdvertiserSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(max_length=128)] | None = Field(default=None, description="Display name")
    daily_budget: Annotated[float, Field(strict=True, ge=0)] | None = Field(
        default=None, description="Per UTC day; null: none"
    )
    total_budget: Annotated[float, Field(strict=True, ge=0)] | None = None
    pacing: StrictBool = Field(default=False, description="Spend the daily budget evenly over the day")
    cap: Annotated[int, Field(strict=True, ge=1)] | None = Field(
        default=None, description="Impressions per user and ad per window"
    )
    advertiser_cap: Annotated[int, Field(strict=True, ge=1)] | None = Field(
        default=None, description="Per user, all its ads"
    )
    cap_window_s: Annotated[int, Field(strict=True, ge=1)] | None = None
    excluded_topics: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        default_factory=list, description="Question categories next to which its ads never run"
    )


class AdvertiserView(AdvertiserSettings):
    id: str
    spent_today: float
    spent_total: float
    daily_budget_left: float | None
    total_budget_left: float | None


class BlockedCategories(BaseModel):
    model_config = ConfigDict(extra="forbid")

    categories: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(max_length=256)


async def _view(controls: Controls, advertiser: str) -> AdvertiserView:
    config, state = await controls.store.advertiser(advertiser)
    daily_left = None if config.daily_budget is None else max(0.0, config.daily_budget - state.spent_today)
    total_left = None if config.total_budget is None else max(0.0, config.total_budget - state.spent_total)
    if daily_left is not None:
        metrics.BUDGET_LEFT.labels(advertiser).set(daily_left)
    return AdvertiserView(
        id=advertiser,
        name=config.name,
        daily_budget=config.daily_budget,
        total_budget=config.total_budget,
        pacing=config.pacing,
        cap=config.cap,
        advertiser_cap=config.advertiser_cap,
        cap_window_s=config.cap_window_s,
        excluded_topics=list(config.excluded_topics),
        spent_today=state.spent_today,
        spent_total=state.spent_total,
        daily_budget_left=daily_left,
        total_budget_left=total_left,
    )


@router.put("/advertisers/{advertiser}", response_model=AdvertiserView, responses=ERRORS)
async def set_advertiser(
    advertiser: AdvertiserId, body: AdvertiserSettings, controls: ControlsDep, _: AdminAccess
) -> AdvertiserView:
    """Set an advertiser's budgets, pacing, caps, exclusions and name (replaces what was set before)."""
    await controls.store.set_advertiser(advertiser, AdvertiserConfig(**body.model_dump()))
    return await _view(controls, advertiser)


@router.get("/advertisers/{advertiser}", response_model=AdvertiserView, responses=ERRORS)
async def get_advertiser(advertiser: AdvertiserId, controls: ControlsDep, _: AdminAccess) -> AdvertiserView:
    """An advertiser's settings and spend (today, UTC, and in total) with the budget left."""
    return await _view(controls, advertiser)


@router.put("/blocked-categories", response_model=BlockedCategories, responses=ERRORS)
async def set_blocked(body: BlockedCategories, controls: ControlsDep, _: AdminAccess) -> BlockedCategories:
    """The publisher's blocked ad categories, for every auction (requests may add their own)."""
    await controls.store.set_blocked(body.categories)
    return BlockedCategories(categories=sorted(await controls.store.blocked()))


@router.get("/blocked-categories", response_model=BlockedCategories, responses=ERRORS)
async def get_blocked(controls: ControlsDep, _: AdminAccess) -> BlockedCategories:
    return BlockedCategories(categories=sorted(await controls.store.blocked()))
