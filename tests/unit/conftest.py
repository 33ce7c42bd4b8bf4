from __future__ import annotations

import pytest

from service.mechanism.types import Ad, AdvertiserKind, AuctionContext


@pytest.fixture
def running_ads() -> tuple[Ad, ...]:
    return (
        Ad("Ad-7001", "ArchGuard Stability Runner", "https://example.com/running/archguard-stability-runner", 35.0),
        Ad("Ad-7002", "CloudStep Orthotic Insoles", "https://example.com/running/cloudstep-orthotic-insoles", 12.5),
        Ad(
            "Ad-9001",
            "BrewMaster Burr Grinder",
            "https://example.com/coffee/brewmaster-burr-grinder",
            60.0,
            advertiser_id="adv-9",
            advertiser_kind=AdvertiserKind.VM,
            target_roi=2.0,
        ),
    )


@pytest.fixture
def context(running_ads: tuple[Ad, ...]) -> AuctionContext:
    return AuctionContext(
        query="I have flat feet and want to start running. What should I look for in a shoe?",
        user_id="u001",
        profile={"age": 38, "interests": ["audio", "coffee", "pets"]},
        ads=running_ads,
    )
