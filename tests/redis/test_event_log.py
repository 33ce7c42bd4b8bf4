"""The event log against a real redis-server: exactly-once delivery through outages, slowness and restarts."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from service.events.log import CLICKS, IMPRESSIONS, EventLog
from service.events.spool import Spool
from service.storage.redis import RedisServer


def new_log(redis: aioredis.Redis, spool_path: Path, queue_size: int = 10_000) -> EventLog:
    return EventLog(redis, Spool(spool_path), queue_size=queue_size, retry_interval_s=0.2)


async def entries(redis: aioredis.Redis, stream: str) -> list[dict[bytes, bytes]]:
    """The field maps of every entry of ``stream``, oldest first."""
    reply: Any = await redis.xrange(stream)
    return [fields for _, fields in reply]


async def stream_ids(redis: aioredis.Redis, stream: str) -> list[str]:
    return [fields[b"id"].decode() for fields in await entries(redis, stream)]


async def wait_for(seconds: float, check: Callable[[], Awaitable[bool]]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached")


async def test_events_reach_their_streams_once(redis: aioredis.Redis, tmp_path: Path) -> None:
    log = new_log(redis, tmp_path / "spool.jsonl")
    await log.start()
    for i in range(250):
        log.emit(IMPRESSIONS, {"auction_id": f"a{i}", "n": i}, event_id=f"imp:a{i}")
    await log.flush()
    await log.close()
    ids = await stream_ids(redis, IMPRESSIONS)
    assert ids == [f"imp:a{i}" for i in range(250)]  # all, once, in order
    entry = (await entries(redis, IMPRESSIONS))[0]
    assert json.loads(entry[b"data"]) == {"auction_id": "a0", "n": 0}
    assert log.stats["impressions.written"] == 250
    assert log.stats["impressions.spooled"] == 0


async def test_repeated_click_is_flagged_not_counted_twice(redis: aioredis.Redis, tmp_path: Path) -> None:
    log = new_log(redis, tmp_path / "spool.jsonl")
    await log.start()
    for i in range(3):
        log.emit(CLICKS, {"auction_id": "a1", "ad_id": "Ad-1"}, event_id=f"click:{i}", once="a1:Ad-1")
    log.emit(CLICKS, {"auction_id": "a1", "ad_id": "Ad-2"}, event_id="click:other", once="a1:Ad-2")
    await log.close()
    flags = [fields[b"dup"] for fields in await entries(redis, CLICKS)]
    assert flags == [b"0", b"1", b"1", b"0"]
    assert log.stats["clicks.duplicate"] == 2


async def test_redis_down_spools_then_replays_exactly_once(
    redis: aioredis.Redis, redis_server: RedisServer, tmp_path: Path
) -> None:
    log = new_log(redis, tmp_path / "spool.jsonl")
    await log.start()
    log.emit(IMPRESSIONS, {"n": 0}, event_id="e0")
    await log.flush()

    redis_server.stop()
    started = time.monotonic()
    for i in range(1, 101):
        log.emit(IMPRESSIONS, {"n": i}, event_id=f"e{i}")
        log.emit(CLICKS, {"n": i}, event_id=f"c{i}", once=f"k{i % 10}")
    assert time.monotonic() - started < 0.5  # emitting never waits on Redis
    await log.flush()
    assert log.stats["impressions.spooled"] == 100
    assert log.stats["clicks.spooled"] == 100
    assert log.spooled == 200
    assert not log.redis_up

    redis_server.start()  # same port, same data dir: the AOF brings back e0
    await wait_for(15, lambda: _spool_empty(log))
    await log.close()
    assert await stream_ids(redis, IMPRESSIONS) == [f"e{i}" for i in range(101)]
    assert await stream_ids(redis, CLICKS) == [f"c{i}" for i in range(1, 101)]
    flags = [f[b"dup"] for f in await entries(redis, CLICKS)]
    assert flags.count(b"0") == 10  # once per key k0..k9
    assert log.stats["impressions.replayed"] == 100
    assert log.stats["impressions.dropped"] == log.stats["clicks.dropped"] == 0


async def _spool_empty(log: EventLog) -> bool:
    return log.spooled == 0 and log.redis_up


async def test_slow_redis_spools_and_replay_does_not_duplicate(redis: aioredis.Redis, tmp_path: Path) -> None:
    log = new_log(redis, tmp_path / "spool.jsonl")
    await log.start()
    # Writes stall for 2.5 s: the writer's 1 s socket timeout fires while Redis may still apply the batch later.
    await redis.client_pause(2500, all=False)
    for i in range(20):
        log.emit(IMPRESSIONS, {"n": i}, event_id=f"slow{i}")
    await log.flush()
    await wait_for(20, lambda: _spool_empty(log))
    await log.close()
    ids = await stream_ids(redis, IMPRESSIONS)
    assert sorted(ids) == sorted(f"slow{i}" for i in range(20))  # every event, none twice
    assert log.stats["impressions.spooled"] >= 1


async def test_spool_survives_a_restart_of_the_service(
    redis: aioredis.Redis, redis_server: RedisServer, tmp_path: Path
) -> None:
    spool = tmp_path / "spool.jsonl"
    redis_server.stop()
    first = new_log(redis, spool)
    await first.start()
    for i in range(30):
        first.emit(IMPRESSIONS, {"n": i}, event_id=f"r{i}")
    await first.close()  # shutdown with Redis down: everything lands in the spool file
    assert len(Spool(spool)) == 30

    redis_server.start()
    await redis.ping()
    second = new_log(redis, spool)
    await second.start()  # replays the previous process's spool first
    await wait_for(10, lambda: _spool_empty(second))
    await second.close()
    assert await stream_ids(redis, IMPRESSIONS) == [f"r{i}" for i in range(30)]


async def test_replay_after_crash_between_write_and_cleanup_is_idempotent(
    redis: aioredis.Redis, tmp_path: Path
) -> None:
    spool_path = tmp_path / "spool.jsonl"
    log = new_log(redis, spool_path)
    await log.start()
    for i in range(10):
        log.emit(IMPRESSIONS, {"n": i}, event_id=f"x{i}")
    await log.close()
    # As if a process died after writing these to Redis but before deleting its spool snapshot:
    records = [{"stream": IMPRESSIONS, "id": f"x{i}", "once": None, "data": json.dumps({"n": i})} for i in range(10)]
    Spool(spool_path).append(records)
    again = new_log(redis, spool_path)
    await again.start()
    await wait_for(10, lambda: _spool_empty(again))
    await again.close()
    assert await stream_ids(redis, IMPRESSIONS) == [f"x{i}" for i in range(10)]
    assert again.stats["impressions.already_stored"] == 10


async def test_full_queue_spools_instead_of_dropping(redis: aioredis.Redis, tmp_path: Path) -> None:
    log = new_log(redis, tmp_path / "spool.jsonl", queue_size=5)
    await log.start()
    for i in range(50):  # no await in between: the writer cannot drain, the queue overflows
        log.emit(IMPRESSIONS, {"n": i}, event_id=f"q{i}")
    assert log.stats["impressions.queued"] == 5
    assert log.stats["impressions.spooled"] == 45
    await log.flush()
    await wait_for(10, lambda: _spool_empty(log))
    await log.close()
    assert sorted(await stream_ids(redis, IMPRESSIONS)) == sorted(f"q{i}" for i in range(50))


async def test_dropped_only_when_the_spool_cannot_be_written(
    redis: aioredis.Redis, redis_server: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool_path = tmp_path / "spool.jsonl"
    log = new_log(redis, spool_path)
    spool_path.mkdir()  # the spool "file" is now a directory: every append fails like a full disk
    redis_server.stop()
    await log.start()
    log.emit(IMPRESSIONS, {"n": 1}, event_id="lost")
    await log.close()
    assert log.stats["impressions.dropped"] == 1
    assert "they are lost" in caplog.text


async def test_events_with_integers_beyond_64_bits_are_still_logged(redis: aioredis.Redis, tmp_path: Path) -> None:
    # Found by fuzzing: a free-form profile holding -49700678464559017623552 made the fast JSON encoder fail.
    log = new_log(redis, tmp_path / "spool.jsonl")
    await log.start()
    log.emit(IMPRESSIONS, {"profile": {"n": -49700678464559017623552}}, event_id="big")
    await log.close()
    [entry] = await entries(redis, IMPRESSIONS)
    assert json.loads(entry[b"data"]) == {"profile": {"n": -49700678464559017623552}}
