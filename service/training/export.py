"""Export training data from the event streams through a consumer group (incremental, at-least-once).

Each run reads this consumer's pending entries and then the new ones of ``impressions`` and ``clicks``. An
impression older than the join window is *final*: its CTR rows (labels from the first click per ad that came
within the window) and DPO pairs are written, and it is acknowledged with its clicks. Younger impressions and
their clicks stay pending, so the next run sees them again: late clicks are tolerated. A click whose impression
is not among the entries read (already exported, or never logged) is acknowledged as an orphan once it is older
than the window. Files are written (and fsynced) before anything is acknowledged. ``final`` exports everything
at once (the end of a run); clicks still only count within the window.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from service.events.log import CLICKS, IMPRESSIONS
from service.mechanism.ctr import CTRModel
from service.mechanism.objective import ObjectiveWeights
from service.training.dataset import ctr_rows, dpo_pairs

Entry = tuple[str, dict[str, Any], bool]  # (stream entry id, event, flagged duplicate)


@dataclass
class ExportReport:
    impressions_exported: int = 0
    impressions_pending: int = 0
    impressions_cut_short: int = 0  # streamed answers the client left: partial samples, not used
    clicks_joined: int = 0
    clicks_duplicate: int = 0
    clicks_late: int = 0
    clicks_orphan: int = 0
    clicks_pending: int = 0
    ctr_rows: int = 0
    ctr_positives: int = 0
    dpo_pairs: int = 0
    dpo_contexts: int = 0
    files: list[str] = field(default_factory=list)


async def ensure_group(redis: aioredis.Redis, stream: str, group: str) -> None:
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def read_group(
    redis: aioredis.Redis, stream: str, group: str, consumer: str, page: int, progress: Callable[[int], None]
) -> list[Entry]:
    """This consumer's pending entries, then every new one."""
    entries: list[Entry] = []
    last = "0"
    while True:  # pending first (from a run that left them in the window, or crashed)
        reply: Any = await redis.xreadgroup(group, consumer, {stream: last}, count=page)
        batch = reply[0][1] if reply else []
        if not batch:
            break
        entries.extend(_decode(batch))
        last = batch[-1][0]
        progress(len(batch))
    while True:
        reply = await redis.xreadgroup(group, consumer, {stream: ">"}, count=page)
        batch = reply[0][1] if reply else []
        if not batch:
            break
        entries.extend(_decode(batch))
        progress(len(batch))
    return entries


def _decode(batch: list[Any]) -> Iterator[Entry]:
    for entry_id, fields in batch:
        if not fields:  # an entry trimmed away while pending
            continue
        eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        yield eid, json.loads(fields[b"data"]), fields.get(b"dup") == b"1"


def _write_outputs(out_dir: Path, stamp: str, outputs: dict[str, list[dict[str, Any]]]) -> list[str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for name, data in outputs.items():
        path = out_dir / f"{name}-{stamp}.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for row in data:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        files.append(str(path))
    return files


async def export(
    redis: aioredis.Redis,
    out_dir: Path,
    *,
    group: str,
    consumer: str,
    window_s: float,
    delta: float,
    ctr_model: CTRModel,
    weights: ObjectiveWeights,
    now: float | None = None,
    final: bool = False,
    page: int = 500,
    with_impressions: bool = False,
    progress: Callable[[int], None] = lambda n: None,
) -> ExportReport:
    """``final``: treat every impression as final now (end of a run), instead of waiting out its window.
    ``with_impressions``: also write the exported impressions themselves (to rebuild pairs with a later CTR model)."""
    now = time.time() if now is None else now
    cutoff = math.inf if final else now - window_s
    for stream in (IMPRESSIONS, CLICKS):
        await ensure_group(redis, stream, group)
    impressions = await read_group(redis, IMPRESSIONS, group, consumer, page, progress)
    clicks = await read_group(redis, CLICKS, group, consumer, page, progress)

    report = ExportReport()
    by_auction: dict[str, list[Entry]] = {}
    for entry in clicks:
        by_auction.setdefault(entry[1]["auction_id"], []).append(entry)
    known = {event["auction_id"] for _, event, _ in impressions}

    rows: list[dict[str, Any]] = []
    pairs: list[dict[str, Any]] = []
    ack_impressions: list[str] = []
    exported: list[dict[str, Any]] = []
    ack_clicks: list[str] = []
    for entry_id, event, _ in impressions:
        its_clicks = by_auction.get(event["auction_id"], [])
        if event["ts"] > cutoff:
            report.impressions_pending += 1
            report.clicks_pending += len(its_clicks)
            continue
        if event.get("cut_short"):
            report.impressions_cut_short += 1
            ack_impressions.append(entry_id)
            ack_clicks.extend(click_id for click_id, _, _ in its_clicks)
            continue
        clicked: set[str] = set()
        for click_id, click_event, duplicate in its_clicks:
            ack_clicks.append(click_id)
            if duplicate:
                report.clicks_duplicate += 1
            elif click_event["ts"] - event["ts"] > window_s:
                report.clicks_late += 1
            else:
                clicked.add(click_event["ad_id"])
                report.clicks_joined += 1
        new_rows = ctr_rows(event, clicked)
        rows.extend(new_rows)
        report.ctr_positives += sum(r["clicked"] for r in new_rows)
        new_pairs = dpo_pairs(event, ctr_model, weights, delta)
        pairs.extend(new_pairs)
        report.dpo_contexts += bool(new_pairs)
        ack_impressions.append(entry_id)
        exported.append(event)
        report.impressions_exported += 1
    for auction_id, its_clicks in by_auction.items():
        if auction_id in known:
            continue
        for click_id, click_event, _ in its_clicks:
            if click_event["ts"] <= cutoff:
                ack_clicks.append(click_id)
                report.clicks_orphan += 1
            else:
                report.clicks_pending += 1

    report.ctr_rows, report.dpo_pairs = len(rows), len(pairs)
    if ack_impressions:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
        outputs = {"ctr": rows, "dpo": pairs} | ({"impressions": exported} if with_impressions else {})
        report.files = await asyncio.to_thread(_write_outputs, out_dir, stamp, outputs)
    if ack_impressions:
        await redis.xack(IMPRESSIONS, group, *ack_impressions)
    if ack_clicks:
        await redis.xack(CLICKS, group, *ack_clicks)
    return report
