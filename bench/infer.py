"""Schema inference speed: ``infer_schema`` on 1k, 10k and 100k events of ~20 fields.

Events are realistic (UUIDs, IPs, ISO and epoch times, low-cardinality strings,
free text, nested objects, arrays, nulls), built once per size. Each size is
timed against a simple baseline measured in the same run on the same events:
``json.loads`` of their JSON lines (what any consumer pays just to read them).
Target: 10k events in under 1 s.

    python bench/infer.py [--repeat 5] [--sizes 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helios_core.schema import infer_schema  # noqa: E402

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def make_events(n: int, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    events = []
    for i in range(n):
        t = T0 + timedelta(milliseconds=i * 40 + rng.randint(0, 39))
        events.append({
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "user_id": rng.randint(1, 200_000),
            "session_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "event_type": rng.choice(["page_view", "click", "search", "login", "purchase"]),
            "timestamp": t.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "received_ms": int(t.timestamp() * 1000) + rng.randint(5, 500),
            "ip": f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            "country": rng.choice(["US", "GB", "DE", "FR", "IN", "BR", "JP"]),
            "device": {"type": rng.choice(["mobile", "desktop", "tablet"]), "os": rng.choice(["iOS", "Android",
                                                                                             "Windows", "macOS"])},
            "page": f"/products/{rng.randint(1, 5000)}",
            "referrer": rng.choice([None, None, "https://www.google.com/", "https://t.co/x"]),
            "duration_ms": rng.randint(10, 60_000),
            "amount": round(rng.uniform(1, 900), 2),
            "currency": rng.choice(["USD", "EUR", "GBP"]),
            "items": [rng.choice(["book", "mug", "hat", "shirt"]) for _ in range(rng.randint(0, 3))],
            "is_new_user": rng.random() < 0.1,
            "user_agent": f"Mozilla/5.0 (X11; Linux x86_64) Chrome/{rng.randint(100, 125)}.0 Safari/537.36",
            "experiment": rng.choice(["A", "B"]),
            "signup_date": (T0 - timedelta(days=rng.randint(0, 900))).date().isoformat(),
            "message": f"viewed item {rng.randint(1, 10 ** 6)} after {rng.randint(1, 99)} searches",
        })
    return events


def timed(fn, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", default="1000,10000,100000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    print(f"{'events':>8} {'fields':>6} {'infer_schema':>13} {'events/s':>11} {'json.loads':>11} {'ratio':>6}")
    for n in sizes:
        events = make_events(n)
        lines = [json.dumps(e) for e in events]
        fields = len(infer_schema(events[:100]).columns)
        repeat = max(1, args.repeat if n <= 10_000 else args.repeat // 2)
        infer_s = timed(lambda: infer_schema(events), repeat)  # noqa: B023  (timed calls it in this iteration)
        baseline_s = timed(lambda: [json.loads(line) for line in lines], repeat)  # noqa: B023  (called here)
        verdict = ""
        if n == 10_000:
            verdict = "  (target < 1 s: " + ("met)" if infer_s < 1.0 else "MISSED)")
        print(f"{n:>8,} {fields:>6} {infer_s * 1000:>10.1f} ms {n / infer_s:>11,.0f} {baseline_s * 1000:>8.1f} ms "
              f"{infer_s / baseline_s:>5.2f}x{verdict}")
    schema = infer_schema(make_events(1000))
    print("\nInferred for the benchmark events:")
    for c in schema.columns:
        print(f"  {c.name:<14} {c.type:<32} {c.reason}")
    print(f"  ORDER BY ({', '.join(schema.order_by)})  PARTITION BY {schema.partition_by}")


if __name__ == "__main__":
    main()
