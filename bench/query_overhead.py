"""Guarded query overhead: ``ClickHouse.query`` against raw ``client.query_df`` on the same SQL.

Builds a 1M-row events table in a fresh embedded engine (a temporary data dir),
then times each SQL both ways, interleaved, in the same run, and prints the
medians and the ratio. Target: guarded ≤ 1.15× raw.

    python bench/query_overhead.py [--rows 1000000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

QUERIES = {
    "aggregate by day and type": "SELECT toDate(ts) AS day, event_type, count() AS n, avg(amount) AS avg_amount "
                                 "FROM bench.events GROUP BY day, event_type ORDER BY day, event_type",
    "top users": "SELECT user_id, sum(amount) AS total FROM bench.events GROUP BY user_id "
                 "ORDER BY total DESC LIMIT 100",
    "filtered count": "SELECT count() AS n FROM bench.events WHERE event_type = 'purchase' AND amount > 50",
    "5,000 raw rows": "SELECT * FROM bench.events WHERE user_id < 500 LIMIT 5000",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    os.environ["HELIOS_DATA_DIR"] = tempfile.mkdtemp(prefix="helios-bench-")
    from helios_core.runtime import get_clickhouse

    ch = get_clickhouse()
    ch.execute("CREATE DATABASE IF NOT EXISTS bench")
    ch.execute("CREATE TABLE bench.events (ts DateTime64(3, 'UTC'), user_id UInt32, event_type LowCardinality(String), "
               "amount Float64, page String) ENGINE = MergeTree ORDER BY (event_type, ts)")
    ch.execute(f"INSERT INTO bench.events SELECT now64(3) - toIntervalSecond(number % 2592000), number % 50000, "
               f"['view','click','purchase','login'][1 + cityHash64(number) % 4], "
               f"(cityHash64(number, 1) % 10000) / 100, "
               f"concat('/page/', toString(number % 100)) FROM numbers({int(args.rows)})")
    raw = ch.new_client()
    print(f"table bench.events: {args.rows:,} rows; {args.repeat} runs per query, medians, interleaved")
    print(f"{'query':<28}{'raw query_df':>14}{'guarded':>12}{'ratio':>8}")
    ratios = []
    for label, sql in QUERIES.items():
        raw.query_df(sql), ch.query(sql)  # warm caches on both paths
        raw_times, guarded_times = [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            raw.query_df(sql)
            raw_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            ch.query(sql)
            guarded_times.append(time.perf_counter() - started)
        r, g = statistics.median(raw_times), statistics.median(guarded_times)
        ratios.append(g / r)
        print(f"{label:<28}{r * 1000:>12.1f}ms{g * 1000:>10.1f}ms{g / r:>7.2f}x")
    overall = statistics.geometric_mean(ratios)
    verdict = "OK" if overall <= 1.15 else "MISSED"
    print(f"geometric mean ratio guarded/raw: {overall:.2f}x (target <= 1.15x) -> {verdict}")


if __name__ == "__main__":
    main()
