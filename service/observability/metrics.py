"""The service's own Prometheus metrics (prefix ``adauction_``), next to vLLM's ``vllm:*`` in the same registry."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

EVENTS = Counter(
    "adauction_events_total",
    "Events by stream and what happened to them",
    ["stream", "result"],  # result: queued | written | duplicate | spooled | replayed | dropped
)
EVENT_QUEUE_DEPTH = Gauge("adauction_event_queue_depth", "Events waiting in memory for the Redis writer")
EVENT_SPOOL_DEPTH = Gauge("adauction_event_spool_depth", "Events waiting in the local spool file")
REDIS_ERRORS = Counter("adauction_redis_errors_total", "Redis commands that failed", ["operation"])
SAMPLE_CACHE = Counter("adauction_sample_cache_requests_total", "Sample cache look-ups", ["result"])  # hit | miss
CLICKS = Counter("adauction_clicks_total", "Click requests", ["valid"])  # valid: true | false
