"""The event log: impressions and clicks into Redis Streams, never blocking a response, never losing an event.

``emit`` only puts the event on a bounded in-memory queue (or, if the queue is full, appends it to the local
spool). One writer task drains the queue in pipelined batches. When Redis is down or slow, batches go to the
spool; once Redis answers again the spool is replayed in order before new events. Each event carries an id made
by the producer and is written by a Lua script that stores it only if that id is new, so replays and retries
never write an event twice. Events with a ``once`` key (a click: auction + ad) are written every time but
flagged ``dup=1`` after the first, so a click is counted once and later ones stay visible.

Stream entries have the fields ``id`` (event id), ``dup`` ("0"/"1") and ``data`` (the event as JSON).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from service.events.spool import Spool
from service.observability import metrics

logger = logging.getLogger(__name__)

IMPRESSIONS = "impressions"
CLICKS = "clicks"

# One call per batch (the writer's hot path: one EVALSHA instead of one per event, measured in
# scripts/bench_events.py). KEYS: per event its id guard, its stream and its once key (the guard again when it has
# none). ARGV: guard ttl, maxlen, once ttl, then per event: id, payload, has_once ("1"/"0"). Returns per event
# 0 (id already stored: a replay), 1 (written) or 2 (written, flagged as a repeat of its once key).
_WRITE_ONCE = """
local out = {}
for i = 0, (#ARGV - 3) / 3 - 1 do
  local id, payload = ARGV[4 + 3 * i], ARGV[5 + 3 * i]
  if not redis.call('SET', KEYS[1 + 3 * i], '1', 'NX', 'EX', ARGV[1]) then
    out[i + 1] = 0
  else
    local dup = '0'
    if ARGV[6 + 3 * i] == '1' and not redis.call('SET', KEYS[3 + 3 * i], id, 'NX', 'EX', ARGV[3]) then
      dup = '1'
    end
    redis.call('XADD', KEYS[2 + 3 * i], 'MAXLEN', '~', ARGV[2], '*', 'id', id, 'dup', dup, 'data', payload)
    out[i + 1] = 1 + tonumber(dup)
  end
end
return out
"""


def _to_json(event: dict[str, Any]) -> bytes:
    """UTF-8 JSON, kept as bytes all the way to Redis (decoding 10 KB to ``str`` cost as much as encoding it)."""
    try:
        return orjson.dumps(event)  # fast path
    except TypeError:  # e.g. integers beyond 64 bits in a free-form profile: the standard library takes them
        return json.dumps(event, ensure_ascii=False).encode()


class EventLog:
    def __init__(
        self,
        redis: aioredis.Redis,
        spool: Spool,
        *,
        queue_size: int = 10_000,
        batch_size: int = 100,
        stream_maxlen: int = 1_000_000,
        dedupe_ttl_s: int = 2 * 24 * 3600,
        once_ttl_s: int = 8 * 24 * 3600,
        retry_interval_s: float = 1.0,
    ) -> None:
        self._redis = redis
        self._spool = spool
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=queue_size)
        self._batch_size = batch_size
        self._maxlen = stream_maxlen
        self._dedupe_ttl_s = dedupe_ttl_s
        self._once_ttl_s = once_ttl_s
        self._retry_interval_s = retry_interval_s
        self._script = redis.register_script(_WRITE_ONCE)
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._down_since: float | None = None
        self._next_attempt = 0.0
        self.stats: collections.Counter[str] = collections.Counter()
        metrics.EVENT_QUEUE_DEPTH.set_function(self._queue.qsize)
        metrics.EVENT_SPOOL_DEPTH.set_function(lambda: len(self._spool))

    # -- producer side (request path: never awaits) ------------------------------------------------------------

    def emit(
        self, stream: str, event: dict[str, Any], *, event_id: str, once: str | None = None, amount: float = 0.0
    ) -> None:
        """``once``: a key that makes repeats of this event flagged; ``amount``: revenue booked when the event is
        first written under its ``once`` key (a click's price)."""
        record = {
            "stream": stream,
            "id": event_id,
            "once": once,
            "amount": amount,
            "data": _to_json(event),
        }
        try:
            self._queue.put_nowait(record)
            self._count(stream, "queued")
        except asyncio.QueueFull:
            self._to_spool([record])

    # -- lifecycle ----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self._redis.ping()
            metrics.REDIS_UP.set(1)
        except (RedisError, OSError) as exc:
            self._redis_failed(exc)
        self._task = asyncio.create_task(self._run(), name="event-writer")

    async def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until every queued event has been written to Redis or spooled."""
        await asyncio.wait_for(self._queue.join(), timeout_s)

    async def close(self, timeout_s: float = 15.0) -> None:
        """Write (or spool) everything still queued, then stop the writer."""
        self._closing = True
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)  # wake the writer (a full queue wakes it anyway)
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self._task, timeout_s)
        except TimeoutError:
            logger.error("event writer did not finish in %.0f s; spooling what is left", timeout_s)
            left = [r for r in self._drain(self._queue.qsize()) if r is not None]
            if left:
                self._to_spool(left)
        # The drain's receipt (the container test reads it after SIGTERM): nothing queued is left behind.
        logger.info(
            "event log closed: queue drained",
            extra={"written": self._total("written"), "spooled": self._total("spooled"), "spool_pending": self.spooled},
        )

    def _total(self, result: str) -> int:
        return sum(n for key, n in self.stats.items() if key.endswith(f".{result}"))

    @property
    def redis_up(self) -> bool:
        return self._down_since is None

    @property
    def spooled(self) -> int:
        return len(self._spool)

    # -- writer -------------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        await self._replay()
        while True:
            batch = await self._collect()
            records = [r for r in batch if r is not None]
            if records:
                await self._deliver(records)
            elif len(self._spool) and time.monotonic() >= self._next_attempt:
                await self._replay()
            for _ in batch:
                self._queue.task_done()
            if self._closing and self._queue.empty():
                if len(self._spool):
                    await self._replay()
                return

    async def _collect(self) -> list[dict[str, Any] | None]:
        try:
            first = await asyncio.wait_for(self._queue.get(), self._retry_interval_s)
        except TimeoutError:
            return []
        return [first, *self._drain(self._batch_size - 1)]

    def _drain(self, limit: int) -> list[dict[str, Any] | None]:
        out: list[dict[str, Any] | None] = []
        while len(out) < limit:
            try:
                out.append(self._queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        return out

    async def _deliver(self, records: list[dict[str, Any]]) -> None:
        if self._down_since is not None and time.monotonic() < self._next_attempt:
            self._to_spool(records)
            return
        # Order: whatever was spooled earlier goes first.
        if len(self._spool) and not await self._replay():
            self._to_spool(records)
            return
        try:
            await self._write(records)
        except (RedisError, OSError) as exc:
            self._redis_failed(exc)
            self._to_spool(records)

    async def _replay(self) -> bool:
        """Replay the spool into Redis; False (and the rest stays spooled) if Redis fails on the way."""
        while len(self._spool):
            snapshot = self._spool.snapshot()
            if snapshot is None:
                return True
            try:
                for batch in Spool.read(snapshot, self._batch_size):
                    await self._write(batch, replay=True)
            except (RedisError, OSError) as exc:
                self._redis_failed(exc)
                return False
            self._spool.replayed(snapshot)
        return True

    async def _write(self, records: list[dict[str, Any]], replay: bool = False) -> None:
        keys: list[str] = []
        args: list[Any] = [self._dedupe_ttl_s, self._maxlen, self._once_ttl_s]
        for r in records:
            guard = f"ev:{r['id']}"
            once = r.get("once")
            keys += (guard, r["stream"], f"once:{once}" if once else guard)
            args += (r["id"], r["data"], "1" if once else "0")
        results = await self._script(keys=keys, args=args)
        if self._down_since is not None:
            logger.warning("Redis is back after %.1f s", time.monotonic() - self._down_since)
            self._down_since = None
        metrics.REDIS_UP.set(1)
        counts: collections.Counter[tuple[str, str]] = collections.Counter()
        for r, result in zip(records, results, strict=True):
            stream = r["stream"]
            if replay:
                counts[stream, "replayed"] += 1
            if result == 0:
                counts[stream, "already_stored"] += 1
                continue
            counts[stream, "written"] += 1
            if r.get("once"):
                first = result == 1
                metrics.CLICKS_LOGGED.labels("first" if first else "repeat").inc()
                if first and r.get("amount"):
                    metrics.CLICK_REVENUE.inc(r["amount"])
            if result == 2:
                counts[stream, "duplicate"] += 1
        for (stream, result), n in counts.items():
            self._count(stream, result, n)

    def _redis_failed(self, exc: BaseException) -> None:
        metrics.REDIS_ERRORS.labels("event_write").inc()
        metrics.REDIS_UP.set(0)
        if self._down_since is None:
            logger.warning("Redis write failed (%s: %s); spooling events", type(exc).__name__, exc)
            self._down_since = time.monotonic()
        self._next_attempt = time.monotonic() + self._retry_interval_s

    def _to_spool(self, records: list[dict[str, Any]]) -> None:
        try:
            self._spool.append(records)
        except OSError:
            logger.exception("could not spool %d events: they are lost", len(records))
            for r in records:
                self._count(r["stream"], "dropped")
            return
        for r in records:
            self._count(r["stream"], "spooled")

    def _count(self, stream: str, result: str, n: int = 1) -> None:
        self.stats[f"{stream}.{result}"] += n
        metrics.EVENTS.labels(stream, result).inc(n)
