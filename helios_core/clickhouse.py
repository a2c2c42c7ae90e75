"""ClickHouse access: the one process-wide connection, guarded queries, the catalog.

Embedded (chDB) and server ClickHouse are reached through clickhouse-connect
with the same API. Guards are ClickHouse-side settings, never regexes:

* Embedded: a small pool of dedicated reader handles, each locked with
  ``readonly=1`` after its time and row limits are set. Under ``readonly=1``
  a query cannot change any setting, so user SQL can neither write nor lift
  its own limits. (A per-call ``readonly`` through the driver would leak:
  its restore ``SET`` is itself refused in readonly mode.)
* Server: one session-less HTTP client (so concurrent queries are allowed)
  with ``readonly=2`` and the limits sent with every request.

Helios's own statements (DDL, inserts, metadata) go through :meth:`execute`
and :meth:`internal_query` on a separate writer handle.
"""

from __future__ import annotations

import os
import queue
import re
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import clickhouse_connect
import numpy as np
import pandas as pd
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError, DatabaseError, StreamClosedError, StreamFailureError

from helios_core import sqlguard
from helios_core.config import Settings
from helios_core.errors import ClickHouseUnavailable, HeliosError, NotFound, QueryError, ValidationError
from helios_core.identifiers import quote_ident
from helios_core.metadata import LIVE_STANDIN_PREFIX, METADATA_DB

SYSTEM_DATABASES = ("system", "information_schema", "INFORMATION_SCHEMA")
PRIVATE_DATABASES = sqlguard.PRIVATE_DATABASES  # analysis jobs' inputs: see helios_core.sqlguard

# ClickHouse error names → what to tell the user to do about them.
_HINTS = {
    "SYNTAX_ERROR": "Check the SQL near the position ClickHouse points at.",
    "UNKNOWN_TABLE": "Check the table name; the Databases page lists what exists.",
    "UNKNOWN_DATABASE": "Check the database name; the Databases page lists what exists.",
    "UNKNOWN_IDENTIFIER": "Check the column names; the Databases page shows each table's columns.",
    "READONLY": "This query changes data. Turn off read-only for this query if you really mean to write.",
    "TIMEOUT_EXCEEDED": "Narrow the query (a WHERE on the sorting key, a LIMIT) or raise the time limit.",
    "TABLE_ALREADY_EXISTS": "Choose another name, or drop the existing table first.",
    "TYPE_MISMATCH": "A value does not fit the column's type.",
    "ILLEGAL_TYPE_OF_ARGUMENT": "A function got an argument of the wrong type; cast it first.",
    "MEMORY_LIMIT_EXCEEDED": "Aggregate or filter more before returning rows.",
}
_ENGINE_LOCKED = "Error initializing EmbeddedServer"
_UNREADABLE_HINT = "Run the query again; if it fails again, simplify it (fewer or simpler columns)."


def _report_storage_reads() -> None:
    """Make the chDB backend's summary report rows/bytes scanned, as a server does.

    clickhouse-connect's chDB backend fills ``read_rows`` from the engine's
    result-row count; the engine also knows what it read from storage, which is
    what "rows read" means on a server. If the driver changes shape, keep its value.
    """
    try:
        from clickhouse_connect.driver._backend import chdb_backend
    except ImportError:
        return
    backend = chdb_backend.ChdbBackend
    original = backend.__dict__.get("_summary")
    if original is None or getattr(original, "__helios__", False):
        return
    plain = original.__func__ if isinstance(original, staticmethod) else original

    def summary(result: Any) -> dict[str, Any]:
        out = plain(result)
        try:
            out["read_rows"] = str(result.storage_rows_read())
            out["read_bytes"] = str(result.storage_bytes_read())
        except Exception:
            pass
        return out

    summary.__helios__ = True  # type: ignore[attr-defined]
    backend._summary = staticmethod(summary)  # type: ignore[method-assign]  # patching the driver on purpose


_report_storage_reads()


@dataclass
class QueryResult:
    """A guarded query's answer: the seed's ``/api/query`` metadata and more."""

    query: str
    column_names: list[str]
    column_types: list[str]
    frame: pd.DataFrame
    truncated: bool = False
    limit: int = 0
    elapsed_ms: float = 0.0
    rows_read: int = 0
    bytes_read: int = 0
    written_rows: int = 0

    @property
    def row_count(self) -> int:
        return len(self.frame)

    def records(self) -> list[dict[str, Any]]:
        return frame_records(self.frame)

    def metadata(self) -> dict[str, Any]:
        return {"query": self.query, "row_count": self.row_count, "column_names": self.column_names,
                "column_types": self.column_types, "truncated": self.truncated,
                "elapsed_ms": round(self.elapsed_ms, 2), "rows_read": self.rows_read,
                "bytes_read": self.bytes_read}

    def to_api(self) -> dict[str, Any]:
        """The seed's ``/api/query`` response shape, with extra metadata."""
        return {"metadata": self.metadata(), "data": self.records()}


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-friendly dicts (timestamps as ISO text, NaN as null)."""
    out = frame.astype(object).where(frame.notna(), None)
    rows = out.to_dict(orient="records")
    for row in rows:
        for key, value in row.items():
            if isinstance(value, (pd.Timestamp,)) or hasattr(value, "isoformat"):
                row[key] = value.isoformat()
            elif hasattr(value, "tolist"):
                row[key] = value.tolist()
            elif isinstance(value, (bytes, bytearray)):
                row[key] = value.decode("utf-8", "replace")
            elif not isinstance(value, (str, int, float, bool, list, dict, type(None))):
                row[key] = str(value)
    return rows


_TEXT_TYPES = ("UUID", "IPv4", "IPv6")


def _text_for_objects(frame: pd.DataFrame, types: list[str]) -> pd.DataFrame:
    """UUID and IP columns as text: tables, charts and downloads all show them as people write them."""
    if len(types) != len(frame.columns):
        return frame
    convert = [name for name, t in zip(frame.columns, types, strict=False) if any(k in t for k in _TEXT_TYPES)]
    if not convert:
        return frame
    frame = frame.copy()
    for name in convert:
        frame[name] = frame[name].map(_as_text, na_action="ignore")
    return frame


def _as_text(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_as_text(v) for v in value]
    return None if value is None else str(value)


def to_query_error(exc: Exception) -> QueryError:
    """Turn a driver exception into a message a person can act on."""
    text = str(exc)
    code = getattr(exc, "code", None)
    name = getattr(exc, "name", "") or ""
    match = re.search(r"\(([A-Z_]{3,})\)", text)
    if not name and match:
        name = match.group(1)
    # ClickHouse repeats "Code: N. DB::Exception:" prefixes and appends a stack/version tail.
    core = re.sub(r"(Code: \d+\. )?DB::Exception: ", "", text)
    core = re.sub(r"\s*\(version [^)]*\)", "", core)
    core = re.sub(r"\s*\([A-Z_]{3,}\)\s*$", "", core.strip())
    core = core.split("Stack trace")[0].strip().rstrip(".")
    core = re.sub(r"^default: ", "", core)
    core = core.replace("\n FORMAT Native", "").replace(" FORMAT Native", "")
    expected = core.find(". Expected one of:")
    if expected != -1:  # ClickHouse lists every token it could accept; a few are enough
        options = core[expected + len(". Expected one of:"):].split(",")
        core = core[:expected] + ". Expected one of:" + ",".join(options[:6]) + (", …" if len(options) > 6 else "")
    if len(core) > 600:
        core = core[:600] + "…"
    label = f"ClickHouse error {code} ({name})" if code else "ClickHouse error"
    return QueryError(f"{label}: {core}.", _HINTS.get(name, ""), code=code, name=name)


def _summary_int(summary: dict[str, Any], key: str) -> int:
    try:
        return int(summary.get(key, 0) or 0)
    except (TypeError, ValueError):
        return 0


def server_guard_settings(settings: Settings, limit: int, timeout_s: int | None = None) -> dict[str, Any]:
    """The limits sent with every guarded query on a ClickHouse server (``readonly=2``: the gate refuses
    SETTINGS and SET, so user SQL cannot lift them)."""
    return {"readonly": 2, "max_execution_time": timeout_s or settings.query_timeout_s,
            "max_result_rows": limit + 1, "max_memory_usage": settings.max_memory_usage,
            "max_result_bytes": settings.max_result_bytes, "result_overflow_mode": "break"}


def _within_bytes(frame: pd.DataFrame, max_bytes: int) -> tuple[pd.DataFrame, bool]:
    """The longest first rows of ``frame`` within ``max_bytes``; True when rows were cut.

    ClickHouse's ``max_result_bytes`` (mode ``break``) stops only between blocks,
    and a few huge rows fit in one block: this cut bounds what reaches pages,
    downloads and JSON output, and says so through ``truncated``. (Plain loops,
    not ``memory_usage(deep=True)``: that costs a millisecond on every small answer.)
    """
    if frame.empty or max_bytes <= 0:
        return frame, False
    rows = len(frame)
    total = 0
    per_row: list[Any] = []  # per column: an array of row sizes, or a function that computes it
    for i in range(frame.shape[1]):
        column = frame.iloc[:, i]
        if isinstance(column.dtype, pd.StringDtype):  # Arrow-backed text: its buffer size is known at once
            total += int(column.array.nbytes)
            per_row.append(lambda c=column: c.str.len().fillna(0).to_numpy(dtype=np.int64))
        elif column.dtype == object:  # arrays, maps, mixed objects: sized value by value
            sizes = np.fromiter(map(_value_bytes, column.to_numpy()), dtype=np.int64, count=rows)
            total += int(sizes.sum())
            per_row.append(sizes)
        else:  # fixed-width numbers and times
            width = int(column.array.nbytes) // rows
            total += width * rows
            per_row.append(np.full(rows, width, dtype=np.int64))
    if total <= max_bytes:
        return frame, False
    sizes = sum((p() if callable(p) else p for p in per_row), np.zeros(rows, dtype=np.int64))
    keep = int(np.searchsorted(np.cumsum(sizes), max_bytes, side="right"))
    return frame.iloc[:keep], True


def _value_bytes(value: Any) -> int:
    """About how many bytes a value takes (exact for text and NumPy arrays; lists and maps estimated)."""
    if value is None:
        return 0
    if isinstance(value, (str, bytes, bytearray)):
        return len(value)
    nbytes = getattr(value, "nbytes", None)
    if nbytes is not None:
        return int(nbytes)
    if isinstance(value, (list, tuple)):
        if value and isinstance(value[0], str):
            return 8 * len(value) + sum(map(len, value))
        return 8 * len(value)
    if isinstance(value, dict):
        return 16 * len(value)
    return 8


@dataclass
class _Captured:
    text: str = ""


@contextmanager
def _native_stderr_captured() -> Iterator[_Captured]:
    """Hold back what the engine's native code prints on fd 2 while it starts.

    A failed start prints its own "Cannot lock file" lines before raising; the
    user should see one clear message from Helios instead.
    """
    captured = _Captured()
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield captured
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.text = sink.read().decode("utf-8", "replace")


class ClickHouse:
    """The process-wide connection; safe to share between threads and sessions."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded = settings.embedded
        self._readers: queue.Queue[Client] = queue.Queue()
        self._closed = False
        self._user_writer: Client | None = None  # people's --write statements (opened on first use)
        self._user_writer_lock = threading.Lock()
        self._external: Client | None = None  # Helios-built reads of a live database (opened on first use)
        self._external_lock = threading.Lock()
        if self.embedded:
            settings.clickhouse_dir.mkdir(parents=True, exist_ok=True)
            self._writer = self._open_embedded()
            for _ in range(max(1, settings.reader_pool_size)):
                self._readers.put(self._locked_reader())
        else:
            self._writer = self._open_server()
            self._readers.put(self._writer)
        self.version = str(self._writer.server_version)

    # ---- opening ------------------------------------------------------------

    def _open_embedded(self) -> Client:
        path = self.settings.clickhouse_dir
        try:
            with _native_stderr_captured() as captured:
                client = clickhouse_connect.get_client(dsn=f"chdb://{path}")
            if captured.text:
                sys.stderr.write(captured.text)  # the engine started: its notes were not about a failure
            return client
        except Exception as exc:  # chdb raises plain RuntimeErrors here
            if _ENGINE_LOCKED in str(exc) or "BAD_ARGUMENTS" in str(exc):
                raise ClickHouseUnavailable(
                    f"The data directory {self.settings.data_dir} is in use by another Helios process "
                    "(the embedded engine allows one process per directory).",
                    "Stop the running Helios app first, or set HELIOS_DATA_DIR to another folder.") from exc
            raise ClickHouseUnavailable(f"Could not open the embedded ClickHouse in {path}: {exc}") from exc

    def _open_server(self) -> Client:
        try:
            # No session id: clickhouse-connect then allows concurrent queries on one client.
            return clickhouse_connect.get_client(dsn=self.settings.clickhouse_url, autogenerate_session_id=False,
                                                 connect_timeout=10)
        except Exception as exc:
            from helios_core.config import mask_error  # the driver's message may quote the DSN

            raise ClickHouseUnavailable(
                f"Could not connect to ClickHouse at {self.settings.describe_clickhouse()}: "
                f"{mask_error(str(exc), self.settings.clickhouse_url)}",
                "Check HELIOS_CLICKHOUSE_URL (host, port, user, password) and that the server is up.") from None

    def _locked_reader(self, readonly: int = 1) -> Client:
        client = self._open_embedded()
        client.command(f"SET max_execution_time = {int(self.settings.query_timeout_s)}")
        client.command(f"SET max_result_rows = {int(self.settings.max_result_rows) + 1}")
        client.command(f"SET max_memory_usage = {int(self.settings.max_memory_usage)}")
        client.command(f"SET max_result_bytes = {int(self.settings.max_result_bytes)}")
        client.command("SET result_overflow_mode = 'break'")
        client.command(f"SET readonly = {int(readonly)}")
        return client

    def new_client(self) -> Client:
        """A dedicated read-write handle for a long-lived worker (ingest, jobs)."""
        return self._open_embedded() if self.embedded else self._open_server()

    # ---- guarded queries ----------------------------------------------------

    @contextmanager
    def _reader(self) -> Iterator[Client]:
        client = self._readers.get()
        try:
            yield client
        except BaseException:
            # A failed query can leave its rows on the handle, where the next query (another
            # user's) would read them: a handle that saw an error is replaced by a fresh one.
            client = self._fresh(client, self._locked_reader)
            raise
        finally:
            self._readers.put(client)

    def _fresh(self, client: Client, opener: Any) -> Client:
        if not self.embedded or self._closed:
            return client  # a server's HTTP client holds no result between requests
        try:
            fresh = opener()
        except Exception:
            return client  # keep the pool its size; the next error tries again
        try:
            client.close()
        except Exception:
            pass
        return fresh

    def _guard_settings(self, limit: int, timeout_s: int | None) -> dict[str, Any]:
        if self.embedded:
            return {}  # locked into the reader handle's session
        return server_guard_settings(self.settings, limit, timeout_s)

    def query(self, sql: str, parameters: dict[str, Any] | None = None, *, write: bool = False,
              limit: int | None = None, timeout_s: int | None = None) -> QueryResult:
        """Run user or assistant SQL: through the statement gate (:mod:`helios_core.sqlguard`), then
        under ClickHouse-side guards.

        Read-only unless ``write`` is set deliberately; at most ``limit`` rows
        come back, with ``truncated`` set when more existed (or the result was
        cut at ``max_result_bytes``).
        """
        cap = self._cap(limit)
        text = sqlguard.strip_statement(sql)
        if not text:
            raise QueryError("The query is empty.", "Type a SQL statement, for example SELECT 1.")
        verdict = sqlguard.check(self, text, write=write, parameters=parameters)
        if write:
            return self._run_user_write(verdict.sql, parameters, cap, timeout_s, shown=text)
        result = self.run_guarded(verdict.sql, parameters, limit=cap, timeout_s=timeout_s, shown=text)
        if verdict.kind in sqlguard.SELECT_KINDS:
            self.name_empty_columns(result, verdict.sql, parameters)
        return result

    def name_empty_columns(self, result: QueryResult, sql: str, parameters: dict[str, Any] | None = None) -> None:
        """An empty answer carries no column names from the engine: ask ClickHouse what they would be."""
        if result.row_count or result.column_names:
            return
        try:
            described = self.run_guarded(f"DESCRIBE TABLE ({sql})", parameters, limit=10_000)
        except QueryError:
            return  # the names are a courtesy; the (empty) answer stands
        names = [str(v) for v in described.frame["name"]]
        types = [str(v) for v in described.frame["type"]]
        result.column_names, result.column_types = names, types
        result.frame = pd.DataFrame({name: pd.Series([], dtype=object) for name in names})

    def _cap(self, limit: int | None) -> int:
        if limit is not None and (isinstance(limit, bool) or int(limit) < 1):
            raise ValidationError(f"The row limit must be 1 or more, not {limit}.",
                                  f"Give a limit between 1 and {self.settings.max_result_rows:,}, or none.")
        return min(limit or self.settings.max_result_rows, self.settings.max_result_rows)

    def run_guarded(self, sql: str, parameters: dict[str, Any] | None = None, *, limit: int | None = None,
                    timeout_s: int | None = None, shown: str | None = None,
                    expect_columns: list[str] | None = None) -> QueryResult:
        """Run SQL on a locked reader without the statement gate: for SQL Helios wrote or already checked
        (the gate's own parse, previews). Same limits, same error mapping as :meth:`query`.

        ``expect_columns``: the answer must have exactly these columns, else it is another query's
        (the handle is then replaced, like after any error).
        """
        cap = self._cap(limit)
        started = time.perf_counter()
        with self._reader() as client:
            result = self._collect(lambda: self._run(client, sql, parameters, self._guard_settings(cap, timeout_s)),
                                   shown or sql, cap, started)
            if expect_columns is not None and result.column_names != expect_columns:
                raise QueryError("ClickHouse answered with another query's result; nothing was run with it.",
                                 "Run the query again.")
            return result

    def run_external(self, sql: str, *, limit: int | None = None, timeout_s: int | None = None,
                     shown: str | None = None) -> QueryResult:
        """Run a SELECT Helios built to read a live database through a ``postgresql()``/``mysql()`` table function
        (:mod:`helios_core.chat.live`: the statement passed the chat gate before Helios put the function in).

        The readers' ``readonly=1`` refuses every table function, so this runs on its own handle with the same
        limits and ``readonly=2`` (no DDL, no writes to ClickHouse tables; that the statement is a single SELECT
        is the chat gate's guarantee). Never for SQL a person typed. ``shown`` is what the result reports as its
        query (the SQL before the function, which holds a password, went in).
        """
        cap = self._cap(limit)
        shown = shown or "-- a query on a live database"
        if not self.embedded:
            return self.run_guarded(sql, limit=cap, timeout_s=timeout_s, shown=shown)  # readonly=2 per request
        started = time.perf_counter()

        def opener() -> Client:
            return self._locked_reader(readonly=2)

        with self._external_lock:
            if self._external is None:
                self._external = opener()
            client = self._external
            try:
                settings = {"max_execution_time": int(timeout_s)} if timeout_s else {}
                return self._collect(lambda: self._run(client, sql, None, settings), shown, cap, started)
            except BaseException:
                self._external = self._fresh(client, opener)
                raise

    def _run_user_write(self, sql: str, parameters: dict[str, Any] | None, cap: int, timeout_s: int | None,
                        shown: str) -> QueryResult:
        """A person's write, on its own handle: Helios's writer never sees what a failed user statement left."""
        settings = {"max_execution_time": timeout_s or self.settings.query_timeout_s,
                    "max_memory_usage": self.settings.max_memory_usage}
        started = time.perf_counter()
        with self._user_writer_lock:
            if self._user_writer is None:
                self._user_writer = self.new_client() if self.embedded else self._writer
            client = self._user_writer
            try:
                return self._collect(lambda: self._run(client, sql, parameters, settings), shown, cap, started)
            except BaseException:
                self._user_writer = self._fresh(client, self.new_client)
                raise

    def _collect(self, run: Any, shown: str, cap: int, started: float) -> QueryResult:
        """Run, read the whole answer (the driver reads lazily) and map every failure to a QueryError."""
        try:
            result = run()
            frame = getattr(result, "df_result", None)
            summary = result.summary or {}
            types = [t.name for t in (result.column_types or ())]
            names = list(result.column_names or ())
        except HeliosError:
            raise
        except (StreamFailureError, StreamClosedError) as exc:
            # Its text is the raw stream, which can be another query's rows: never shown.
            raise QueryError(f"ClickHouse's answer could not be read ({type(exc).__name__}).", _UNREADABLE_HINT) \
                from exc
        except (ClickHouseError, DatabaseError) as exc:
            raise to_query_error(exc) from exc
        except Exception as exc:  # the driver failing to read an answer (IndexError, ValueError, …)
            raise QueryError(f"ClickHouse's answer could not be read ({type(exc).__name__}).", _UNREADABLE_HINT) \
                from exc
        elapsed = (time.perf_counter() - started) * 1000
        if frame is None:  # a command (DDL) answers with a summary only
            frame = pd.DataFrame()
        if frame.empty and len(frame.columns) == 0 and names:
            frame = pd.DataFrame({name: pd.Series([], dtype=object) for name in names})
        truncated = len(frame) > cap
        if truncated:
            frame = frame.iloc[:cap]
        frame, cut = _within_bytes(frame, self.settings.max_result_bytes)
        frame = _text_for_objects(frame, types)
        if len(names) != len(frame.columns):
            names = [str(c) for c in frame.columns]
            types = types[: len(names)]
        return QueryResult(query=shown, column_names=names, column_types=types, frame=frame,
                           truncated=truncated or cut, limit=cap, elapsed_ms=elapsed,
                           rows_read=_summary_int(summary, "read_rows"),
                           bytes_read=_summary_int(summary, "read_bytes"),
                           written_rows=_summary_int(summary, "written_rows"))

    @staticmethod
    def _run(client: Client, sql: str, parameters: dict[str, Any] | None, settings: dict[str, Any]) -> Any:
        context = client.create_query_context(query=sql, parameters=parameters, settings=settings or None,
                                              use_numpy=True, as_pandas=True)
        return client.query(context=context)

    # ---- Helios's own statements -------------------------------------------

    def execute(self, sql: str, parameters: dict[str, Any] | None = None,
                settings: dict[str, Any] | None = None) -> Any:
        """Run a statement Helios itself wrote (DDL, metadata writes)."""
        try:
            return self._writer.command(sql, parameters=parameters, settings=settings)
        except (ClickHouseError, DatabaseError) as exc:
            raise to_query_error(exc) from exc

    def internal_query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows of a query Helios itself wrote, as dicts, with no row cap."""
        try:
            result = self._writer.query(sql, parameters=parameters)
        except (ClickHouseError, DatabaseError) as exc:
            raise to_query_error(exc) from exc
        names = result.column_names
        return [dict(zip(names, row, strict=False)) for row in result.result_rows]

    def internal_df(self, sql: str, parameters: dict[str, Any] | None = None) -> pd.DataFrame:
        try:
            return self._writer.query_df(sql, parameters=parameters)
        except (ClickHouseError, DatabaseError) as exc:
            raise to_query_error(exc) from exc

    def insert_rows(self, table: str, rows: list[list[Any]], column_names: list[str], database: str,
                    settings: dict[str, Any] | None = None) -> None:
        try:
            self._writer.insert(table, rows, column_names=column_names, database=database, settings=settings)
        except (ClickHouseError, DatabaseError) as exc:
            raise to_query_error(exc) from exc

    def insert_arrow(self, table: str, arrow_table: Any, database: str,
                     settings: dict[str, Any] | None = None) -> None:
        """Insert an Arrow table on Helios's writer (the write path's one way in: helios_core.ingest.sink)."""
        try:
            self._writer.insert_arrow(table, arrow_table, database=database, settings=settings)
        except (ClickHouseError, DatabaseError) as exc:
            raise to_query_error(exc) from exc

    @property
    def writer(self) -> Client:
        return self._writer

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        clients = {id(self._writer): self._writer}
        if self._user_writer is not None:
            clients[id(self._user_writer)] = self._user_writer
        if self._external is not None:
            clients[id(self._external)] = self._external
        while not self._readers.empty():
            client = self._readers.get_nowait()
            clients[id(client)] = client
        for client in clients.values():
            try:
                client.close()
            except Exception:
                pass

    def describe(self) -> str:
        kind = "Embedded ClickHouse" if self.embedded else "ClickHouse server"
        return f"{kind} {self.version} ({self.settings.describe_clickhouse()})"


# ---- catalog --------------------------------------------------------------------


@dataclass
class TableInfo:
    database: str
    name: str
    engine: str
    sorting_key: str
    partition_key: str
    total_rows: int
    total_bytes: int
    uuid: str
    comment: str = ""
    columns: list[dict[str, Any]] = field(default_factory=list)


def list_databases(ch: ClickHouse, include_system: bool = False) -> dict[str, list[str]]:
    """The seed's ``/api/databases`` shape: ``{database: [tables]}``."""
    rows = ch.internal_query(
        "SELECT d.name AS database, t.name AS table FROM system.databases AS d "
        "LEFT JOIN system.tables AS t ON t.database = d.name "
        "WHERE d.name NOT IN {private:Array(String)} AND ({all:UInt8} OR d.name NOT IN {system:Array(String)}) "
        "ORDER BY database, table",
        {"all": int(include_system), "system": list(SYSTEM_DATABASES), "private": sorted(PRIVATE_DATABASES)})
    out: dict[str, list[str]] = {}
    for row in rows:
        tables = out.setdefault(row["database"], [])
        if row["table"]:
            tables.append(row["table"])
    return out


def list_user_databases(ch: ClickHouse) -> dict[str, list[str]]:
    """The databases users made (``{database: [tables]}``): no system, private or Helios's own (its metadata,
    live chats' stand-ins)."""
    return {db: tables for db, tables in list_databases(ch).items()
            if db != METADATA_DB and not db.startswith(LIVE_STANDIN_PREFIX)}


def list_tables(ch: ClickHouse, database: str) -> list[TableInfo]:
    return _table_infos(ch, database)


def table_info(ch: ClickHouse, database: str, table: str) -> TableInfo:
    infos = _table_infos(ch, database, table)
    if not infos:
        raise NotFound(f"Table {database}.{table} does not exist.", "Pick a table from the Databases page.")
    info = infos[0]
    info.columns = table_columns(ch, database, table)
    return info


def _table_infos(ch: ClickHouse, database: str, table: str | None = None) -> list[TableInfo]:
    """Tables of ``database`` (only ``table`` when given: sizes are not worked out for the others)."""
    where = "database = {db:String}" + (" AND name = {t:String}" if table is not None else "")
    rows = ch.internal_query(
        "SELECT database, name, engine, sorting_key, partition_key, toUInt64(ifNull(total_rows, 0)) AS total_rows, "
        "toUInt64(ifNull(total_bytes, 0)) AS total_bytes, toString(uuid) AS uuid, comment "
        f"FROM system.tables WHERE {where} ORDER BY name", {"db": database, "t": table or ""})
    return [TableInfo(**row) for row in rows]


def table_columns(ch: ClickHouse, database: str, table: str) -> list[dict[str, Any]]:
    return ch.internal_query(
        "SELECT name, type, default_kind, default_expression, comment, is_in_sorting_key, is_in_partition_key "
        "FROM system.columns WHERE database = {db:String} AND table = {t:String} ORDER BY position",
        {"db": database, "t": table})


def table_exists(ch: ClickHouse, database: str, table: str) -> bool:
    rows = ch.internal_query("SELECT count() AS n FROM system.tables "
                             "WHERE database = {db:String} AND name = {t:String}", {"db": database, "t": table})
    return bool(rows[0]["n"])


def preview_sql(database: str, table: str, limit: int = 100) -> str:
    """The query for a table's first rows, laid out for an editor."""
    return f"SELECT *\nFROM {quote_ident(database)}.{quote_ident(table)}\nLIMIT {int(limit)}"


def preview(ch: ClickHouse, database: str, table: str, limit: int = 100) -> QueryResult:
    """The first rows of a table, through the guarded path."""
    if database in PRIVATE_DATABASES:
        raise NotFound(f"{database} holds analysis jobs' inputs: its rows are not shown.",
                       "Run an analysis on the Jobs page: only its safe aggregates are released.")
    sql = preview_sql(database, table, limit)
    result = ch.run_guarded(sql, limit=limit)
    ch.name_empty_columns(result, sql)
    return result


def is_empty(ch: ClickHouse) -> bool:
    """True when no user table exists: the databases :func:`list_user_databases` lists have no tables (so the Home
    page's counts and its "empty" agree by construction)."""
    return not any(list_user_databases(ch).values())


@dataclass(frozen=True)
class CatalogName:
    """A database, table or column name, as an editor's autocompletion offers it."""

    value: str
    kind: str  # "database", "table" or "column"
    detail: str = ""  # where it lives: "demo" for a table, "demo.users · UInt64" for a column


def catalog_names(ch: ClickHouse, max_columns: int = 5000) -> list[CatalogName]:
    """Every database, table and column name outside the system databases (two catalog queries).

    Columns stop at ``max_columns``: an editor's completion list, not an inventory.
    """
    databases = list_databases(ch)
    names = [CatalogName(db, "database") for db in databases]
    names += [CatalogName(table, "table", db) for db, tables in databases.items() for table in tables]
    rows = ch.internal_query(
        "SELECT database, table, name, type FROM system.columns WHERE database NOT IN {system:Array(String)} "
        "ORDER BY database, table, position LIMIT {n:UInt32}", {"system": list(SYSTEM_DATABASES), "n": max_columns})
    names += [CatalogName(r["name"], "column", f"{r['database']}.{r['table']} · {r['type']}") for r in rows]
    return names
