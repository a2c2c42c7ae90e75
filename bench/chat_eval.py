"""The built-in chat assistant on its question set: accuracy and answer time.

Loads the demo data into a fresh embedded engine (a temporary data dir: this is
a separate process), asks every question of ``helios_core.chat.eval_set`` (chains
of follow-ups in one conversation), compares each result's rows with the
hand-written SQL's, and prints accuracy (target ≥ 85%) and the median answer
time without the query itself (target < 300 ms): reading the question, the gate's
checks, the answer sentence, the table and the plotly chart.

    python bench/chat_eval.py [--repeat 3] [--verbose]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of the whole set (times: median over all)")
    parser.add_argument("--verbose", action="store_true", help="print every case")
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="helios-chat-eval-")
    os.environ["HELIOS_DATA_DIR"] = data_dir
    os.environ.pop("HELIOS_CLICKHOUSE_URL", None)
    try:
        from helios_core.chat.eval_set import CASES, run_all
        from helios_core.demo import load_demo
        from helios_core.runtime import get_clickhouse

        started = time.perf_counter()
        ch = get_clickhouse()
        load = load_demo(ch)
        print(f"demo loaded in {time.perf_counter() - started:.1f} s: {load.to_json()['tables']}")
        run_all(ch, CASES[:3])  # warm-up: context cache, plotly import
        answer_ms: list[float] = []
        query_ms: list[float] = []
        results = []
        for _ in range(max(1, args.repeat)):
            results = run_all(ch, CASES)
            answer_ms += [r.answer_ms for r in results]
            query_ms += [r.query_ms for r in results]
        by_kind: dict[str, list[bool]] = defaultdict(list)
        for r in results:
            by_kind[r.case.kind].append(r.ok)
            if args.verbose or not r.ok:
                mark = "ok  " if r.ok else "FAIL"
                print(f"{mark} {r.case.label}" + (f"  — {r.reason}" if r.reason else ""))
        passed = sum(r.ok for r in results)
        accuracy = passed / len(results)
        median_answer = statistics.median(answer_ms)
        p90 = sorted(answer_ms)[int(0.9 * (len(answer_ms) - 1))]
        print()
        print(f"{'kind':<12}{'passed':>10}")
        for kind, oks in sorted(by_kind.items()):
            print(f"{kind:<12}{sum(oks):>5}/{len(oks):<4}")
        print()
        print(f"accuracy: {passed}/{len(results)} = {accuracy:.1%} (target ≥ 85%)"
              f"  {'OK' if accuracy >= 0.85 else 'BELOW TARGET'}")
        print(f"answer time without the query: median {median_answer:.1f} ms, p90 {p90:.1f} ms "
              f"(target median < 300 ms)  {'OK' if median_answer < 300 else 'ABOVE TARGET'}")
        print(f"the queries themselves: median {statistics.median(query_ms):.1f} ms "
              f"({len(answer_ms)} answers over {args.repeat} run(s))")
        return 0 if accuracy >= 0.85 and median_answer < 300 else 1
    finally:
        try:
            from helios_core.runtime import get_clickhouse
            get_clickhouse().close()
        except Exception:
            pass
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
