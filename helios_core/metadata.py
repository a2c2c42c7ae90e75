"""The ``helios`` metadata database: its name and the versions of its records.

Each concern module that keeps records declares ``METADATA_TABLES`` (a list of
``CREATE TABLE IF NOT EXISTS`` statements); :mod:`helios_core.runtime`, above
them all, lists those modules and creates the tables at start-up
(:func:`helios_core.runtime.ensure_metadata`).
Mutable records are ReplacingMergeTree rows keyed by id with a version column
(read with FINAL); append-only facts are plain MergeTree. No secrets here.
"""

from __future__ import annotations

import threading
import time

METADATA_DB = "helios"
# Live-database chats read through stand-in databases named with this prefix (helios_core.chat.live): Helios's,
# not the user's, so user-facing database lists leave them out.
LIVE_STANDIN_PREFIX = "helios_live_"


_version_lock = threading.Lock()
_last_version = 0


def next_version() -> int:
    """A version for a ReplacingMergeTree row: nanoseconds, strictly increasing in this process.

    Two writes of the same record within one clock tick must still be ordered,
    or FINAL could keep the older one.
    """
    global _last_version
    with _version_lock:
        _last_version = max(_last_version + 1, time.time_ns())
        return _last_version

