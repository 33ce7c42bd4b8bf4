"""Shared fixtures: the test suites' own redis-server (never the machine's), started once per session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from service.storage.redis import RedisServer, client, find_redis_server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    # appendfsync always: the fault-injection tests kill -9 it and expect every acknowledged write back.
    server = RedisServer(find_redis_server(), tmp_path_factory.mktemp("redis"), appendfsync="always")
    with server.running():
        yield server


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A client on a freshly emptied database; restarts the server if a test left it stopped."""
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()
    connection = client(redis_server.url, timeout_s=1.0)
    await connection.flushdb()  # db 0; the service under test uses db 1
    yield connection
    await connection.aclose()
