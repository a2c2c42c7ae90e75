"""The one gate every statement a person or the assistant writes passes before it runs.

:meth:`ClickHouse.query` calls :func:`check` for the SQL explorer, the CLI
``query``, reports, the chat and any future API alike. The statement is
classified by ClickHouse's own parser, never by a regex over the text:

1. ``SELECT formatQuery({sql:String})`` with the SQL as a bound string: it
   fails unless the text is exactly one statement, and returns the canonical
   text (comments gone, whitespace and case normalised).
2. ``EXPLAIN AST`` of that canonical text: the parse tree, walked node by node.

Refused in every mode: ``INTO OUTFILE`` / ``FROM INFILE`` (Helios is not a way
to touch the host's files), ``SET`` and ``SETTINGS`` (limits are Helios's),
``SYSTEM``, ``KILL``, ``BACKUP``/``RESTORE``, ``USE``, transactions, access
control, table functions outside a safe list (files, network, other
processes), engines and dictionary sources that reach outside, and the
system tables that hold other sessions' SQL. Read-only mode runs only
SELECT/WITH (UNION, INTERSECT, EXCEPT), SHOW, DESCRIBE, EXISTS and EXPLAIN.

Both checks run on the locked reader through :meth:`ClickHouse.run_guarded`
(which does not gate again). The ``readonly`` lock on the reader stays as the
second wall. Verdicts are cached per (text, mode) in a small LRU, since the
same SQL is re-run often (reports, history, charts).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from helios_core.errors import QueryError, ValidationError

if TYPE_CHECKING:  # clickhouse imports this module: no import at run time
    from helios_core.clickhouse import ClickHouse


class SqlRefused(QueryError, ValidationError):
    """A statement the gate will not run; the message says what and why, the hint what to do."""

    def __init__(self, message: str, hint: str = "", *, code: int | None = None, name: str = "REFUSED") -> None:
        QueryError.__init__(self, message, hint, code=code, name=name)
        self.problems: list[str] = []
        self.missing_fields: list[str] = []


# Table functions that only compute or read what the statement itself holds.
# ``merge``/``loop``/``dictionary`` are absent: they name tables by strings, system logs included.
SAFE_TABLE_FUNCTIONS = frozenset({
    "numbers", "numbers_mt", "zeros", "zeros_mt", "generaterandom", "generate_series", "generateseries",
    "values", "null", "view", "format",
})

# Functions (table or scalar) and engines that reach the file system, the network or other processes.
OUTSIDE_FUNCTIONS = frozenset({
    "file", "filecluster", "url", "urlcluster", "s3", "s3cluster", "s3queue", "gcs", "oss", "cosn",
    "remote", "remotesecure", "cluster", "clusterallreplicas", "executable", "executablepool", "input",
    "mysql", "postgresql", "sqlite", "hdfs", "hdfscluster", "hive", "jdbc", "odbc", "mongodb", "redis",
    "azureblobstorage", "azureblobstoragecluster", "azurequeue", "iceberg", "icebergs3", "icebergazure",
    "iceberghdfs", "icebergcluster", "deltalake", "deltalakecluster", "hudi", "hudicluster", "ytsaurus",
    "arrowflight", "filesystem", "distributed", "kafka", "rabbitmq", "nats", "filelog", "merge",
    "materializedmysql", "materializedpostgresql", "dictionary", "loop", "prometheusquery",
    "catboostevaluate", "modelevaluate",  # scalar functions that load a model file from the host
})
_BY_NAME = frozenset({"merge", "loop", "dictionary"})
# Engine name beginnings with the same reach (new variants keep appearing).
_OUTSIDE_ENGINE_PREFIXES = ("iceberg", "deltalake", "hudi", "azure", "s3", "hdfs", "url", "file", "executable",
                            "remote", "mysql", "postgres", "mongo", "redis", "kafka", "paimon")

# System tables that hold other sessions' SQL text (with its literal values) and details of their queries.
SESSION_TABLES = frozenset({
    "processes", "query_log", "query_thread_log", "query_views_log", "text_log", "processors_profile_log",
    "opentelemetry_span_log", "session_log", "asynchronous_insert_log", "asynchronous_inserts", "query_cache",
    "query_metric_log", "trace_log", "crash_log", "error_log", "blob_storage_log", "s3queue_log",
    "filesystem_cache_log", "zookeeper_log", "distributed_ddl_queue", "user_processes", "backup_log",
    "asynchronous_metric_log", "part_log", "mutations",
})

SELECT_KINDS = ("SelectWithUnionQuery", "SelectIntersectExceptQuery")
_WRITE_KINDS = frozenset({
    "InsertQuery", "CreateQuery", "DropQuery", "TruncateQuery", "AlterQuery", "DeleteQuery", "UpdateQuery",
    "OptimizeQuery", "Rename", "CheckQuery", "DetachQuery", "UndropQuery", "CreateSQLFunctionQuery",
    "DropFunctionQuery", "CreateIndexQuery", "DropIndexQuery",
})
# Why some statements never run, whatever the mode (keyed by their first keyword).
_NEVER = {
    "SYSTEM": "SYSTEM statements control the server itself (merges, caches, replicas, shutdown)",
    "KILL": "KILL stops queries, other people's included",
    "BACKUP": "BACKUP writes the data to files or storage outside ClickHouse's tables",
    "RESTORE": "RESTORE reads files or storage outside ClickHouse's tables",
    "SET": "SET would lift the time, memory and row limits Helios puts on every query",
    "USE": "USE would change the database of a connection that other people share (write database.table instead)",
    "ATTACH": "ATTACH can read table data from any folder of the host",
    "BEGIN": "transactions would hold state on a connection that other people share",
    "COMMIT": "transactions would hold state on a connection that other people share",
    "ROLLBACK": "transactions would hold state on a connection that other people share",
    "GRANT": "users, roles and grants are managed by an administrator",
    "REVOKE": "users, roles and grants are managed by an administrator",
    "WATCH": "WATCH never ends",
}
_READ_ONLY_HINT = ("Read-only mode runs SELECT (with WITH, UNION, joins and subqueries), SHOW, DESCRIBE, EXISTS and "
                   "EXPLAIN. Turn read-only off for this one query (--write on the command line) to change data.")


@dataclass(frozen=True)
class Node:
    depth: int
    label: str
    parent: int  # index of the parent node, -1 for the root

    @property
    def head(self) -> str:
        return self.label.split(" ", 1)[0]


@dataclass(frozen=True)
class Verdict:
    """A statement the gate let through."""

    sql: str          # what runs: ClickHouse's canonical text (the original for INSERT with inline data)
    canonical: str
    kind: str         # the parse tree's root, e.g. SelectWithUnionQuery
    nodes: tuple[Node, ...]


_CACHE_SIZE = 512
_cache: OrderedDict[tuple[str, bool, tuple[str, ...], str], Verdict] = OrderedDict()
_cache_lock = threading.Lock()


def check(ch: ClickHouse, sql: str, *, write: bool = False, parameters: dict[str, Any] | None = None) -> Verdict:
    """Classify ``sql`` with ClickHouse's parser; refuse it (:class:`SqlRefused`) unless it may run.

    ``parameters`` are the values bound to ``{name:Type}`` placeholders: ClickHouse substitutes
    them before it shows the tree (an ``Identifier`` parameter can name a table), so they are checked too.
    """
    text = strip_statement(sql)
    if not text:
        raise SqlRefused("The query is empty.", "Type a SQL statement, for example SELECT 1.")
    allowed = tuple(ch.settings.allowed_table_functions)
    key = (text, write, allowed, repr(sorted(parameters.items())) if parameters else "")
    with _cache_lock:
        verdict = _cache.get(key)
        if verdict is not None:
            _cache.move_to_end(key)
            return verdict
    canon = canonical(ch, text)
    nodes = parse_tree(ch, canon, parameters)
    inspect(nodes, canon, write=write, allowed=frozenset(allowed))
    kind = nodes[0].head
    inline_data = kind == "InsertQuery" and not any(n.parent == 0 and n.head in SELECT_KINDS for n in nodes)
    if inline_data:
        check_inline_data(ch, text, canon)
    runs = text if inline_data else canon  # formatQuery drops an INSERT's inline data
    verdict = Verdict(runs, canon, kind, tuple(nodes))
    with _cache_lock:
        _cache[key] = verdict
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return verdict


def check_inline_data(ch: ClickHouse, text: str, canon: str) -> None:
    """``INSERT … VALUES (…)``: the rows are not part of the parse tree, and the embedded engine runs what
    follows a ``;`` after them as another statement. ClickHouse's lexer (``normalizeQuery``, literals
    replaced by ``?``) shows every ``;`` outside strings and comments."""
    if not canon.rstrip().endswith("FORMAT Values"):
        raise SqlRefused("Rows written into a query are accepted as VALUES only.",
                         "Write INSERT INTO db.table VALUES (…), or upload CSV, JSON lines or Parquet files in an "
                         "import job.")
    result = ch.run_guarded("SELECT normalizeQuery({sql:String}) AS q", {"sql": text}, limit=1,
                            expect_columns=["q"])
    if ";" in str(result.frame.iloc[0, 0]):
        raise SqlRefused("Only one statement may run at a time: this INSERT has more after its VALUES "
                         "(separated by ';'). Nothing was run.", "Run the statements one by one.")


def strip_statement(sql: str | None) -> str:
    return (sql or "").strip().rstrip(";").strip()


def canonical(ch: ClickHouse, text: str) -> str:
    """ClickHouse's formatting of exactly one statement (refused when it is not one)."""
    try:
        result = ch.run_guarded("SELECT formatQuery({sql:String}) AS q", {"sql": text}, limit=1,
                                expect_columns=["q"])
    except QueryError as exc:
        if exc.code is None:  # not ClickHouse's verdict on the SQL (a handle failure): as it is
            raise
        if "Multi-statements" in exc.message:
            raise SqlRefused("Only one statement may run at a time: this SQL has several (separated by ';'). "
                             "Nothing was run.", "Run the statements one by one.") from exc
        # A plain syntax error stays ClickHouse's (code and name), without the wrapper's text.
        message = exc.message.split(". : In scope SELECT formatQuery")[0].split(": In scope SELECT formatQuery")[0]
        raise QueryError(message.rstrip(".") + ".", exc.hint or "Check the SQL near the position ClickHouse "
                         "points at.", code=exc.code, name=exc.name) from exc
    return str(result.frame.iloc[0, 0])


def first_keyword(canon: str) -> str:
    """The statement's first keyword (formatQuery writes keywords in capitals, with no comment before)."""
    word = canon.split(None, 1)[0] if canon.split() else ""
    return word.upper()


def parse_tree(ch: ClickHouse, canon: str, parameters: dict[str, Any] | None = None) -> list[Node]:
    """``EXPLAIN AST`` of a canonical statement, as nodes with their parents."""
    keyword = first_keyword(canon)
    if keyword in _NEVER:
        # Refused before EXPLAIN: some of these (SYSTEM) cannot even be wrapped in EXPLAIN.
        raise _never(keyword)
    try:
        result = ch.run_guarded(f"EXPLAIN AST {canon}", parameters, limit=1_000_000, expect_columns=["explain"])
    except QueryError as exc:
        if exc.name == "READONLY":  # a SETTINGS clause is applied while parsing; readonly=1 refuses it
            raise _settings_refused() from exc
        if exc.name == "SYNTAX_ERROR":
            raise SqlRefused(f"Helios cannot check a {keyword or 'this'} statement, so it does not run it.",
                             _READ_ONLY_HINT) from exc
        raise
    lines = [str(v) for v in result.frame.iloc[:, 0].tolist()] if not result.frame.empty else []
    return tree(lines)


def tree(lines: list[str]) -> list[Node]:
    nodes: list[Node] = []
    stack: list[int] = []  # indexes of the open ancestors
    for line in lines:
        stripped = line.lstrip(" ")
        depth = len(line) - len(stripped)
        while stack and nodes[stack[-1]].depth >= depth:
            stack.pop()
        nodes.append(Node(depth, stripped.rstrip(), stack[-1] if stack else -1))
        stack.append(len(nodes) - 1)
    return nodes


def inspect(nodes: list[Node], canon: str, *, write: bool, allowed: frozenset[str] = frozenset()) -> None:
    """Every rule of the gate over a parse tree; raises :class:`SqlRefused` at the first broken one."""
    if not nodes:
        raise SqlRefused("ClickHouse found no statement in this SQL.", "Type a SQL statement, for example SELECT 1.")
    keyword = first_keyword(canon)
    _check_kind(nodes, 0, keyword, write)
    for i, node in enumerate(nodes):
        parent = nodes[node.parent] if node.parent >= 0 else None
        _check_files(node, nodes, i, canon)
        if node.head == "Set" and not _is_explain_option(nodes, i):
            if parent is not None and parent.label.startswith(("Storage definition", "AlterCommand")):
                raise SqlRefused("Table SETTINGS are not accepted from a query: some of them (a custom disk, a "
                                 "storage policy) would put data anywhere on the host.",
                                 "Create or alter the table without SETTINGS, or ask an administrator.")
            raise _settings_refused()
        if node.head == "Explain":
            _check_kind(nodes, _explained(nodes, i), keyword, write)
        if node.head == "Function" or node.head == "FunctionWithKeyValueArguments":
            _check_function(node, parent, allowed)
        if node.head in ("TableIdentifier", "Identifier"):
            _check_session_tables(node)
        if node.head in SELECT_KINDS and parent is None:
            _check_outer_clauses(nodes, i)


def _check_kind(nodes: list[Node], index: int, keyword: str, write: bool) -> None:
    node = nodes[index]
    kind = node.head
    shown = keyword if index == 0 else _kind_name(kind)
    if kind == "ShowProcesslistQuery":
        raise SqlRefused("SHOW PROCESSLIST is not available in Helios: it shows other people's running queries "
                         "and their SQL.", "Ask an administrator if you need to see the server's activity.")
    if kind in ("Set", "SetRoleQuery"):
        raise _never("SET")
    if kind == "KillQueryQuery":
        raise _never("KILL")
    if kind in ("BackupQuery", "RestoreQuery"):
        raise _never("BACKUP" if kind == "BackupQuery" else "RESTORE")
    if kind == "AttachQuery":
        raise _never("ATTACH")
    if kind in SELECT_KINDS or kind == "DescribeQuery" or kind == "Explain" \
            or kind.startswith(("Show", "Exists")):
        return
    if kind in _WRITE_KINDS:
        if write:
            return
        # ClickHouse's own code and name for the same refusal, so both walls read alike
        raise SqlRefused(f"Read-only mode (READONLY) runs only reading statements (SELECT, SHOW, DESCRIBE, "
                         f"EXISTS, EXPLAIN), not {shown}.", _READ_ONLY_HINT,
                         code=164, name="READONLY")
    if keyword in _NEVER and index == 0:
        raise _never(keyword)
    raise SqlRefused(f"Helios does not run {shown} statements in any mode: they act on the server, its users or "
                     "its sessions rather than on data.", _READ_ONLY_HINT)


def _kind_name(kind: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", " ", kind.removesuffix("Query")).upper()


def _never(keyword: str) -> SqlRefused:
    if keyword == "SET":
        return _settings_refused()
    return SqlRefused(f"{keyword} is not allowed in Helios: {_NEVER[keyword]}.",
                      "Ask an administrator if this really needs doing.")


def _settings_refused() -> SqlRefused:
    return SqlRefused("Queries may not change settings (no SETTINGS clause, no SET): the time, memory and row "
                      "limits on every query are Helios's.",
                      "Remove the SETTINGS clause. An administrator can change the limits "
                      "(HELIOS_QUERY_TIMEOUT, HELIOS_MAX_RESULT_ROWS, HELIOS_MAX_MEMORY_USAGE).")


def _is_explain_option(nodes: list[Node], index: int) -> bool:
    """``EXPLAIN header = 1 SELECT …``: EXPLAIN's own options come as a Set before the statement."""
    node = nodes[index]
    if node.parent < 0 or nodes[node.parent].head != "Explain":
        return False
    first_child = next(j for j in range(node.parent + 1, len(nodes)) if nodes[j].parent == node.parent)
    return first_child == index


def _explained(nodes: list[Node], index: int) -> int:
    """The statement an EXPLAIN explains (its first child that is not an option)."""
    for j in range(index + 1, len(nodes)):
        if nodes[j].parent == index and nodes[j].head != "Set":
            return j
    return index


def _check_files(node: Node, nodes: list[Node], index: int, canon: str) -> None:
    """INTO OUTFILE / FROM INFILE: a file name is a string literal right under the statement."""
    if not node.label.startswith("Literal '") or node.parent < 0:
        return
    parent = nodes[node.parent]
    if parent.head in ("ExpressionList", "Function", "pair"):
        return
    if parent.parent < 0 and parent.head in SELECT_KINDS or "INTO OUTFILE" in canon:
        raise SqlRefused("INTO OUTFILE is not allowed, in read-only or write mode: Helios does not write files on "
                         "the machine it runs on.",
                         "Run the query without INTO OUTFILE and download the result (CSV or Parquet) from the "
                         "SQL explorer.")
    if "FROM INFILE" in canon:
        raise SqlRefused("FROM INFILE is not allowed: Helios does not read files of the machine it runs on.",
                         "Upload the file in an import job (Import > Jobs) instead.")


def _check_function(node: Node, parent: Node | None, allowed: frozenset[str]) -> None:
    parts = node.label.split()
    name = parts[1] if len(parts) > 1 else ""
    lower = name.lower()
    if lower in allowed:
        return
    if node.head == "FunctionWithKeyValueArguments":
        raise SqlRefused(f"A dictionary SOURCE({name.upper()}(…)) is not allowed from a query: dictionary sources "
                         "can read files and URLs or run programs.",
                         "Ask an administrator to create the dictionary.")
    where = parent.head if parent is not None else ""
    if parent is not None and parent.label.startswith("Storage definition"):
        where = "Storage definition"
    if where == "TableExpression" and "." in name:
        # ``db.view(x = 1)``: a parameterized view (table functions have no database)
        _check_session_tables(Node(node.depth, f"TableIdentifier {name}", node.parent))
        return
    if where == "TableExpression" or where in ("InsertQuery", "CreateQuery"):
        if lower in SAFE_TABLE_FUNCTIONS:
            return
        if lower in _BY_NAME:
            reach = "it reads tables named in strings, system logs with other people's queries included"
        elif lower in OUTSIDE_FUNCTIONS:
            reach = "it reaches files, the network or other programs outside the tables you query"
        else:
            reach = "Helios runs only table functions known to stay inside the statement's own data"
        raise SqlRefused(f"The table function {name}() is not allowed: {reach}.",
                         f"Allowed table functions: {', '.join(sorted(SAFE_TABLE_FUNCTIONS | allowed))}. An "
                         "administrator can allow more with HELIOS_ALLOWED_TABLE_FUNCTIONS.")
    if where == "Storage definition":
        if lower in OUTSIDE_FUNCTIONS or lower.startswith(_OUTSIDE_ENGINE_PREFIXES):
            raise SqlRefused(f"The engine {name} is not allowed from a query: it reaches files, the network, other "
                             "programs or other databases' tables.",
                             "Use a MergeTree-family or Memory engine; an administrator can allow the engine with "
                             "HELIOS_ALLOWED_TABLE_FUNCTIONS.")
        return
    if lower in OUTSIDE_FUNCTIONS:
        raise SqlRefused(f"The function {name}() is not allowed: it reads files, the network or other programs "
                         "outside the tables you query.",
                         "An administrator can allow it with HELIOS_ALLOWED_TABLE_FUNCTIONS.")


# Databases whose rows nobody reads directly: analysis jobs' inputs, every data owner's rows, which only ever
# leave as an analysis's safe aggregates. The catalog hides them and previews refuse them too (clickhouse.py).
ANALYSIS_DB = "helios_analysis"
PRIVATE_DATABASES = frozenset({ANALYSIS_DB})


def _check_session_tables(node: Node) -> None:
    name = node.label.split(" ", 2)[1] if " " in node.label else ""
    parts = name.lower().replace("`", "").split(".")
    if len(parts) >= 2 and parts[0] in PRIVATE_DATABASES:
        raise SqlRefused(f"{parts[0]} holds the data owners' rows of analysis jobs: nobody reads them directly.",
                         "Run an analysis on the Jobs page: only its safe aggregates are released.")
    if len(parts) >= 2 and parts[0] == "system" and parts[1] in SESSION_TABLES:
        raise SqlRefused(f"system.{parts[1]} is not readable from Helios: it holds other people's queries, with the "
                         "values written in them (which can include personal data or secrets).",
                         "Ask an administrator if you need the server's query history.")


def _check_outer_clauses(nodes: list[Node], index: int) -> None:
    """Right under a SELECT only its body may hang: a FORMAT would break how Helios reads the result."""
    for node in nodes[index + 1:]:
        if node.parent != index:
            continue
        if node.head == "ExpressionList" or node.label == "Identifier Native" or node.head == "Set":
            continue
        if node.head == "Identifier":
            raise SqlRefused("A FORMAT clause is not needed: Helios formats results itself.",
                             "Remove it; download the result as CSV or Parquet from the SQL explorer.")
