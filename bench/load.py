"""Import throughput: a CSV file through the import job's loader against ClickHouse parsing it itself.

The same generated CSV (an id, a time, a few strings and numbers, a Nullable column, ~110 bytes a row) is
loaded into two identical tables in the same run:

* Helios's import path — :func:`helios_core.jobs.load_rows_file` (read, convert and validate each column,
  insert in batches with a deduplication token, bad rows to quarantine), the function a job runs per file;
* ClickHouse itself — ``INSERT … FORMAT CSVWithNames`` of the file's bytes via ``raw_insert``, in the same
  batch size (by default the job service's, 5,000 rows; each insert carries a deduplication token on both).

Prints both rates and the ratio (target ≥ 0.8×). Runs in a fresh embedded engine in a temporary data dir:

    python bench/load.py [--rows 500000] [--batch 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

COLUMNS = [("id", "UInt64"), ("ts", "DateTime64(3, 'UTC')"), ("user_id", "UInt32"),
           ("country", "LowCardinality(String)"), ("product", "String"), ("amount", "Float64"),
           ("quantity", "UInt16"), ("coupon", "Nullable(String)"), ("paid", "Bool")]


def write_csv(path: Path, rows: int) -> None:
    rng = random.Random(7)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    countries = ["US", "DE", "FR", "GB", "JP", "BR", "IN"]
    products = ["mug", "t-shirt", "poster", "sticker pack", "hoodie", "notebook"]
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(",".join(n for n, _ in COLUMNS) + "\n")
        for i in range(rows):
            ts = (start + timedelta(milliseconds=i * 37)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
            coupon = f"SAVE{rng.randint(1, 30)}" if rng.random() < 0.2 else ""
            fh.write(f"{i},{ts},{rng.randint(1, 90_000)},{rng.choice(countries)},{rng.choice(products)},"
                     f"{rng.randint(100, 99_999) / 100},{rng.randint(1, 9)},{coupon},"
                     f"{'true' if rng.random() < 0.9 else 'false'}\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--batch", type=int, default=5_000)  # JobService.batch_rows
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ["HELIOS_DATA_DIR"] = tempfile.mkdtemp(prefix="helios-bench-load-")
    os.environ.setdefault("HELIOS_SANDBOX_RATE", "0")

    from helios_core.identifiers import quote_ident
    from helios_core.jobs import Job, Upload, load_rows_file
    from helios_core.runtime import get_clickhouse

    ch = get_clickhouse()
    tmp = Path(os.environ["HELIOS_DATA_DIR"])
    path = tmp / "orders.csv"
    print(f"writing {args.rows:,} CSV rows…", flush=True)
    write_csv(path, args.rows)
    data = path.read_bytes()
    print(f"{len(data) / args.rows:.0f} bytes a row, {len(data) / 1e6:.1f} MB; batches of {args.batch:,}", flush=True)
    header, _, body = data.partition(b"\n")
    lines = body.splitlines(keepends=True)
    ch.execute("CREATE DATABASE IF NOT EXISTS bench")
    cols = ", ".join(f"{quote_ident(n)} {t}" for n, t in COLUMNS)

    def table(name: str) -> None:
        ch.execute(f"CREATE TABLE bench.{name} ({cols}) ENGINE = MergeTree ORDER BY (country, ts) "
                   "SETTINGS non_replicated_deduplication_window = 1000")

    helios_s: list[float] = []
    native_s: list[float] = []
    client = ch.new_client()  # a job loads on its own handle, as JobService._load does
    # A small warm-up load on both paths first: one-time costs (Arrow's compute kernels, the engine's
    # first insert into a table shape) are not what is measured.
    warm = tmp / "warm.csv"
    write_csv(warm, 5_000)
    for name in ("warm_helios", "warm_native"):
        table(name)
    load_rows_file(ch, Job(id="warm", name="warm", format="csv", target="existing", database="bench",
                           table="warm_helios", bucket=""), Upload("o", "jobs/warm/o/warm.csv", 1), warm, client=client)
    client.raw_insert("`bench`.`warm_native`", None, insert_block=warm.read_bytes(), fmt="CSVWithNames")
    for r in range(args.rounds):
        table(f"helios_{r}")
        table(f"native_{r}")
        job = Job(id=f"bench{r}", name="bench", format="csv", target="existing", database="bench",
                  table=f"helios_{r}", bucket="")
        upload = Upload("bench-owner", f"jobs/bench{r}/bench-owner/orders.csv", len(data))
        started = time.perf_counter()
        counts = load_rows_file(ch, job, upload, path, client=client, batch_rows=args.batch,
                                token_prefix=f"bench:{r}")
        helios_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        for i in range(0, len(lines), args.batch):
            client.raw_insert(f"`bench`.`native_{r}`", None,
                              insert_block=header + b"\n" + b"".join(lines[i:i + args.batch]),
                              fmt="CSVWithNames", settings={"insert_deduplication_token": f"native:{r}:{i}"})
        native_s.append(time.perf_counter() - started)
        n_helios = ch.internal_query(f"SELECT count() AS n FROM bench.helios_{r}")[0]["n"]
        n_native = ch.internal_query(f"SELECT count() AS n FROM bench.native_{r}")[0]["n"]
        assert n_helios == n_native == args.rows and counts["quarantined"] == 0, (n_helios, n_native, counts)
        print(f"round {r + 1}: import path {args.rows / helios_s[-1]:,.0f} rows/s, "
              f"ClickHouse CSV {args.rows / native_s[-1]:,.0f} rows/s", flush=True)
    client.close()
    helios_rate = args.rows / statistics.median(helios_s)
    native_rate = args.rows / statistics.median(native_s)
    # each round's two loads run back to back, so the median of per-round ratios suffers least from other load
    ratio = statistics.median(n / h for h, n in zip(helios_s, native_s, strict=False))
    print(f"\nimport of a {args.rows:,}-row CSV (median of {args.rounds}): "
          f"Helios import path {helios_rate:,.0f} rows/s "
          f"vs ClickHouse parsing the CSV itself {native_rate:,.0f} rows/s → ratio {ratio:.2f}× (median of per-round "
          f"ratios; target ≥ 0.80×) {'OK' if ratio >= 0.8 else 'BELOW TARGET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
