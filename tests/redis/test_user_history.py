"""The user's click history in Redis (the CTR model's ``user_click_rate``): exposures counted with the frequency
caps in one script call, each auction's first click per ad counted once, billed or not."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis

from service.controls.store import AdvertiserConfig, ControlStore
from service.mechanism.relevance import user_click_rate


async def test_exposures_and_first_clicks_make_the_users_history(redis: aioredis.Redis) -> None:
    store = ControlStore(redis, click_ttl_s=600)
    user, other = f"u-{uuid.uuid4().hex}", f"u-{uuid.uuid4().hex}"
    adv = f"adv-{uuid.uuid4().hex}"
    await store.set_advertiser(adv, AdvertiserConfig(daily_budget=0.5))
    empty = await store.snapshot([adv], ["Ad-1"], user)
    assert (empty.user_shown, empty.user_clicked) == (0, 0)

    await store.count_impression(user, [("Ad-1", adv, 3600), ("Ad-2", adv, 3600)], "auction-1")
    await store.count_impression(user, [("Ad-1", adv, 3600)], "auction-2")
    await store.count_impression(other, [("Ad-1", adv, 3600)], "auction-3")
    assert (await store.snapshot([adv], ["Ad-1"], user)).user_shown == 3

    assert (await store.charge("auction-1", "Ad-1", adv, 0.6)).billed
    assert not (await store.charge("auction-1", "Ad-1", adv, 0.6)).billed  # a repeated click: counted once
    refused = await store.charge("auction-2", "Ad-1", adv, 0.6)  # the budget is spent: not billed, still a click
    assert (refused.billed, refused.reason) == (False, "budget_exhausted")
    await store.charge("auction-2", "Ad-1", adv, 0.6)
    await store.charge("auction-unknown", "Ad-1", adv, 0.6)  # no impression on record: nobody's history
    snapshot = await store.snapshot([adv], ["Ad-1"], user)
    assert (snapshot.user_shown, snapshot.user_clicked) == (3, 2)
    assert (await store.snapshot([adv], ["Ad-1"], other)).user_clicked == 0
    assert await redis.ttl(f"uhist:{user}") > 29 * 24 * 3600


def test_the_smoothed_rate_starts_at_the_prior_and_follows_the_history() -> None:
    assert user_click_rate(0, 0) == pytest.approx(0.1)
    assert user_click_rate(100, 40) == pytest.approx(41 / 110)
    assert user_click_rate(5, 0) < user_click_rate(0, 0) < user_click_rate(5, 3)
