"""helios_core.metadata: versions for ReplacingMergeTree rows (FINAL keeps the highest, so order matters)."""

from __future__ import annotations

import threading
import time

from helios_core.metadata import LIVE_STANDIN_PREFIX, METADATA_DB, next_version


def test_versions_strictly_increase_within_one_clock_tick():
    versions = [next_version() for _ in range(10_000)]
    assert all(a < b for a, b in zip(versions, versions[1:], strict=False))


def test_versions_follow_the_clock_in_nanoseconds():
    before = time.time_ns()
    version = next_version()
    assert version >= before
    assert version < before + 60 * 1_000_000_000  # near now, not a counter from zero


def test_versions_are_unique_and_increasing_across_threads():
    per_thread: dict[int, list[int]] = {}
    start = threading.Barrier(8)

    def take(n: int) -> None:
        start.wait()  # all threads ask at once
        per_thread[n] = [next_version() for _ in range(2_000)]

    threads = [threading.Thread(target=take, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [v for versions in per_thread.values() for v in versions]
    assert len(set(every)) == len(every) == 16_000
    for versions in per_thread.values():  # each writer sees its own writes in order
        assert all(a < b for a, b in zip(versions, versions[1:], strict=False))


def test_a_later_write_gets_a_higher_version_than_an_earlier_one_in_another_thread():
    first: list[int] = []
    t = threading.Thread(target=lambda: first.append(next_version()))
    t.start()
    t.join()
    assert next_version() > first[0]


def test_names_of_helios_own_databases():
    assert METADATA_DB == "helios"
    assert LIVE_STANDIN_PREFIX.startswith("helios_") and LIVE_STANDIN_PREFIX != METADATA_DB
