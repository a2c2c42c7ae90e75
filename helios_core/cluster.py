"""Tables on a ClickHouse cluster: ``ON CLUSTER`` DDL, replicated engines and Distributed tables.

Helios writes its single-server DDL (:mod:`helios_core.ddl`, :mod:`helios_core.metadata`) and this
module turns a statement into its cluster form, so there is one definition of every table:

* ``CREATE TABLE db.t`` → ``CREATE TABLE db.t ON CLUSTER `c```;
* ``MergeTree`` → ``ReplicatedMergeTree('/clickhouse/tables/{shard}/db/t', '{replica}')`` and
  ``ReplacingMergeTree(v)`` → ``ReplicatedReplacingMergeTree(…, '{replica}', v)`` — ``{shard}`` and
  ``{replica}`` are the server's macros, so every replica of a shard shares one path;
* ``non_replicated_deduplication_window`` → ``replicated_deduplication_window``: insert deduplication
  tokens are native on replicated tables;
* with ``distributed``, the replicated table is ``<t>_local`` and ``<t>`` is a ``Distributed`` table over
  it, which is what people query and what Helios inserts into (``distributed_foreground_insert`` keeps
  an insert's deduplication token with its block).

This file is checked by ClickHouse's own parser in the tests (``formatQuery``/``EXPLAIN AST`` on the
embedded engine); no cluster runs on the development machines, so the statements have not been run
against one (README says so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from helios_core.ddl import sql_string
from helios_core.identifiers import check_identifier, qualified, quote_ident

LOCAL_SUFFIX = "_local"
ZK_PATH = "/clickhouse/tables/{shard}/%(database)s/%(table)s"
# What ingest adds to inserts into a Distributed table, so the block (and its token) reaches the shard now.
DISTRIBUTED_INSERT_SETTINGS = {"distributed_foreground_insert": 1}

_CREATE = re.compile(r"^CREATE TABLE (IF NOT EXISTS )?(`(?:[^`]|``)+`|\w+)\.(`(?:[^`]|``)+`|\w+)", re.M)
_ENGINE = re.compile(r"\bENGINE\s*=\s*(ReplacingMergeTree|MergeTree)\b(?:\(([^)]*)\))?")


@dataclass
class ClusterSpec:
    name: str
    distributed: bool = False
    sharding_key: str = "rand()"

    def problems(self) -> list[str]:
        return check_identifier(self.name, "cluster")


def _unquote(name: str) -> str:
    return name[1:-1].replace("``", "`") if name.startswith("`") else name


def replicated(create_sql: str, spec: ClusterSpec, rename_to: str | None = None) -> str:
    """One single-server CREATE TABLE statement in its ON CLUSTER, replicated form."""
    match = _CREATE.search(create_sql)
    if not match:
        raise ValueError("not a CREATE TABLE statement Helios wrote")
    database, table = _unquote(match.group(2)), _unquote(match.group(3))
    table = rename_to or table
    head = f"CREATE TABLE {match.group(1) or ''}{qualified(database, table)} ON CLUSTER {quote_ident(spec.name)}"
    sql = create_sql[:match.start()] + head + create_sql[match.end():]
    path = sql_string(ZK_PATH % {"database": database, "table": table})

    def engine(m: re.Match[str]) -> str:
        args = [path, "'{replica}'"] + ([m.group(2)] if m.group(2) else [])
        return f"ENGINE = Replicated{m.group(1)}({', '.join(args)})"

    sql, count = _ENGINE.subn(engine, sql, count=1)
    if count != 1:
        raise ValueError("the statement has no MergeTree-family engine to replicate")
    return sql.replace("non_replicated_deduplication_window", "replicated_deduplication_window")


def distributed_sql(spec: ClusterSpec, database: str, table: str) -> str:
    """``<table>`` as a Distributed table over ``<table>_local`` on every shard of the cluster."""
    local = table + LOCAL_SUFFIX
    return (f"CREATE TABLE {qualified(database, table)} ON CLUSTER {quote_ident(spec.name)} "
            f"AS {qualified(database, local)}\n"
            f"ENGINE = Distributed({sql_string(spec.name)}, {sql_string(database)}, {sql_string(local)}, "
            f"{spec.sharding_key})")


def table_statements(create_sql: str, spec: ClusterSpec, database: str, table: str) -> list[str]:
    """The statements that make ``database.table`` on the cluster (a local replicated table + Distributed)."""
    if not spec.distributed:
        return [replicated(create_sql, spec)]
    return [replicated(create_sql, spec, rename_to=table + LOCAL_SUFFIX), distributed_sql(spec, database, table)]


def database_sql(database: str, spec: ClusterSpec) -> str:
    return f"CREATE DATABASE IF NOT EXISTS {quote_ident(database)} ON CLUSTER {quote_ident(spec.name)}"


def drop_statements(database: str, table: str, spec: ClusterSpec) -> list[str]:
    """Undo :func:`table_statements` (used when creating a source fails half-way)."""
    names = [table] + ([table + LOCAL_SUFFIX] if spec.distributed else [])
    return [f"DROP TABLE IF EXISTS {qualified(database, n)} ON CLUSTER {quote_ident(spec.name)} SYNC" for n in names]
