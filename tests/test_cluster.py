"""Cluster DDL: ON CLUSTER, replicated engines, Distributed tables — checked by ClickHouse's own parser.

No ClickHouse cluster (or current server) can run on the development machines, so these statements are
parsed by the embedded engine (``formatQuery``) rather than run; creating them on the embedded engine is
refused cleanly (it has no cluster), which the last test uses to check nothing is left half-made.
"""

from __future__ import annotations

import uuid

import pytest

from helios_core import cluster, sources
from helios_core.cluster import ClusterSpec
from helios_core.ddl import TableOptions, check_options, create_quarantine_sql, create_table_sql
from helios_core.errors import HeliosError
from helios_core.schema import ColumnSpec

COLUMNS = [ColumnSpec("id", "UInt64", "id", required=True), ColumnSpec("ts", "DateTime64(3, 'UTC')", "ts"),
           ColumnSpec("v", "UInt32", "v")]


def formatted(ch, sql: str) -> str:
    return ch.internal_query("SELECT formatQuery({s:String}) AS q", {"s": sql})[0]["q"]


def test_a_mergetree_table_becomes_replicated_on_cluster(ch):
    sql = create_table_sql(TableOptions("shop", "events", ["ts"]), COLUMNS)
    out = formatted(ch, cluster.replicated(sql, ClusterSpec("prod")))
    assert "CREATE TABLE shop.events ON CLUSTER prod" in out
    assert "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/shop/events', '{replica}')" in out
    assert "replicated_deduplication_window = 10000" in out and "non_replicated" not in out


def test_replacing_keeps_its_version_column(ch):
    options = TableOptions("analytics", "events", ["ts"], engine="ReplacingMergeTree", version_column="v")
    out = formatted(ch, cluster.replicated(create_table_sql(options, COLUMNS), ClusterSpec("prod_eu")))
    assert "ON CLUSTER prod_eu" in out
    assert "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/analytics/events', '{replica}', v)" in out


def test_distributed_table_over_local_replicas(ch):
    spec = ClusterSpec("prod", distributed=True)
    statements = cluster.table_statements(create_table_sql(TableOptions("shop", "events", ["ts"]), COLUMNS),
                                          spec, "shop", "events")
    local, dist = (formatted(ch, s) for s in statements)
    assert "CREATE TABLE shop.events_local ON CLUSTER prod" in local
    assert "/clickhouse/tables/{shard}/shop/events_local" in local
    assert dist.startswith("CREATE TABLE shop.events ON CLUSTER prod AS shop.events_local")
    assert "ENGINE = Distributed('prod', 'shop', 'events_local', rand())" in dist
    q = cluster.table_statements(create_quarantine_sql("shop", "events"), spec, "shop", "events_quarantine")
    assert [formatted(ch, s).split("\n")[0] for s in q] == [
        "CREATE TABLE shop.events_quarantine_local ON CLUSTER prod",
        "CREATE TABLE shop.events_quarantine ON CLUSTER prod AS shop.events_quarantine_local"]


def test_every_metadata_table_has_a_cluster_form(ch):
    from helios_core.runtime import metadata_tables

    spec = ClusterSpec("prod")
    count = 0
    for ddl in metadata_tables():
        out = formatted(ch, cluster.replicated(ddl, spec))
        assert "ON CLUSTER prod" in out and "ENGINE = Replicated" in out
        count += 1
    assert count >= 5
    assert formatted(ch, cluster.database_sql("helios", spec)) == "CREATE DATABASE IF NOT EXISTS helios ON CLUSTER prod"


def test_cluster_options_are_validated():
    assert any("cluster name" in p for p in check_options(TableOptions("d", "t", ["id"], distributed=True), COLUMNS))
    assert check_options(TableOptions("d", "t", ["id"], cluster="bad name;"), COLUMNS)
    assert not check_options(TableOptions("d", "t", ["id"], cluster="prod", distributed=True), COLUMNS)


def test_creating_on_a_cluster_the_engine_lacks_is_refused_and_leaves_nothing(ch):
    from helios_core.clickhouse import table_exists

    table = f"t_{uuid.uuid4().hex[:8]}"
    req = sources.CreateRequest(stream_name="s", stream_arn="arn:aws:kinesis:eu-west-1:1:stream/s", columns=COLUMNS,
                                options=TableOptions("cluster_test", table, ["ts"], create_database=True,
                                                     cluster="nowhere", distributed=True))
    table_sql, _ = sources.preview_ddl(req.options, COLUMNS)
    assert "ON CLUSTER `nowhere`" in table_sql and "Distributed('nowhere'" in table_sql
    with pytest.raises(HeliosError):
        sources.create_table_and_source(ch, req)
    assert not table_exists(ch, "cluster_test", table)
    assert sources.source_for_table(ch, "cluster_test", table) is None


def test_a_distributed_source_inserts_with_foreground_distributed_inserts():
    from helios_core.ingest.sink import Target

    source = sources.Source(id="x", stream_name="s", stream_arn="a", database="d", table="t", columns=COLUMNS,
                            options={"cluster": "prod", "distributed": True})
    assert Target.of_source(source).insert_settings == {"distributed_foreground_insert": 1}
    source.options = {}
    assert Target.of_source(source).insert_settings == {}
