"""Admission control: refuse at once rather than queue without end — past the limit, waiting only adds latency
for everyone (503 ``overloaded`` with Retry-After)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from service.errors import Overloaded
from service.observability import metrics


class Admission:
    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._in_flight = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        if self._in_flight >= self._limit:
            metrics.OVERLOADED.inc()
            metrics.AUCTIONS.labels("overloaded").inc()
            raise Overloaded(f"{self._in_flight} auctions are in flight (limit {self._limit}); retry soon")
        self._in_flight += 1
        metrics.AUCTIONS_IN_FLIGHT.set(self._in_flight)
        try:
            yield
        finally:
            self._in_flight -= 1
            metrics.AUCTIONS_IN_FLIGHT.set(self._in_flight)
