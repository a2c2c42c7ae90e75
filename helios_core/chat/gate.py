"""The one gate every assistant-written statement passes before it runs.

The checks are ClickHouse's own, never a regex over the text, and all of them
run through the guarded reader (``readonly=1``, time and row limits):

1. The shared statement gate (:func:`helios_core.sqlguard.check`, read-only):
   ``formatQuery(sql)`` (exactly one statement; its canonical text is what runs
   afterwards) and ``EXPLAIN AST`` with the rules every user statement obeys
   (no INTO OUTFILE, SETTINGS, outside table functions, system logs, …).
2. The chat's own rules on the same tree: the statement must be a SELECT (or
   UNION/WITH of SELECTs) with nothing attached to the outside (no FORMAT),
   no table functions at all, and no reference to a database other than the
   subject's.
3. ``EXPLAIN QUERY TREE``: ClickHouse's analyzer resolves every table and
   column; an unknown column or table is refused with ClickHouse's message,
   and every table it resolved must be one the chat is about.
4. The canonical statement runs with :meth:`ClickHouse.run_guarded` (read-only,
   time-limited, row-capped; the gate has already checked it).

For a chat about a saved query the statement reads the table ``result``,
which is the saved query, attached as a common table expression.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

from helios_core import sqlguard
from helios_core.clickhouse import SYSTEM_DATABASES, ClickHouse, QueryResult
from helios_core.errors import QueryError
from helios_core.metadata import METADATA_DB
from helios_core.sqlguard import SqlRefused  # one refusal class for both gates (its message goes to an LLM's repair)

__all__ = ["SqlRefused", "GatePolicy", "CheckedSql", "check", "check_subject_sql", "run", "canonical", "QUERY_TABLE"]

QUERY_TABLE = "result"  # the name a saved query's result goes by inside a chat (the gate attaches it as a CTE)


@dataclass
class GatePolicy:
    """What a statement may read. ``tables`` maps ``db.table`` (or a bare name such as ``result``) to columns;
    ``None`` means any table outside the system and Helios databases (a user's own saved query)."""

    tables: dict[str, set[str]] | None
    database: str = ""
    subject_sql: str = ""                                   # a saved query, read as ``result``
    subject_tables: list[str] = field(default_factory=list)  # the tables that saved query reads

    def table_allowed(self, name: str) -> bool:
        if self.tables is None:
            db = name.split(".", 1)[0] if "." in name else ""
            return db not in _FORBIDDEN_DBS
        return name in self.tables


_FORBIDDEN_DBS = {d.lower() for d in SYSTEM_DATABASES} | {METADATA_DB}


@dataclass
class CheckedSql:
    sql: str                               # canonical text, as ClickHouse formatted it
    tables: list[str] = field(default_factory=list)
    check_ms: float = 0.0


def _lines(result: QueryResult) -> list[str]:
    if result.frame.empty:
        return []
    return [str(v) for v in result.frame.iloc[:, 0].tolist()]


_databases_cache: tuple[float, set[str]] = (0.0, set())
_databases_lock = threading.Lock()


def _database_names(ch: ClickHouse) -> set[str]:
    global _databases_cache
    with _databases_lock:
        stamp, names = _databases_cache
        if time.monotonic() - stamp < 30 and names:
            return names
    names = {r["name"].lower() for r in ch.internal_query("SELECT name FROM system.databases")}
    with _databases_lock:
        _databases_cache = (time.monotonic(), names)
    return names


def _verdict(ch: ClickHouse, sql: str) -> sqlguard.Verdict:
    """The shared gate's verdict (read-only): one statement, parsed, with every common rule checked."""
    text = sqlguard.strip_statement(sql)
    if not text:
        raise SqlRefused("There is no SQL statement to run.")
    try:
        return sqlguard.check(ch, text, write=False)
    except SqlRefused:
        raise
    except QueryError as exc:
        raise SqlRefused(f"ClickHouse cannot parse this SQL: {exc.message}", exc.hint) from exc


def canonical(ch: ClickHouse, sql: str) -> str:
    """ClickHouse's formatting of exactly one statement (refused when it is not one, or breaks a shared rule)."""
    return _verdict(ch, sql).canonical


# Scalar functions that read outside the chat's tables (dictionaries, Join tables; file() is the shared gate's).
_OUTSIDE_READERS = ("joinget", "joingetornull")


def check_ast(ch: ClickHouse, sql: str, policy: GatePolicy) -> None:
    """A single read-only SELECT with no table functions, settings or outside clauses."""
    _check_chat_rules(ch, list(_verdict(ch, sql).nodes), policy)


def _check_chat_rules(ch: ClickHouse, nodes: list[sqlguard.Node], policy: GatePolicy) -> None:
    """The chat's own rules on a tree the shared gate already passed."""
    if not nodes or not nodes[0].label.startswith("SelectWithUnionQuery"):
        kind = nodes[0].label.split(" ")[0] if nodes else "nothing"
        kind = re.sub(r"(?<!^)(?=[A-Z])", " ", kind.removesuffix("Query")).upper() if kind != "nothing" else kind
        raise SqlRefused(f"Only a read-only SELECT may run, not {kind}.",
                         "Ask a question about the data; the assistant never changes it.")
    top = [n for n in nodes if n.depth == 1]
    extras = [n for n in top[1:] if n.label != "Identifier Native"]  # the driver appends FORMAT Native
    if extras:
        raise SqlRefused("Only a plain SELECT may run: no INTO OUTFILE, FORMAT or other outer clause.")
    known_dbs = _database_names(ch)
    for i, node in enumerate(nodes):
        label = node.label  # SETTINGS, INTO OUTFILE, file(), url(), … were refused by the shared gate
        if label.startswith("Function "):
            fname = label.split(" ")[1].lower()
            if fname in _OUTSIDE_READERS or fname.startswith("dict"):
                raise SqlRefused(f"The function {label.split(' ')[1]}() reads outside the chat's tables.",
                                 "Use only the chat's tables.")
        if label.startswith("TableExpression"):
            child = nodes[i + 1] if i + 1 < len(nodes) else None
            if child and child.depth == node.depth + 1 and child.label.startswith("Function "):
                name = child.label.split(" ")[1]
                raise SqlRefused(f"Table functions such as {name}() may not be used.",
                                 "Read the chat's tables only.")
        if label.startswith(("TableIdentifier ", "Identifier ")):
            name = _identifier_name(label)
            if "." in name:
                db = name.split(".", 1)[0].lower()
                if db in known_dbs and not _db_allowed(db, policy):
                    raise SqlRefused(f"The statement reads {name}, which this chat is not about.",
                                     "Use only the tables listed in the chat's schema.")
            elif label.startswith("TableIdentifier ") and policy.tables is not None \
                    and policy.database and f"{policy.database}.{name}" in policy.tables:
                raise SqlRefused(f"Write the table as {policy.database}.{name}, with its database.",
                                 "Qualify every table with its database name.")


def _db_allowed(db: str, policy: GatePolicy) -> bool:
    if db in _FORBIDDEN_DBS:
        return False
    if policy.tables is None:
        return True
    return any(t.lower().startswith(db + ".") for t in policy.tables)


def _identifier_name(label: str) -> str:
    name = label.split(" ", 1)[1]
    return re.sub(r" \(alias [^)]*\)$", "", name)


def check_tree(ch: ClickHouse, sql: str, policy: GatePolicy) -> list[str]:
    """ClickHouse resolves every name; only the allowed tables may appear. Returns the tables read."""
    try:
        lines = _lines(ch.run_guarded(f"EXPLAIN QUERY TREE {sql}", limit=100_000))
    except QueryError as exc:
        if exc.name in ("UNKNOWN_IDENTIFIER", "UNKNOWN_TABLE", "UNKNOWN_DATABASE", "UNKNOWN_FUNCTION",
                        "NO_SUCH_COLUMN_IN_TABLE", "UNKNOWN_ELEMENT_OF_ENUM"):
            raise SqlRefused(f"The statement names something this chat does not have: {exc.message}",
                             "Use only the tables and columns of the chat's schema.") from exc
        raise
    tables = []
    for line in lines:
        text = line.strip()
        if text.startswith("TABLE_FUNCTION "):
            name = re.search(r"table_function_name: ([^,\s]+)", text)
            raise SqlRefused(f"Table functions such as {name.group(1) if name else 'this one'}() may not be used.")
        if text.startswith("TABLE "):
            match = re.search(r"table_name: (.+?)(?:,|$)", text)
            if match:
                table = match.group(1).strip()
                if table == "system.one":  # the implicit table of SELECT without FROM
                    continue
                if not policy.table_allowed(table):
                    raise SqlRefused(f"The statement reads {table}, which this chat is not about.",
                                     "Use only the tables listed in the chat's schema.")
                tables.append(table)
    return tables


def check(ch: ClickHouse, sql: str, policy: GatePolicy) -> CheckedSql:
    """Every check of the gate; returns the canonical statement to run (with the saved query attached)."""
    started = time.perf_counter()
    verdict = _verdict(ch, sql)
    text = verdict.canonical
    _check_chat_rules(ch, list(verdict.nodes), policy)
    if policy.subject_sql:
        full = attach_subject(text, policy.subject_sql)
        # Resolved with the saved query attached, the statement may read exactly what that query reads.
        tables = check_tree(ch, full, GatePolicy({t: set() for t in policy.subject_tables}))
    else:
        full = text
        tables = check_tree(ch, text, policy)
    return CheckedSql(full, tables, (time.perf_counter() - started) * 1000)


def attach_subject(sql: str, subject_sql: str) -> str:
    """``WITH result AS (<saved query>)`` in front of a canonical statement (merged into its own WITH)."""
    head = f"WITH {QUERY_TABLE} AS (\n{subject_sql}\n)"
    match = re.match(r"^WITH\s+", sql)
    if match:
        return f"{head},\n{sql[match.end():]}"
    return f"{head}\n{sql}"


def check_subject_sql(ch: ClickHouse, sql: str) -> CheckedSql:
    """A saved query a chat is about: one read-only SELECT over the user's own tables."""
    started = time.perf_counter()
    verdict = _verdict(ch, sql)
    text = verdict.canonical
    policy = GatePolicy(None)
    _check_chat_rules(ch, list(verdict.nodes), policy)
    tables = check_tree(ch, text, policy)
    return CheckedSql(text, sorted(set(tables)), (time.perf_counter() - started) * 1000)


def run(ch: ClickHouse, sql: str, policy: GatePolicy, limit: int | None = None) -> tuple[CheckedSql, QueryResult]:
    """Check, then run through the guarded query path."""
    checked = check(ch, sql, policy)
    return checked, ch.run_guarded(checked.sql, limit=limit)
