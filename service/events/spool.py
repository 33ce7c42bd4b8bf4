"""The local spool: events that could not reach Redis, appended as JSON lines and fsynced, replayed in order.

A replay works on a snapshot (the spool file renamed aside), so events spooled during a replay go to a fresh
file and are never lost when the snapshot is deleted. Replays are idempotent (every event carries its id and
Redis drops ids it has already stored), so a crash mid-replay only means replaying the snapshot again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _text(record: dict[str, Any]) -> dict[str, Any]:
    """The event log keeps payloads as UTF-8 bytes; a JSON line holds them as text."""
    data = record.get("data")
    return {**record, "data": data.decode()} if isinstance(data, bytes) else record


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.replay_path = path.with_name(path.name + ".replaying")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._pending = self._count(self.replay_path) + self._count(self.path)

    @staticmethod
    def _count(path: Path) -> int:
        if not path.exists():
            return 0
        with path.open("rb") as f:
            return sum(1 for line in f if line.strip())

    def __len__(self) -> int:
        return self._pending

    def append(self, records: list[dict[str, Any]]) -> None:
        """Durably append ``records``; raises OSError (disk full, …)."""
        data = "".join(json.dumps(_text(r), ensure_ascii=False, separators=(",", ":")) + "\n" for r in records)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self._pending += len(records)

    def snapshot(self) -> Path | None:
        """The oldest spooled events to replay: a snapshot left by an unfinished replay, else the spool itself."""
        if self.replay_path.exists():
            return self.replay_path
        if self.path.exists():
            self.path.rename(self.replay_path)
            return self.replay_path
        return None

    @staticmethod
    def read(snapshot: Path, batch_size: int) -> Iterator[list[dict[str, Any]]]:
        """Records of a snapshot, oldest first, in batches. A torn last line (crash mid-write) is skipped."""
        batch: list[dict[str, Any]] = []
        with snapshot.open(encoding="utf-8") as f:
            for line in f:
                try:
                    batch.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
                if len(batch) >= batch_size:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def replayed(self, snapshot: Path) -> None:
        snapshot.unlink(missing_ok=True)
        self._pending = self._count(self.replay_path) + self._count(self.path)
