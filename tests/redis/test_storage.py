"""Embedded redis-server and the sample cache, on real Redis."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from service.engine.base import Generation, Sample, SamplingRequest
from service.settings import Settings
from service.storage.redis import RedisServer, client, open_redis
from service.storage.sample_cache import SampleCache, cache_key


async def test_embedded_server_starts_with_aof_and_stops(tmp_path: Path) -> None:
    settings = Settings(secret_key="s" * 40, redis_url=None, redis_data_dir=tmp_path)
    async with open_redis(settings) as redis:
        assert await redis.ping()
        assert await redis.config_get("appendonly") == {"appendonly": "yes"}
        url = (tmp_path / "redis.url").read_text()
        # A second user of the same data dir (e.g. the export CLI) joins the running server, never starts another.
        async with open_redis(settings) as again:
            await again.set("shared", "1")
        assert await redis.get("shared") == b"1"
    assert not (tmp_path / "redis.url").exists()
    assert (tmp_path / "redis.log").exists()
    stopped = client(url, timeout_s=0.5)
    await asyncio.sleep(1.5)  # the watchdog is gone too: nothing restarts the server
    with pytest.raises(RedisConnectionError):  # the server stopped with the context
        await stopped.ping()
    await stopped.aclose()


async def test_embedded_server_is_restarted_when_it_dies(tmp_path: Path) -> None:
    settings = Settings(secret_key="s" * 40, redis_url=None, redis_data_dir=tmp_path)
    async with open_redis(settings) as redis:
        await redis.set("kept", "1")
        await redis.config_set("appendfsync", "always")  # so that SIGKILL loses nothing
        await redis.set("kept", "2")
        pid = int((await redis.info("server"))["process_id"])
        os.kill(pid, signal.SIGKILL)  # a crash, not a clean shutdown
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            try:
                if await redis.get("kept") == b"2":
                    break
            except RedisConnectionError:
                pass
            assert asyncio.get_running_loop().time() < deadline, "the embedded server was not restarted"
            await asyncio.sleep(0.2)
        assert int((await redis.info("server"))["process_id"]) != pid


def generation() -> Generation:
    samples = tuple(Sample(index=i, text=f"answer {i}", finish_reason="stop", num_tokens=3 + i) for i in range(4))
    return Generation(samples=samples, prompt_tokens=100)


SAMPLING = SamplingRequest(n=4, max_tokens=32, temperature=0.7, top_p=0.8, seed=99)


async def test_cache_round_trip_keeps_samples_and_seed(redis: aioredis.Redis) -> None:
    cache = SampleCache(redis, ttl_s=60)
    key = cache_key("m", "hash", SAMPLING, seeded=False)
    assert await cache.get(key) is None
    await cache.put(key, generation(), seed=99)
    cached = await cache.get(key)
    assert cached is not None
    assert cached[0].samples == generation().samples
    assert cached[1] == 99
    assert 0 < await redis.ttl(key) <= 60


def test_cache_keys_separate_what_must_differ() -> None:
    base = cache_key("m", "hash", SAMPLING, seeded=False)
    # An unseeded context shares one entry whatever random seed it drew.
    assert base == cache_key("m", "hash", dataclasses.replace(SAMPLING, seed=1), seeded=False)
    assert base != cache_key("m", "hash", SAMPLING, seeded=True)
    assert cache_key("m", "hash", SAMPLING, seeded=True) != cache_key(
        "m", "hash", dataclasses.replace(SAMPLING, seed=1), seeded=True
    )
    assert base != cache_key("other-model", "hash", SAMPLING, seeded=False)
    assert base != cache_key("m", "other-prompt", SAMPLING, seeded=False)
    assert base != cache_key("m", "hash", dataclasses.replace(SAMPLING, n=8), seeded=False)
    assert base != cache_key("m", "hash", dataclasses.replace(SAMPLING, temperature=0.9), seeded=False)


async def test_cache_degrades_to_a_miss_when_redis_is_down(redis_server: RedisServer) -> None:
    cache_client = client(redis_server.url, timeout_s=0.5)
    cache = SampleCache(cache_client, ttl_s=60)
    redis_server.stop()
    try:
        await cache.put("samples:x", generation(), seed=1)  # no exception
        assert await cache.get("samples:x") is None
    finally:
        await cache_client.aclose()
        redis_server.start()
