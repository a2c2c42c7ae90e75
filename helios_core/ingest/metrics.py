"""Live per-source counters, shared between a consumer thread and the pages (thread-safe)."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass
class SourceMetrics:
    source_id: str
    records_read: int = 0
    rows_inserted: int = 0
    rows_quarantined: int = 0
    batches: int = 0
    errors: int = 0
    throttled: int = 0                 # GetRecords calls Kinesis throttled (each backed off)
    throttle_wait_s: float = 0.0       # back-off scheduled for them, in total
    iterator_refreshes: int = 0        # fresh shard iterators after ExpiredIteratorException
    leases_lost: int = 0               # headless workers: shards another worker took over
    millis_behind: int = 0
    last_insert: datetime | None = None
    last_error: str = ""
    last_error_at: datetime | None = None
    running: bool = False
    # (minute start as epoch seconds, rows inserted, rows quarantined), newest last
    per_minute: deque = field(default_factory=lambda: deque(maxlen=120))
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _bucket(self, inserted: int, quarantined: int) -> None:
        minute = int(time.time() // 60 * 60)
        if self.per_minute and self.per_minute[-1][0] == minute:
            _, i, q = self.per_minute[-1]
            self.per_minute[-1] = (minute, i + inserted, q + quarantined)
        else:
            self.per_minute.append((minute, inserted, quarantined))

    def record_batch(self, inserted: int, quarantined: int) -> None:
        with self.lock:
            self.rows_inserted += inserted
            self.rows_quarantined += quarantined
            self.batches += 1
            self.last_insert = datetime.now(UTC)
            self._bucket(inserted, quarantined)

    def count(self, name: str, wait_s: float = 0.0) -> None:
        """Count a Kinesis fault handled in place (``throttled`` with its back-off, ``iterator_refreshes``)."""
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)
            self.throttle_wait_s += wait_s

    def record_error(self, message: str) -> None:
        with self.lock:
            self.errors += 1
            self.last_error = message[:1000]
            self.last_error_at = datetime.now(UTC)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"source_id": self.source_id, "running": self.running, "records_read": self.records_read,
                    "rows_inserted": self.rows_inserted, "rows_quarantined": self.rows_quarantined,
                    "batches": self.batches, "errors": self.errors, "throttled": self.throttled,
                    "throttle_wait_s": round(self.throttle_wait_s, 3), "iterator_refreshes": self.iterator_refreshes,
                    "millis_behind": self.millis_behind, "last_insert": self.last_insert,
                    "last_error": self.last_error, "last_error_at": self.last_error_at,
                    "per_minute": [{"minute": datetime.fromtimestamp(m, tz=UTC), "inserted": i,
                                    "quarantined": q} for m, i, q in self.per_minute]}

    def sample_row(self) -> dict[str, Any]:
        with self.lock:
            return {"ts": datetime.now(UTC), "source_id": self.source_id, "records_read": self.records_read,
                    "rows_inserted": self.rows_inserted, "rows_quarantined": self.rows_quarantined,
                    "batches": self.batches, "errors": self.errors, "millis_behind": self.millis_behind,
                    "last_insert": self.last_insert, "last_error": self.last_error}
