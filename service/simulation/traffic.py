"""Simulated traffic against a running service: auctions over HTTP, then the simulated user's clicks on the served
answer through the real signed click links, so impressions and clicks land in the event log as in production."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from tqdm import tqdm

from service.simulation.contexts import CatalogContext
from service.simulation.users import ClickModel, simulate_clicks


@dataclass(frozen=True, slots=True)
class Served:
    item: CatalogContext
    response: dict[str, Any]
    clicked: tuple[str, ...]


class TrafficError(RuntimeError):
    pass


async def _one(
    client: httpx.AsyncClient,
    item: CatalogContext,
    options: dict[str, Any],
    click_model: ClickModel | None,
    click_seed: int,
) -> Served:
    response = await client.post("/v1/auctions", json=item.request(**options))
    if response.status_code != 200:
        raise TrafficError(f"auction failed: {response.status_code} {response.text[:500]}")
    body: dict[str, Any] = response.json()
    clicked: tuple[str, ...] = ()
    if click_model is not None:
        clicked = tuple(simulate_clicks(item.context, body["raw_text"], body["auction_id"], click_model, click_seed))
        links = {ad["id"]: ad["click_url"] for ad in body["ads"]}
        for ad_id in clicked:
            click = await client.get(links[ad_id], follow_redirects=False)
            if click.status_code >= 400:
                raise TrafficError(f"click failed: {click.status_code} {click.text[:500]}")
    return Served(item, body, clicked)


async def serve_auctions(
    url: str,
    items: Sequence[CatalogContext],
    options: dict[str, Any],
    *,
    click_model: ClickModel | None = None,
    click_seed: int = 0,
    concurrency: int = 8,
    desc: str = "auctions",
    timeout_s: float = 600.0,
) -> list[Served]:
    """Run one auction per context (``options``: the request's options), in order of the input; with a
    ``click_model``, the simulated user then clicks on the served answer's ads."""
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=timeout_s) as client:
        with tqdm(total=len(items), desc=desc, unit="auction") as bar:

            async def run(item: CatalogContext) -> Served:
                async with gate:
                    served = await _one(client, item, options, click_model, click_seed)
                bar.update()
                return served

            return list(await asyncio.gather(*(run(item) for item in items)))
