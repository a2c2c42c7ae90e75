"""Chats over a live PostgreSQL or MySQL database, read through ClickHouse's own table functions.

The password never reaches the disk. ClickHouse keeps the definition of a
``PostgreSQL``/``MySQL`` table or database engine (password included) in its
metadata files, so Helios creates neither. Instead:

* The connection (password included) lives in this process's memory only
  (:data:`_connections`, keyed by chat id); the chat's record in
  ``helios.chat_connections`` keeps dbms, host, port, user, database and schema,
  never the password. After a restart the chat asks for it again (or reads it
  from ``.streamlit/secrets.toml`` when the chat was made from a named connection).
* Each chat gets a stand-in database ``helios_live_<chat id>`` (engine ``Memory``:
  its tables' definitions stay in memory) holding one ``Null`` table per remote
  table, with the columns ClickHouse itself reads from the remote table. The
  assistant, the shared statement gate and the chat gate work on those unchanged
  (they resolve names and types); the stand-ins hold no rows, so an INSERT into
  one (from the SQL explorer, say) goes nowhere and nobody else reads the remote
  data through them.
* Only after the gate passed a statement (a single SELECT over the chat's tables)
  does Helios replace each stand-in table in the canonical SQL with
  ``postgresql('host:port', 'db', 'table', 'user', 'password', 'schema')`` (or
  ``mysql(…)``) and run it with :meth:`ClickHouse.run_external` (time, row and
  memory limits; ``readonly=2`` so that exactly this Helios-built table function
  may run). Helios never sends a write to the remote server; a read-only user
  is still recommended.
* ClickHouse masks table function passwords (``[HIDDEN]``) in its own messages;
  every message from the remote path is scrubbed of the password again anyway.
"""

from __future__ import annotations

import re
import threading
import tomllib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from helios_core.config import secrets_toml_paths
from helios_core.errors import HeliosError, NotFound, QueryError, ValidationError
from helios_core.identifiers import quote_ident
from helios_core.metadata import LIVE_STANDIN_PREFIX, METADATA_DB, next_version

if TYPE_CHECKING:
    from helios_core.chat.store import Chat, ChatStore
    from helios_core.clickhouse import ClickHouse, QueryResult

STANDIN_PREFIX = LIVE_STANDIN_PREFIX
DBMS_NAMES = {"postgresql": "postgresql", "postgres": "postgresql", "pg": "postgresql", "mysql": "mysql",
              "mariadb": "mysql"}
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}
LABELS = {"postgresql": "PostgreSQL", "mysql": "MySQL"}
ENVIRONMENTS = ("local", "cloud")
MAX_TABLES = 200

METADATA_TABLES = [
    """CREATE TABLE IF NOT EXISTS helios.chat_connections (
        chat_id String,
        dbms LowCardinality(String),
        environment LowCardinality(String),
        host String,
        port UInt16,
        user String,
        database String,
        schema String,
        connection_name String,
        created_at DateTime64(3, 'UTC'),
        deleted UInt8 DEFAULT 0,
        version UInt64
    ) ENGINE = ReplacingMergeTree(version) ORDER BY chat_id""",
]
_COLUMNS = ["chat_id", "dbms", "environment", "host", "port", "user", "database", "schema", "connection_name",
            "created_at", "deleted", "version"]
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9._-]{0,252})|\[[0-9A-Fa-f:.]+\])$")


@dataclass
class LiveConnection:
    """Where a live database is and how to log in. ``password`` stays in memory (never in repr or JSON)."""

    dbms: str
    host: str
    port: int
    user: str
    database: str
    password: str = field(default="", repr=False)
    schema: str = ""
    environment: str = "local"
    connection_name: str = ""   # a [connections.NAME] entry of .streamlit/secrets.toml

    @property
    def label(self) -> str:
        return LABELS.get(self.dbms, self.dbms)

    @property
    def remote_schema(self) -> str:
        return self.schema or ("public" if self.dbms == "postgresql" else self.database)

    def describe(self) -> str:
        return f"{self.label} database {self.database} at {self.host}:{self.port} as {self.user}"

    def public(self) -> dict[str, Any]:
        """Everything but the password (what the chat record and the credentials view show)."""
        return {"dbms": self.dbms, "environment": self.environment, "host": self.host, "port": self.port,
                "user": self.user, "database": self.database, "schema": self.remote_schema,
                "connection_name": self.connection_name}


def make_connection(dbms: str, host: str, port: Any, user: str, database: str, password: str = "",
                    schema: str = "", environment: str = "local", connection_name: str = "") -> LiveConnection:
    """Validated connection details (what the form, the API and secrets.toml give)."""
    problems: list[str] = []
    kind = DBMS_NAMES.get(str(dbms or "").strip().lower())
    if kind is None:
        problems.append(f"Unknown database system {str(dbms)[:40]!r}: use PostgreSQL or MySQL.")
        kind = "postgresql"
    host = str(host or "").strip()
    if not host:
        problems.append("The host is missing.")
    elif not _HOST.match(host):
        problems.append(f"{host[:80]!r} is not a host name or IP address.")
    try:
        number = int(str(port).strip()) if str(port or "").strip() else DEFAULT_PORTS[kind]
        if not 0 < number < 65536:
            raise ValueError
    except ValueError:
        problems.append(f"The port must be a number from 1 to 65535, not {str(port)[:20]!r}.")
        number = 0
    user, database, schema = str(user or "").strip(), str(database or "").strip(), str(schema or "").strip()
    if not user:
        problems.append("The user name is missing.")
    if not database:
        problems.append("The database name is missing.")
    for label, value in (("user", user), ("database", database), ("schema", schema)):
        if len(value) > 200 or any(ord(c) < 32 for c in value):
            problems.append(f"The {label} name is too long or has control characters.")
    if len(password or "") > 1000 or "\x00" in (password or ""):
        problems.append("The password is too long or has a NUL character.")
    environment = str(environment or "local").strip().lower()
    if environment not in ENVIRONMENTS:
        problems.append(f"The environment is local or cloud, not {environment[:20]!r}.")
    if problems:
        raise ValidationError(problems[0], "Check the connection details.", problems=problems)
    return LiveConnection(kind, host, number, user, database, password or "", schema, environment,
                          connection_name)


# ---- named connections in .streamlit/secrets.toml ----------------------------------------------------------


def secrets_paths() -> list[Path]:
    """Where Streamlit reads secrets (see :func:`helios_core.config.secrets_toml_paths`)."""
    return secrets_toml_paths()


def named_connections() -> dict[str, dict[str, Any]]:
    """``[connections.NAME]`` entries with a PostgreSQL or MySQL dialect (Streamlit's SQLConnection keys)."""
    found: dict[str, dict[str, Any]] = {}
    for path in reversed(secrets_paths()):  # the project's file wins over the user's
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            continue
        for name, entry in (data.get("connections") or {}).items():
            if isinstance(entry, dict) and DBMS_NAMES.get(str(entry.get("dialect", "")).split("+")[0].lower()):
                found[str(name)] = entry
    return found


def named_connection(name: str) -> LiveConnection:
    entry = named_connections().get(name)
    if entry is None:
        raise NotFound(f"There is no PostgreSQL or MySQL connection named {name!r} in .streamlit/secrets.toml.",
                       "Add a [connections.NAME] section with dialect, host, port, username, password and database.")
    return make_connection(str(entry.get("dialect", "")).split("+")[0], entry.get("host", ""), entry.get("port", ""),
                           entry.get("username") or entry.get("user") or "", entry.get("database", ""),
                           str(entry.get("password") or ""), entry.get("schema", ""),
                           entry.get("environment", "local"), connection_name=name)


# ---- the in-memory registry -------------------------------------------------------------------------------

_connections: dict[str, LiveConnection] = {}
_row_estimates: dict[str, dict[str, int]] = {}   # chat id → table → the server's own row estimate
_lock = threading.RLock()


def standin_database(chat_id: str) -> str:
    return f"{STANDIN_PREFIX}{chat_id}"


def connection_for(database: str) -> LiveConnection | None:
    """The live connection behind a stand-in database, when this process has its password."""
    if not database.startswith(STANDIN_PREFIX):
        return None
    with _lock:
        return _connections.get(database[len(STANDIN_PREFIX):])


def is_connected(chat_id: str) -> bool:
    with _lock:
        return chat_id in _connections


def record(ch: ClickHouse, chat_id: str) -> LiveConnection | None:
    """A chat's stored connection details (no password), or None for a chat about ClickHouse data."""
    rows = ch.internal_query("SELECT * FROM helios.chat_connections FINAL WHERE chat_id = {id:String} AND deleted = 0",
                             {"id": chat_id})
    if not rows:
        return None
    r = rows[0]
    return LiveConnection(r["dbms"], r["host"], int(r["port"]), r["user"], r["database"], "", r["schema"],
                          r["environment"], r["connection_name"])


def _write_record(ch: ClickHouse, chat_id: str, conn: LiveConnection, deleted: bool = False) -> None:
    row = [chat_id, conn.dbms, conn.environment, conn.host, conn.port, conn.user, conn.database, conn.remote_schema,
           conn.connection_name, datetime.now(UTC), int(deleted), next_version()]
    ch.insert_rows("chat_connections", [row], _COLUMNS, database=METADATA_DB)


# ---- connecting -------------------------------------------------------------------------------------------


def create_chat(ch: ClickHouse, store: ChatStore, conn: LiveConnection, name: str = "") -> Chat:
    """Check the connection (its tables are listed), then create the chat, its record and its stand-ins."""
    tables = remote_tables(ch, conn)  # a wrong password or an unreachable host fails here, before any record
    chat_id = uuid.uuid4().hex[:12]
    chat = store.create(name or f"{conn.label}: {conn.database}", standin_database(chat_id), chat_id=chat_id)
    _write_record(ch, chat.id, conn)
    _attach(ch, chat.id, conn, tables)
    return chat


def reconnect(ch: ClickHouse, chat_id: str, password: str = "") -> LiveConnection:
    """Give a chat its password again (after a restart); a named connection reads it from secrets.toml."""
    stored = record(ch, chat_id)
    if stored is None:
        raise NotFound(f"Chat {chat_id!r} is not about a live database.")
    if stored.connection_name and not password:
        conn = named_connection(stored.connection_name)
    else:
        conn = LiveConnection(**{**stored.__dict__, "password": password or ""})
    _attach(ch, chat_id, conn, remote_tables(ch, conn))
    return conn


def ensure_ready(ch: ClickHouse, chat: Chat) -> None:
    """Before a question: a live chat needs its password in memory and its stand-in tables."""
    if not chat.database.startswith(STANDIN_PREFIX):
        return
    if chat.database != standin_database(chat.id):
        raise ValidationError(f"{chat.database!r} belongs to another chat's live database.",
                              "Connect the live database in a chat of your own.")
    with _lock:
        conn = _connections.get(chat.id)
    if conn is not None:
        exists = ch.internal_query("SELECT count() AS n FROM system.databases WHERE name = {db:String}",
                                   {"db": chat.database})[0]["n"]
        if not exists:
            _attach(ch, chat.id, conn, remote_tables(ch, conn))
        return
    stored = record(ch, chat.id)
    if stored is None:
        return
    if stored.connection_name:
        reconnect(ch, chat.id)
        return
    raise PasswordNeeded(f"This chat reads the {stored.describe()}. Helios does not keep its password, so it needs "
                         "it again after a restart.",
                         "Type the password in the chat's 'Reconnect' box (or POST it to "
                         f"/api/chats/{chat.id}/connect).")


class PasswordNeeded(ValidationError):
    """A live chat whose password this process does not have (it is never stored)."""


def forget(ch: ClickHouse, chat_id: str) -> None:
    """A deleted chat: its password leaves memory, its stand-ins and its record go."""
    with _lock:
        _connections.pop(chat_id, None)
        _row_estimates.pop(chat_id, None)
    stored = record(ch, chat_id)
    if stored is not None:
        _write_record(ch, chat_id, stored, deleted=True)
    ch.execute(f"DROP DATABASE IF EXISTS {quote_ident(standin_database(chat_id))} SYNC")
    from helios_core.chat.context import invalidate
    invalidate(standin_database(chat_id))


def _attach(ch: ClickHouse, chat_id: str, conn: LiveConnection, tables: list[tuple[str, list[tuple[str, str]]]]) \
        -> None:
    """(Re)build the stand-in database and keep the connection in memory."""
    db = quote_ident(standin_database(chat_id))
    ch.execute(f"DROP DATABASE IF EXISTS {db} SYNC")
    ch.execute(f"CREATE DATABASE {db} ENGINE = Memory COMMENT 'Stand-ins of a live database (no rows, no secrets)'")
    for table, columns in tables:
        cols = ", ".join(f"{quote_ident(c)} {t}" for c, t in columns)
        ch.execute(f"CREATE TABLE {db}.{quote_ident(table)} ({cols}) ENGINE = Null")
    estimates = row_estimates(ch, conn)
    with _lock:
        _connections[chat_id] = conn
        _row_estimates[chat_id] = estimates
    from helios_core.chat.context import invalidate
    invalidate(standin_database(chat_id))


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def table_function(conn: LiveConnection, table: str, schema: str | None = None) -> str:
    """``postgresql(…)`` / ``mysql(…)`` reading one remote table (the text holds the password: memory only)."""
    address = _literal(f"{conn.host}:{conn.port}")
    if conn.dbms == "mysql":
        return (f"mysql({address}, {_literal(schema or conn.database)}, {_literal(table)}, {_literal(conn.user)}, "
                f"{_literal(conn.password)})")
    return (f"postgresql({address}, {_literal(conn.database)}, {_literal(table)}, {_literal(conn.user)}, "
            f"{_literal(conn.password)}, {_literal(schema or conn.remote_schema)})")


def remote_tables(ch: ClickHouse, conn: LiveConnection) -> list[tuple[str, list[tuple[str, str]]]]:
    """The remote tables and views of the schema, each with the columns ClickHouse reads from it."""
    if conn.dbms == "mysql":
        source = table_function(conn, "TABLES", "information_schema")
        sql = (f"SELECT TABLE_NAME AS name FROM {source} WHERE TABLE_SCHEMA = {{s:String}} "
               f"ORDER BY name LIMIT {MAX_TABLES}")
    else:
        source = table_function(conn, "tables", "information_schema")
        sql = (f"SELECT table_name AS name FROM {source} WHERE table_schema = {{s:String}} "
               f"AND table_type IN ('BASE TABLE', 'VIEW') ORDER BY name LIMIT {MAX_TABLES}")
    with remote_errors(conn):
        names = [str(r["name"]) for r in ch.internal_query(sql, {"s": conn.remote_schema})]
        if not names:
            raise ValidationError(f"The {conn.describe()} has no tables this user can see in schema "
                                  f"{conn.remote_schema!r}.",
                                  "Check the database and schema names, and that the user may read the tables "
                                  "(GRANT SELECT).")
        out = []
        for name in names:
            described = ch.internal_query(f"DESCRIBE TABLE {table_function(conn, name)}")
            out.append((name, [(str(r["name"]), str(r["type"])) for r in described]))
    return out


def row_estimates(ch: ClickHouse, conn: LiveConnection) -> dict[str, int]:
    """About how many rows each remote table has, from the server's statistics (no table is scanned);
    empty when the statistics cannot be read."""
    if conn.dbms == "mysql":
        sql = (f"SELECT TABLE_NAME AS name, toUInt64(ifNull(TABLE_ROWS, 0)) AS n "
               f"FROM {table_function(conn, 'TABLES', 'information_schema')} WHERE TABLE_SCHEMA = {{s:String}}")
    else:
        sql = (f"SELECT relname AS name, toUInt64(greatest(n_live_tup, 0)) AS n "
               f"FROM {table_function(conn, 'pg_stat_user_tables', 'pg_catalog')} WHERE schemaname = {{s:String}}")
    try:
        return {str(r["name"]): int(r["n"]) for r in ch.internal_query(sql, {"s": conn.remote_schema})}
    except HeliosError:
        return {}  # only a hint for the assistant: the chat works without it


def row_estimate(database: str, table: str) -> int | None:
    if not database.startswith(STANDIN_PREFIX):
        return None
    with _lock:
        return _row_estimates.get(database[len(STANDIN_PREFIX):], {}).get(table)


@contextmanager
def remote_errors(conn: LiveConnection) -> Iterator[None]:
    """Errors from the remote path as messages a person can act on, the password never in them."""
    try:
        yield
    except HeliosError as exc:
        raise _clean(exc, conn) from None


def _scrub(text: str, conn: LiveConnection) -> str:
    if conn.password:
        text = text.replace(conn.password, "***")
        escaped = _literal(conn.password)[1:-1]
        if escaped != conn.password:
            text = text.replace(escaped, "***")
    return text


def _clean(exc: HeliosError, conn: LiveConnection) -> HeliosError:
    raw = _scrub(exc.message, conn)
    where = f"{conn.label} at {conn.host}:{conn.port}"
    lowered = raw.lower()
    if "password authentication failed" in lowered or "access denied for user" in lowered \
            or "no password supplied" in lowered or "authentication failed" in lowered:
        return ValidationError(f"{where} refused the user name or password for user {conn.user!r}.",
                               "Check the user and password (and that this user may log in from Helios's host).")
    if re.search(r"database \"?[^\"]*\"? does not exist|unknown database", lowered):
        return ValidationError(f"{where} has no database {conn.database!r}.", "Check the database name.")
    if "connection refused" in lowered or "could not translate host name" in lowered \
            or "timeout expired" in lowered or "can't connect" in lowered or "no route to host" in lowered \
            or getattr(exc, "name", "") == "POSTGRESQL_CONNECTION_FAILURE" \
            or "name or service not known" in lowered or "timed out" in lowered:
        return ValidationError(f"Helios could not reach {where}: nothing answered there.",
                               "Check the host and port, that the server is running and accepts connections "
                               "from Helios's host (firewall, listen_addresses, pg_hba.conf).")
    if "permission denied" in lowered:
        return QueryError(f"{where} refused to read a table: permission denied for user {conn.user!r}.",
                          "Grant the user SELECT on the tables (GRANT SELECT ON ALL TABLES IN SCHEMA … TO …).",
                          code=getattr(exc, "code", None), name=getattr(exc, "name", ""))
    if isinstance(exc, QueryError):
        return QueryError(raw, _scrub(exc.hint, conn), code=exc.code, name=exc.name)
    return type(exc)(raw, _scrub(exc.hint, conn)) if type(exc) in (HeliosError, ValidationError, NotFound) \
        else HeliosError(raw, _scrub(exc.hint, conn))


# ---- asking -----------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`(?:[^`\\]|\\.)*`|[A-Za-z_][A-Za-z0-9_$]*|\s+|.",
                    re.S)


def _unquote(token: str) -> str:
    if token.startswith("`") and token.endswith("`") and len(token) >= 2:
        return re.sub(r"\\(.)", r"\1", token[1:-1])
    return token


def rewrite(sql: str, database: str, conn: LiveConnection, tables: set[str]) -> str:
    """The gate-checked canonical SQL with each ``<stand-in db>.<table>`` replaced by the remote table function.

    Works on ClickHouse's own tokens (strings and quoted names are skipped whole), and refuses
    what it cannot rewrite faithfully (a three-part name ``db.table.column``)."""
    tokens = [m.group(0) for m in _TOKEN.finditer(sql)]
    out: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if _unquote(tok) == database and i + 2 < len(tokens) and tokens[i + 1] == "." \
                and _unquote(tokens[i + 2]) in tables:
            table = _unquote(tokens[i + 2])
            j = i + 3
            while j < len(tokens) and tokens[j].isspace():
                j += 1
            following = tokens[j] if j < len(tokens) else ""
            if following == ".":
                raise ValidationError(f"Write columns as {table}.column (or with an alias), not with the database.",
                                      "Qualify the table with its database in FROM only.")
            out.append(table_function(conn, table))
            if following.upper() != "AS":
                out.append(f" AS {quote_ident(table)}")
            i += 3
            continue
        out.append(tok)
        i += 1
    return "".join(out)


def run(ch: ClickHouse, database: str, checked_sql: str, limit: int | None = None) -> QueryResult:
    """Run a gate-checked SELECT over a chat's stand-ins against the live database."""
    conn = connection_for(database)
    if conn is None:
        raise PasswordNeeded("Helios no longer has this live database's password.", "Reconnect the chat.")
    tables = {r["name"] for r in ch.internal_query("SELECT name FROM system.tables WHERE database = {db:String}",
                                                   {"db": database})}
    remote = rewrite(checked_sql, database, conn, tables)
    with remote_errors(conn):
        result = ch.run_external(remote, limit=limit, shown=checked_sql)
    ch.name_empty_columns(result, checked_sql)  # the stand-ins know the column names and types
    return result


def sample_source(database: str, table: str) -> str | None:
    """What the context samples a live table's values from (the remote table), or None for ClickHouse data."""
    conn = connection_for(database)
    return table_function(conn, table) if conn is not None else None


@contextmanager
def sampling_errors(database: str) -> Iterator[None]:
    conn = connection_for(database)
    if conn is None:
        yield
        return
    with remote_errors(conn):
        yield
