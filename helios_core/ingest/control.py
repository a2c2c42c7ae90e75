"""Pause, resume, delete a source and change its rules: the one set of calls for the pages, the CLI and the API.

Each call changes the source record (:mod:`helios_core.sources`, which checks that the acting user may) and
tells whoever ingests the source:

* ``app`` — this process's ingest manager, when there is one: a paused or deleted source's consumer stops at
  once, a resumed one starts with the user's keys, new rules restart it. A process without a manager (the
  CLI beside the app) only changes the record; the app's manager follows at its next sync, within seconds.
* ``workers`` — the source's DynamoDB mapping item: its status (workers take only running items, and drop a
  paused source's consumers and leases at their next sync) and its definition (new rules).
* ``lambda`` — the same item, and the function's event source mapping, disabled on pause (Lambda stops reading;
  the records wait in the stream) and enabled on resume. Deleting deletes the mapping and the function, its
  role and secret (see :func:`helios_core.serverless.remove`).

AWS is changed before the record, so a refused AWS call leaves the record telling the truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from helios_core import serverless
from helios_core.clickhouse import ClickHouse
from helios_core.errors import AwsError, HeliosError, ValidationError
from helios_core.identifiers import qualified
from helios_core.ingest.lag import unread_lag_ms
from helios_core.ingest.leases import DEFAULT_TABLE as DEFAULT_LEASES
from helios_core.ingest.leases import LeaseTable
from helios_core.ingest.manager import IngestManager, check_connection_fits, connection_for
from helios_core.ingest.mapping import MappingStore, publish, table_of, unpublish
from helios_core.runtime import get_runtime
from helios_core.sources import (
    Source,
    delete_source,
    get_source,
    pause_source,
    record_mapping_table,
    resume_source,
    source_for_change,
    with_rules,
)
from helios_core.sources import update_rules as save_rules

REMOTE_MODES = ("workers", "lambda")
KEYS_ELSEWHERE_HINT = ("Sign in with those keys on the Connect page and do it on the Sources page; from the command "
                       "line, give credentials for the same account (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                       "in the environment, or --profile).")


def manager_here() -> IngestManager | None:
    """This process's ingest manager if it has one (never started for this)."""
    manager: IngestManager | None = get_runtime().services.get("ingest")
    return manager


def remote_connection(source: Source, aws: Any = None) -> Any:
    """The AWS connection that reaches a workers or Lambda source's mapping item and function.

    ``aws`` is the caller's own (the page's sign-in, the request's keys, the CLI's settings); it is used when it
    reaches the source's region and endpoint. A source connected with access keys needs it: Helios never keeps
    keys, so without one it says what to do instead of trying some other credentials.
    """
    from helios_core.aws import default_credentials_available

    stored = source.connection
    if stored.sandbox:
        from helios_core.sandbox import sandbox_if_running

        sandbox = sandbox_if_running()
        if sandbox is None:
            raise AwsError(f"Source {source.id} lives in the local sandbox, which runs inside the Helios app only.",
                           "Pause, resume or delete it on the app's Sources page.")
        return sandbox.connection()
    fits = aws is not None and not aws.sandbox and aws.region == stored.region and \
        (aws.endpoint_url or None) == (stored.endpoint_url or None)
    if not stored.needs_keys:
        return aws if fits else connection_for(source)
    if aws is None:
        raise AwsError(f"Source {source.id} was connected with access keys, which Helios keeps in the signed-in "
                       "session only, and this session has none.", KEYS_ELSEWHERE_HINT)
    check_connection_fits(source, aws)  # another region or endpoint: says which to sign in to
    if aws.method != "keys" and not default_credentials_available(aws.profile):
        raise AwsError(f"Source {source.id} was connected with access keys that live in another session, and "
                       "no AWS credentials were found here.", KEYS_ELSEWHERE_HINT)
    return aws


def _mapping_table(conn: Any, source: Source) -> str:
    if source.mode == "lambda":  # the table the deployed function reads, whatever it was deployed with
        return serverless.mapping_table_of(conn, source) or table_of(source)
    return table_of(source)


def _tell_remote(source: Source, aws: Any) -> None:
    """Put the source's definition and status (as ``source`` has them) where its workers or function read them."""
    conn = remote_connection(source, aws)
    table = _mapping_table(conn, source)
    if source.mode == "lambda" and source.status != "running":
        serverless.set_enabled(conn, source, False)   # stop reading first, then take the item away
    publish(conn, source, table)
    if source.mode == "lambda" and source.status == "running":
        serverless.set_enabled(conn, source, True)    # the item is there before the first batch asks


def publish_new_workers_source(ch: ClickHouse, source_id: str, aws: Any,
                               mapping_table: str = MappingStore.DEFAULT_TABLE) -> Source:
    """Hand a new ``workers`` source to its workers: its item in the mapping table, and that table remembered
    when it is not the default one (where a pause, a resume or new rules must go later)."""
    source = get_source(ch, source_id)
    publish(aws, source, mapping_table)
    if mapping_table != MappingStore.DEFAULT_TABLE:
        source = record_mapping_table(ch, source_id, mapping_table)
    return source


def pause(ch: ClickHouse, source_id: str, user: Any = None, aws: Any = None) -> Source:
    """Stop ingesting a source; it keeps its checkpoints and resumes where it stopped."""
    source = source_for_change(ch, source_id, user)
    if source.mode in REMOTE_MODES:
        _tell_remote(replace(source, status="paused"), aws)
    source = pause_source(ch, source_id, user)
    manager = manager_here()
    if manager is not None:
        manager.stop_source(source_id)
    return source


def resume(ch: ClickHouse, source_id: str, user: Any = None, aws: Any = None) -> Source:
    """Set a paused or failed source running again.

    ``aws`` is the caller's AWS connection; when it holds access keys, this process's manager keeps them in
    memory for the source's consumer (keys are never stored).
    """
    source = source_for_change(ch, source_id, user)
    if source.mode in REMOTE_MODES:
        _tell_remote(replace(source, status="running", last_error=""), aws)
        return resume_source(ch, source_id, user)
    manager = manager_here()
    if manager is None:  # another process runs the consumers: it follows the record
        return resume_source(ch, source_id, user)
    keys = aws if aws is not None and getattr(aws, "method", "") == "keys" else None
    return manager.resume(source_id, keys, user)


def delete(ch: ClickHouse, source_id: str, drop_table: bool = False, user: Any = None, aws: Any = None,
           lease_table: str = DEFAULT_LEASES) -> Source:
    """Stop a source wherever it runs, then forget it (and drop its tables when asked).

    A workers source's leases are deleted from ``lease_table`` (the workers' ``--lease-table``).
    """
    source = source_for_change(ch, source_id, user)
    if source.mode in REMOTE_MODES:
        conn = remote_connection(source, aws)
        table = _mapping_table(conn, source)
        if source.mode == "lambda":
            serverless.remove(conn, source)
        unpublish(conn, source, table)
        if source.mode == "workers":  # workers drop it at their next sync; its leases would stay behind forever
            from helios_core.aws import aws_errors

            with aws_errors("dynamodb:DeleteItem", conn):
                LeaseTable(conn.dynamodb(), lease_table).forget(source.id)
    manager = manager_here()
    if manager is not None:
        manager.stop_source(source_id)
    return delete_source(ch, source_id, drop_table=drop_table, user=user)


def update_rules(ch: ClickHouse, source_id: str, rules: dict[str, dict[str, Any]], user: Any = None,
                 aws: Any = None) -> Source:
    """Change some columns' validation rules (:func:`helios_core.sources.update_rules`: allowed values may be
    one comma-separated text) and hand them to whoever ingests the source: this process's manager restarts the
    consumer with them; workers and Lambda get the new definition in the mapping item."""
    if not isinstance(rules, dict):
        raise ValidationError("The rules must be an object: {column: {required, allowed_values, format, default}}.")
    changed = with_rules(ch, source_id, rules, user)
    if changed.mode in REMOTE_MODES:
        conn = remote_connection(changed, aws)
        publish(conn, changed, _mapping_table(conn, changed))
    source = save_rules(ch, source_id, rules, user)
    manager = manager_here()
    if manager is not None and source.mode == "app":
        manager.sync()
    return source


# ---- what the runners outside this process have done --------------------------------------------------------


@dataclass
class WorkersStatus:
    """A workers source as its workers left it: rows in ClickHouse, and per shard its lease (DynamoDB)."""

    rows: int
    quarantined: int
    shards: list[dict[str, Any]] = field(default_factory=list)   # shard, owner, committed_seq, finished
    lag_ms: int | None = None                                     # None: not measured (no AWS connection)


def ingested_counts(ch: ClickHouse, source: Source) -> tuple[int, int]:
    """Rows in the source's table and its quarantine table (what any runner has written; 0 for a missing table)."""
    counts = []
    for table in (source.table, source.quarantine_table):
        try:
            rows = ch.internal_query(f"SELECT count() AS n FROM {qualified(source.database, table)}")
            counts.append(int(rows[0]["n"]) if rows else 0)
        except HeliosError:
            counts.append(0)
    return counts[0], counts[1]


def workers_status(ch: ClickHouse, source: Source, aws: Any = None, lease_table: str = DEFAULT_LEASES) -> WorkersStatus:
    """Rows and quarantined rows, each shard's lease holder and checkpoint, and the lag measured from those
    checkpoints (the workers' checkpoints are in the lease table; their counters: ``store.workers_counters``)."""
    from helios_core.aws import aws_errors

    rows, quarantined = ingested_counts(ch, source)
    conn = remote_connection(source, aws)
    with aws_errors("dynamodb:Scan", conn):
        leases = LeaseTable(conn.dynamodb(), lease_table).of_source(source.id)
    with aws_errors("kinesis:GetRecords", conn):
        lag = unread_lag_ms(source, conn.client("kinesis"), {lease.shard_id: lease.checkpoint() for lease in leases})
    shards = [{"shard": lease.shard_id, "worker": lease.owner or "—", "committed": lease.committed_seq or "—",
               "finished": lease.finished} for lease in sorted(leases, key=lambda x: x.shard_id)]
    return WorkersStatus(rows, quarantined, shards, lag)
