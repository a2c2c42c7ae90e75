"""Import jobs' files: what a file offers (fields, rows), whether it can load into the job's target, loading its
rows, and the columns a new table gets from it."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from helios_core.chtypes import base_name, family, is_nullable
from helios_core.clickhouse import ClickHouse, table_columns
from helios_core.errors import HeliosError, ValidationError
from helios_core.identifiers import sanitize_name
from helios_core.jobs.records import Job, Progress, Upload
from helios_core.loading import NOT_INSERTED, QuarantineRow, RowSink, add_csv_file
from helios_core.pgdump import line_source, plan_dump
from helios_core.schema import ColumnSpec, InferredSchema, infer_schema

INFER_SAMPLE_ROWS = 2000
FILE_OUTLIER_RATIO = 0.02   # as streams: up to 2% of rows of another kind are outliers …
FILE_MIN_EVIDENCE = 10      # … and in a file of 10 or more rows, a single one always is
UNSORTABLE_FAMILIES = ("array", "map", "json")   # refused in a sorting key (helios_core.ddl.validate_table)


def target_columns(ch: ClickHouse, job: Job) -> tuple[list[tuple[str, str, str]], set[str]]:
    """(column, type, where its value comes from in the file) for the job's target table, and the columns
    with a DEFAULT that ClickHouse fills when a file lacks them — one read of the table's columns."""
    if job.target == "new":
        return ([(c.name, c.type, c.json_path or c.name) for c in job.schema if not c.virtual],
                {c.name for c in job.schema if c.default not in (None, "")})
    rows = table_columns(ch, job.database, job.table)
    return ([(r["name"], r["type"], r["name"]) for r in rows if r["default_kind"] not in NOT_INSERTED],
            {r["name"] for r in rows if r["default_kind"] == "DEFAULT"})


def _required(columns: list[tuple[str, str, str]], defaults: set[str]) -> set[str]:
    """Columns a file must provide: not Nullable, no DEFAULT in ClickHouse, not an Array/Map."""
    return {name for name, type_, _ in columns
            if not is_nullable(type_) and family(type_) not in ("array", "map") and name not in defaults}


def _match(header: list[str], source: str, column: str) -> str | None:
    """Which file field feeds a column: the exact name, else a name that sanitizes to the column."""
    if source in header:
        return source
    if column in header:
        return column
    for name in header:
        if sanitize_name(name) == column:
            return name
    return None


def _decode_text(path: Path) -> io.TextIOWrapper:
    return open(path, encoding="utf-8-sig", errors="strict", newline="")


def check_file(ch: ClickHouse, job: Job, path: Path) -> str:
    """Why a file cannot be loaded at all ('' when it can); bad rows are handled later, one by one."""
    try:
        if job.format == "pg_dump":
            plan = plan_dump(line_source(path))
            return "" if plan.tables else "not a plain-format PostgreSQL dump (no CREATE TABLE found)"
        if job.target == "new" and not job.schema:
            return "the new table has no confirmed schema"
        fields = file_fields(job.format, path)
    except UnicodeDecodeError:
        return "not UTF-8 text"
    except HeliosError as exc:  # e.g. a dump in an encoding Helios cannot read: named with the file it is about
        return exc.message.rstrip(".")
    except (ValueError, OSError) as exc:
        return str(exc)
    if not fields:
        return "no rows or columns found"
    columns, defaults = target_columns(ch, job)
    matched = {name for name, _, source in columns if _match(fields, source, name)}
    if not matched:
        return f"none of its fields ({', '.join(fields[:8])}) match the table's columns"
    missing = sorted(_required(columns, defaults) - matched)
    if missing:
        return f"it lacks the required column(s) {', '.join(missing)}"
    return ""


def file_fields(fmt: str, path: Path) -> list[str]:
    """The field names a file offers: CSV header, Parquet schema, keys of the first JSON lines."""
    if fmt == "csv":
        with _decode_text(path) as fh:
            header = next(csv.reader(fh), None)
        if not header:
            raise ValueError("the CSV file has no header row")
        return [h.strip() for h in header]
    if fmt == "parquet":
        import pyarrow.parquet as pq
        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds
            raise ValueError(f"not a Parquet file ({str(exc)[:120]})") from exc
    keys: dict[str, None] = {}
    with _decode_text(path) as fh:
        seen = 0
        for line in fh:
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                seen += 1
                if seen >= 50 and not keys:
                    raise ValueError("not JSON lines (the first lines are not JSON)") from None
                continue
            if isinstance(obj, dict):
                for key, value in obj.items():
                    keys[key] = None
                    if isinstance(value, dict):  # nested objects feed flattened columns (a.b → a_b)
                        for sub in value:
                            keys[f"{key}.{sub}"] = None
            seen += 1
            if seen >= INFER_SAMPLE_ROWS:
                break
    if not keys:
        raise ValueError("not JSON lines (no JSON object found)")
    return list(keys)


def _path_get(obj: dict[str, Any], path: str) -> Any:
    if path in obj:
        return obj[path]
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def iter_rows(fmt: str, path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str, str]]:
    """(row number, fields or None when unreadable, raw text, why unreadable) for each row of a file."""
    if fmt == "csv":
        with _decode_text(path) as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            for n, row in enumerate(reader, start=1):
                if not row:
                    continue
                buf = io.StringIO()
                csv.writer(buf, lineterminator="").writerow(row)
                if len(row) != len(header):
                    yield n, None, buf.getvalue(), f"the row has {len(row)} fields; the header has {len(header)}"
                    continue
                yield n, dict(zip(header, row, strict=False)), buf.getvalue(), ""
    elif fmt == "jsonl":
        with open(path, "rb") as fh:
            n = 0
            for raw_line in fh:
                if not raw_line.strip():
                    continue
                n += 1
                text = raw_line.decode("utf-8", "replace").rstrip("\r\n")
                try:
                    obj = json.loads(raw_line)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    yield n, None, text, f"not JSON ({exc})"
                    continue
                if not isinstance(obj, dict):
                    yield n, None, text, "the line is JSON but not an object"
                    continue
                yield n, obj, text, ""
    elif fmt == "parquet":
        import pyarrow.parquet as pq
        n = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=5000):
            for row in batch.to_pylist():
                n += 1
                yield n, row, json.dumps(row, default=str, ensure_ascii=False), ""
    else:
        raise ValidationError(f"Unknown format {fmt!r}.")


def load_rows_file(ch: ClickHouse, job: Job, upload: Upload, path: Path, *, client: Any = None,
                   batch_rows: int = 5000, token_prefix: str | None = None, progress: Progress | None = None,
                   on_batch: Callable[[str, Progress], None] | None = None) -> dict[str, Any]:
    """Load one CSV / JSON lines / Parquet file into the job's table; bad rows to its quarantine."""
    columns, defaults = target_columns(ch, job)
    fields = file_fields(job.format, path)
    # Columns the file does not provide are left out, so ClickHouse fills their DEFAULTs. JSON lines
    # may name a key only after the sampled lines: there only DEFAULT columns not seen are left out.
    used = [(name, type_, _match(fields, source, name) or source) for name, type_, source in columns
            if _match(fields, source, name) or (job.format == "jsonl" and name not in defaults)]
    sink = RowSink(ch, job.database, job.table, [(n, t) for n, t, _ in used], source="import", source_id=job.id,
                   origin=f"{upload.owner}/{upload.file}", batch_rows=batch_rows, client=client,
                   token_prefix=token_prefix, json_columns={c.name for c in job.schema if c.json_text})
    strings = {n for n, t, _ in used if base_name(t) in ("String", "FixedString")}
    rows = 0
    if job.format == "csv":  # read and converted in Arrow, column by column
        def csv_progress(count: int) -> None:
            if progress is not None:
                progress.rows = count
                if on_batch:
                    on_batch(job.id, progress)
        rows = add_csv_file(sink, path, [source for _, _, source in used], strings, csv_progress)
    for n, obj, raw, why in (iter_rows(job.format, path) if job.format != "csv" else ()):
        rows += 1
        if obj is None:
            sink.reject(QuarantineRow(raw, "decode_error", why, "", n))
        else:
            values = {}
            for name, _, source in used:
                value = _path_get(obj, source) if job.format == "jsonl" else obj.get(source)
                # CSV cannot tell an empty string from a missing value: empty is NULL except for text.
                if job.format == "csv" and value == "" and name not in strings:
                    value = None
                values[name] = value
            sink.add(values, raw, n)
        if rows % batch_rows == 0 and progress is not None:
            progress.rows = rows
            if on_batch:
                on_batch(job.id, progress)
    sink.flush()
    if progress is not None:
        progress.rows = rows
    return {"rows": rows, "inserted": sink.counts.inserted, "quarantined": sink.counts.quarantined,
            "errors_by_type": sink.counts.errors_by_type}


# ---- a new table: schema inferred from the first upload, then confirmed ----------------------------------


def _guess(value: str) -> Any:
    """A CSV cell as the JSON value it most likely is (inference only)."""
    text = value.strip()
    if text == "":
        return None
    if re.fullmatch(r"-?\d{1,18}", text):
        return int(text)
    if re.fullmatch(r"-?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?", text):
        return float(text)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return value


def _arrow_type(t: Any) -> str:
    import pyarrow as pa
    if pa.types.is_boolean(t):
        return "Bool"
    if pa.types.is_integer(t):
        return {8: "Int8", 16: "Int16", 32: "Int32", 64: "Int64"}[t.bit_width].replace(
            "Int", "UInt" if pa.types.is_unsigned_integer(t) else "Int")
    if pa.types.is_floating(t):
        return "Float32" if t.bit_width == 32 else "Float64"
    if pa.types.is_decimal(t):
        return f"Decimal({min(t.precision, 76)}, {t.scale})"
    if pa.types.is_timestamp(t):
        precision = {"s": 0, "ms": 3, "us": 6, "ns": 9}[t.unit]
        return f"DateTime64({precision}, 'UTC')"
    if pa.types.is_date(t):
        return "Date32"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = _arrow_type(t.value_type)
        return f"Array(Nullable({inner}))" if family(inner) not in ("array", "map") else f"Array({inner})"
    if pa.types.is_map(t):
        return f"Map(String, {_arrow_type(t.item_type)})"
    return "String"


def default_order_by(columns: list[ColumnSpec]) -> list[str]:
    """The first column that can sort the new table alone, when inference suggests no key: not Nullable (that
    needs a table setting) and not an Array, Map or JSON."""
    return [c.name for c in columns if not c.virtual and not is_nullable(c.type)
            and family(c.type) not in UNSORTABLE_FAMILIES][:1]


def infer_file_schema(fmt: str, path: Path) -> InferredSchema:
    """Propose columns for a new table from one uploaded file."""
    if fmt == "parquet":
        import pyarrow.parquet as pq
        pf = pq.ParquetFile(path)
        first = next(pf.iter_batches(batch_size=INFER_SAMPLE_ROWS), None)
        columns = []
        for f in pf.schema_arrow:
            ch_type = _arrow_type(f.type)
            nulls = first.column(f.name).null_count if first is not None else 0
            if nulls and family(ch_type) not in ("array", "map"):
                ch_type = f"Nullable({ch_type})"
            columns.append(ColumnSpec(name=sanitize_name(f.name), type=ch_type, json_path=f.name,
                                      reason=f"Parquet type {f.type}"))
        return InferredSchema(columns=columns, order_by=default_order_by(columns),
                              sample_size=first.num_rows if first else 0)
    events: list[dict[str, Any]] = []
    for _, obj, _, _ in iter_rows(fmt, path):
        if obj is not None:
            events.append({k: _guess(v) for k, v in obj.items()} if fmt == "csv" else obj)
        if len(events) >= INFER_SAMPLE_ROWS:
            break
    if not events:
        raise ValidationError("The first upload has no readable rows to infer a schema from.")
    # A file is the data itself, not a sample of a stream: one odd row in a small file is an outlier to
    # quarantine, not a reason to turn its column into String (streams need 50 events for that call).
    inferred = infer_schema(events, outlier_ratio=max(FILE_OUTLIER_RATIO, 1 / len(events)),
                            min_evidence=FILE_MIN_EVIDENCE)
    if fmt == "csv":
        header = file_fields("csv", path)
        for col in inferred.columns:  # CSV headers are flat even when they contain dots
            if col.json_path not in header:
                match = _match(header, col.json_path, col.name)
                col.json_path = match or col.json_path
    return inferred
