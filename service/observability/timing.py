"""Per-stage timing of one auction: into the response (``timings_ms``) and the stage-latency histogram."""

from __future__ import annotations

import time

from service.observability.metrics import AUCTION_STAGE_DURATION


class StageClock:
    def __init__(self) -> None:
        self._started = self._last = time.perf_counter()
        self._ms: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        """Close ``stage``: the time since the previous lap (or the start)."""
        now = time.perf_counter()
        AUCTION_STAGE_DURATION.labels(stage).observe(now - self._last)
        self._ms[stage] = round((now - self._last) * 1000, 2)
        self._last = now

    def timings_ms(self) -> dict[str, float]:
        return {**self._ms, "total": round((self._last - self._started) * 1000, 2)}
