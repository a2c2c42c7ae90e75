"""DDL generation, type and identifier safety, and source records on the embedded engine."""

from __future__ import annotations

import json

import pytest

from helios_core import ddl, sources
from helios_core.ddl import PartitionSpec, TableOptions, TtlSpec
from helios_core.errors import Conflict, ValidationError
from helios_core.schema import ColumnSpec

ALL_TYPES = ["Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Float32", "Float64",
             "Decimal(18, 4)", "Bool", "String", "LowCardinality(String)", "FixedString(4)", "UUID", "IPv4", "IPv6",
             "Date", "Date32", "DateTime", "DateTime64(3, 'UTC')", "Array(String)", "Map(String, Int64)", "JSON",
             "Nullable(Int32)", "LowCardinality(Nullable(String))", "Array(Nullable(Float64))",
             "Map(String, Array(UUID))"]


def cols(*specs: tuple[str, str]) -> list[ColumnSpec]:
    return [ColumnSpec(name=n, type=t, json_path=n) for n, t in specs]


def base_columns() -> list[ColumnSpec]:
    return cols(("id", "UUID"), ("ts", "DateTime64(3, 'UTC')"), ("kind", "LowCardinality(String)"),
                ("n", "UInt32"))


def request(table: str, database: str = "wiz", columns=None, **opts) -> sources.CreateRequest:
    options = TableOptions(database=database, table=table, order_by=opts.pop("order_by", ["kind", "ts"]),
                           create_database=True, **opts)
    return sources.CreateRequest(stream_name="user_activity",
                                 stream_arn="arn:aws:kinesis:us-east-1:123456789012:stream/user_activity",
                                 columns=columns or base_columns(), options=options,
                                 connection=sources.Connection(region="us-east-1", sandbox=True))


@pytest.mark.parametrize("text", ALL_TYPES)
def test_every_catalogue_type_parses_and_clickhouse_accepts_it(ch, text):
    canonical = ddl.normalize_type(text)
    assert ddl.normalize_type(canonical) == canonical
    assert ddl.clickhouse_type_problem(ch, canonical) == ""


@pytest.mark.parametrize("text", ["Foo", "String); DROP TABLE x; --", "Nullable(Array(Int8))", "Decimal(100, 2)",
                                  "FixedString(0)", "DateTime64(3, 'Europe/Paris')", "Map(Int8, String)",
                                  "String COMMENT 'x'", "Nullable(LowCardinality(String))", ""])
def test_bad_types_are_refused_before_sql(text):
    with pytest.raises(ValidationError):
        ddl.parse_type(text)


def test_clickhouse_itself_rejects_what_it_does_not_know(ch):
    assert "ClickHouse does not accept" in ddl.clickhouse_type_problem(ch, "Nullable(Array(Int8))")


def test_catalogue_offers_wrappers():
    options = ddl.type_catalogue(["Array(UUID)"])
    for t in ("Nullable(Int64)", "LowCardinality(String)", "DateTime64(3, 'UTC')", "Map(String, String)",
              "Array(UUID)"):
        assert t in options


def test_ddl_every_type_and_option_runs(ch):
    columns = [ColumnSpec(name=f"c{i}", type=t, json_path=f"c{i}") for i, t in enumerate(ALL_TYPES)]
    columns.append(ColumnSpec(name="version", type="UInt64", json_path="version"))
    options = TableOptions(database="ddl_all", table="everything", order_by=["c3", "c21"],
                           engine="ReplacingMergeTree", version_column="version",
                           partition=PartitionSpec("c21", "toYYYYMMDD"), ttl=TtlSpec("c21", 7, "DAY"),
                           create_database=True)
    assert ddl.validate_table(ch, options, columns) == []
    sql = ddl.create_table_sql(options, columns)
    assert "ORDER BY (`c3`, `c21`)" in sql and "ReplacingMergeTree(`version`)" in sql
    assert "PARTITION BY toYYYYMMDD(`c21`)" in sql and "TTL toDateTime(`c21`) + INTERVAL 7 DAY" in sql
    assert "non_replicated_deduplication_window = " in sql
    ch.execute(ddl.create_database_sql("ddl_all"))
    ch.execute(sql)
    ch.execute(ddl.create_quarantine_sql("ddl_all", "everything"))
    info = ch.internal_query("SELECT sorting_key, engine_full FROM system.tables WHERE database = 'ddl_all' "
                             "AND name = 'everything'")[0]
    assert info["sorting_key"] == "c3, c21"
    assert "non_replicated_deduplication_window = 10000" in info["engine_full"]
    names = [r["name"] for r in ch.internal_query("SELECT name FROM system.columns WHERE database = 'ddl_all' "
                                                 "AND table = 'everything_quarantine' ORDER BY position")]
    assert names == [n for n, _ in ddl.QUARANTINE_COLUMNS]


@pytest.mark.parametrize("partition,ttl", [(PartitionSpec("kind"), None), (PartitionSpec("ts", "toYYYYMM"), None),
                                            (None, TtlSpec("ts", 3, "MONTH")), (PartitionSpec("ts", "toMonday"),
                                                                                  TtlSpec("ts", 1, "YEAR"))])
def test_partition_and_ttl_choices(ch, partition, ttl):
    options = TableOptions(database="wiz", table="t", order_by=["ts"], partition=partition, ttl=ttl,
                           create_database=True)
    assert ddl.check_options(options, base_columns()) == []
    ch.execute(ddl.create_database_sql("ddl_opts"))
    options.database = "ddl_opts"
    options.table = f"t_{abs(hash((repr(partition), repr(ttl)))) % 10**8}"
    ch.execute(ddl.create_table_sql(options, base_columns()))


def test_options_problems_are_all_listed():
    options = TableOptions(database="1bad", table="select", order_by=["nope", "kind"],
                           engine="ReplacingMergeTree", version_column="kind",
                           partition=PartitionSpec("kind", "toYYYYMM"), ttl=TtlSpec("kind", 0, "CENTURY"))
    problems = ddl.check_options(options, base_columns())
    text = "\n".join(problems)
    for fragment in ("database name '1bad'", "reserved SQL word", "'nope'", "version column", "date or time",
                     "TTL column", "TTL unit", "TTL amount"):
        assert fragment in text


HOSTILE_NAMES = ["x`; DROP TABLE wiz.victim; --", "a b", "name'--", "DROP", "", "ü", "x" * 200, "1abc"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_column_names_are_refused(name):
    problems = ddl.check_columns(cols((name, "String")))
    assert problems


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_table_and_database_names_are_refused(ch, name):
    with pytest.raises(ValidationError):
        sources.create_table_and_source(ch, request(name))
    with pytest.raises(ValidationError):
        sources.create_table_and_source(ch, request("fine", database=name))


def test_quoting_keeps_even_a_slipped_name_inside_the_identifier():
    from helios_core.identifiers import quote_ident
    assert quote_ident("x`; DROP TABLE t; --") == "`x\\`; DROP TABLE t; --`"


def test_hostile_default_value_is_only_data(ch):
    ch.execute("CREATE DATABASE IF NOT EXISTS wiz")
    ch.execute("CREATE TABLE IF NOT EXISTS wiz.victim (a Int8) ENGINE = MergeTree ORDER BY a")
    evil = "x'); DROP TABLE wiz.victim; --\\"
    columns = base_columns() + [ColumnSpec(name="note", type="String", json_path="note", default=evil)]
    result = sources.create_table_and_source(ch, request("with_default", columns=columns))
    assert result.success
    assert ch.internal_query("SELECT count() AS n FROM system.tables "
                             "WHERE database = 'wiz' AND name = 'victim'")[0]["n"]
    ch.execute("INSERT INTO wiz.with_default (id, ts, kind, n) VALUES (generateUUIDv4(), now64(3), 'a', 1)")
    assert ch.internal_query("SELECT note FROM wiz.with_default")[0]["note"] == evil


def test_default_that_does_not_fit_the_type_is_listed(ch):
    columns = base_columns() + [ColumnSpec(name="m", type="UInt8", json_path="m", default="300; DROP")]
    with pytest.raises(ValidationError) as info:
        sources.create_table_and_source(ch, request("bad_default", columns=columns))
    assert any("default" in p for p in info.value.problems)


def test_source_round_trip_and_seed_shapes(ch):
    result = sources.create_table_and_source(ch, request("round_trip", order_by=["n"]))
    shape = result.to_api()
    assert shape["success"] is True and shape["streamARN"].endswith("stream/user_activity")
    assert "CREATE TABLE `wiz`.`round_trip`" in shape["createTableQuery"]
    uuid = ch.internal_query("SELECT toString(uuid) AS u FROM system.tables WHERE database = 'wiz' "
                             "AND name = 'round_trip'")[0]["u"]
    assert shape["tableUUID"] == uuid
    source = sources.get_source(ch, result.source_id)
    assert source.table_uuid == uuid and source.status == "running"
    assert [c.name for c in source.columns] == ["id", "ts", "kind", "n"]
    assert source.connection.sandbox is True and source.options["order_by"] == ["n"]
    listed = [s for s in sources.sources_to_api(ch) if s["id"] == result.source_id][0]
    assert {"streamName", "streamType", "tableName", "createdOn", "status"} <= set(listed)
    assert listed["streamType"] == "kinesis" and listed["tableName"] == "round_trip"

    assert sources.pause_source(ch, result.source_id).status == "paused"
    assert sources.get_source(ch, result.source_id).status == "paused"
    assert sources.resume_source(ch, result.source_id).status == "running"

    updated = sources.update_rules(ch, result.source_id, {"kind": {"allowed_values": ["a", "b"], "required": True}})
    assert updated.columns[2].allowed_values == ["a", "b"]
    assert sources.get_source(ch, result.source_id).columns[2].required is True
    with pytest.raises(ValidationError):
        sources.update_rules(ch, result.source_id, {"kind": {"type": "Int8"}})

    sources.delete_source(ch, result.source_id, drop_table=False)
    assert all(s.id != result.source_id for s in sources.list_sources(ch))
    assert ch.internal_query("SELECT count() AS n FROM system.tables WHERE database = 'wiz' "
                             "AND name = 'round_trip'")[0]["n"] == 1


def test_delete_can_drop_the_tables(ch):
    result = sources.create_table_and_source(ch, request("to_drop"))
    sources.delete_source(ch, result.source_id, drop_table=True)
    assert ch.internal_query("SELECT count() AS n FROM system.tables WHERE database = 'wiz' "
                             "AND name LIKE 'to_drop%'")[0]["n"] == 0


def test_refuses_to_overwrite_an_existing_table(ch):
    ch.execute("CREATE DATABASE IF NOT EXISTS wiz")
    ch.execute("CREATE TABLE IF NOT EXISTS wiz.taken (a Int8) ENGINE = MergeTree ORDER BY a")
    ch.execute("INSERT INTO wiz.taken VALUES (7)")
    with pytest.raises(Conflict) as info:
        sources.create_table_and_source(ch, request("taken"))
    assert "already exists" in info.value.message
    assert ch.internal_query("SELECT a FROM wiz.taken") == [{"a": 7}]


def test_failure_midway_leaves_nothing_behind(ch, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("metadata write failed")

    monkeypatch.setattr(sources, "_write", broken)
    with pytest.raises(RuntimeError):
        sources.create_table_and_source(ch, request("half", database="fresh_db"))
    assert ch.internal_query("SELECT count() AS n FROM system.databases WHERE name = 'fresh_db'")[0]["n"] == 0
    monkeypatch.undo()
    assert not [s for s in sources.list_sources(ch) if s.table == "half"]


def test_failure_on_quarantine_table_drops_the_main_table(ch, monkeypatch):
    real = sources._run_create

    def fail_second(chx, sql, database, table):
        if table.endswith("_quarantine"):
            raise Conflict("simulated race: quarantine table appeared")
        real(chx, sql, database, table)

    monkeypatch.setattr(sources, "_run_create", fail_second)
    with pytest.raises(Conflict):
        sources.create_table_and_source(ch, request("race"))
    assert ch.internal_query("SELECT count() AS n FROM system.tables WHERE database = 'wiz' "
                             "AND name = 'race'")[0]["n"] == 0


def test_all_problems_listed_before_anything_runs(ch):
    columns = cols(("ok", "String"), ("ok", "Int8"), ("bad name", "String"), ("t", "NotAType"))
    with pytest.raises(ValidationError) as info:
        sources.create_table_and_source(ch, request("never", database="never_db", columns=columns,
                                                    order_by=["missing"]))
    assert len(info.value.problems) >= 4
    assert ch.internal_query("SELECT count() AS n FROM system.databases WHERE name = 'never_db'")[0]["n"] == 0


def test_cli_create_table_and_sources(ch, tmp_path, capsys):
    import json

    from helios_core.cli import main
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"inferredSchema": [c.to_json() for c in base_columns()],
                                  "orderBy": ["ts"], "partitionBy": "toYYYYMM(ts)"}))
    args = ["create-table", "--stream", "clicks", "--database", "cli_db", "--table", "clicks", "--schema",
            str(schema), "--order-by", "kind,ts", "--partition-by", "toYYYYMMDD(ts)",
            "--stream-arn", "arn:aws:kinesis:us-east-1:123456789012:stream/clicks"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["success"] and "ORDER BY (`kind`, `ts`)" in out["createTableQuery"]
    assert "PARTITION BY toYYYYMMDD(`ts`)" in out["createTableQuery"] and out["tableUUID"]
    assert main(args) == 5  # refuses to overwrite
    assert "already exists" in json.loads(capsys.readouterr().out)["error"]
    bad = args[:]
    bad[bad.index("cli_db")] = "cli db"
    bad[bad.index("kind,ts")] = "nope"
    assert main(bad) == 3
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert len(problems) >= 2
    assert main(["sources"]) == 0
    listed = json.loads(capsys.readouterr().out)
    mine = [s for s in listed if s["tableName"] == "clicks"][0]
    assert mine["streamName"] == "clicks" and mine["status"] == "running" and mine["createdOn"]
    assert main(["source", "pause", mine["id"]]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "paused"
    assert main(["source", "delete", mine["id"], "--drop-table"]) == 0
    capsys.readouterr()
    assert not ch.internal_query("SELECT name FROM system.tables WHERE database = 'cli_db'")


def _cli_create(capsys, tmp_path, columns: list[dict], database: str, table: str, *extra: str) -> tuple[int, dict]:
    from helios_core.cli import main
    schema = tmp_path / f"{table}.json"
    schema.write_text(json.dumps(columns))
    code = main(["create-table", "--stream", "clicks", "--database", database, "--table", table, "--schema",
                 str(schema), "--stream-arn", "arn:aws:kinesis:us-east-1:123456789012:stream/clicks", *extra])
    return code, json.loads(capsys.readouterr().out)


def test_create_table_without_sorting_key_uses_the_time_column_else_tuple(ch, tmp_path, capsys):
    """A plain column list (the seed's /api/create-table shape) with no --order-by is not refused."""
    plain = [{"name": "id", "type": "UUID"}, {"name": "n", "type": "UInt32"},
             {"name": "created", "type": "Date"}, {"name": "ts", "type": "DateTime64(3, 'UTC')"}]
    code, out = _cli_create(capsys, tmp_path, plain, "nokey_db", "with_time")
    assert code == 0, out
    assert out["orderBy"] == ["ts"] and "time column ts" in out["orderByNote"]
    assert "ORDER BY (`ts`)" in out["createTableQuery"]
    keys = ch.internal_query("SELECT sorting_key AS k FROM system.tables WHERE database = 'nokey_db' "
                             "AND name = 'with_time'")
    assert keys[0]["k"].strip("()") == "ts"
    assert sources.get_source(ch, out["sourceId"]).options["order_by"] == ["ts"]

    code, out = _cli_create(capsys, tmp_path, plain[:2], "nokey_db", "no_time")
    assert code == 0, out
    assert out["orderBy"] == [] and "tuple()" in out["orderByNote"]
    assert "ORDER BY tuple()" in out["createTableQuery"]
    # the wizard's review shows the same DDL before anything is created
    table_sql, _ = sources.preview_ddl(TableOptions(database="x", table="y"), cols(("n", "UInt32"), ("t", "DateTime")))
    assert "ORDER BY (`t`)" in table_sql


@pytest.mark.parametrize("database", ["system", "SYSTEM", "INFORMATION_SCHEMA", "information_schema", "helios"])
def test_create_table_refuses_clickhouse_and_helios_databases(ch, database):
    options = TableOptions(database=database, table="mine", order_by=["ts"])
    problems = ddl.validate_table(ch, options, base_columns())
    assert any("tables cannot be created there" in p for p in problems), problems
    with pytest.raises(ValidationError):
        sources.create_table_and_source(ch, request("mine", database=database, order_by=["ts"]))
    assert not ch.internal_query("SELECT name FROM system.tables WHERE database = {d:String} AND name = 'mine'",
                                 {"d": database.lower() if database.lower() != "information_schema" else database})


def test_default_database_is_not_a_protected_one():
    problems = ddl.check_options(TableOptions(database="default", table="mine", order_by=["ts"]), base_columns())
    assert not any("cannot be created there" in p for p in problems)


@pytest.mark.parametrize("type_,default,fits", [
    ("UInt8", "300", False), ("UInt8", "255", True), ("UInt8", "-1", False), ("Int8", "-128", True),
    ("Nullable(UInt16)", "70000", False), ("LowCardinality(String)", "x", True), ("Float64", "1.5", True),
    ("Decimal(4, 2)", "123.45", False), ("Date", "2200-01-01", False), ("Date", "2024-02-30", False),
    ("Array(UInt8)", "[300]", False), ("Array(UInt8)", "[3]", True), ("DateTime64(3, 'UTC')", "yesterday", False),
    ("UInt32", "true", False), ("Bool", "true", True), ("JSON", "{}", True), ("Array(JSON)", "[]", True),
    ("Array(String)", "[]", True),
])
def test_defaults_that_do_not_fit_their_type_are_refused(ch, type_, default, fits):
    problem = ddl.default_literal_problem(ch, default, type_)
    assert (problem == "") is fits, problem
    options = TableOptions(database="wiz", table="defaults", order_by=["id"], create_database=True)
    columns = [ColumnSpec("id", "UInt32", "id"), ColumnSpec("v", type_, "v", default=default)]
    problems = ddl.validate_table(ch, options, columns)
    assert any("does not fit" in p for p in problems) is not fits, problems


def test_a_deeply_nested_type_is_a_clear_validation_error(ch, tmp_path, capsys):
    deep = "Array(" * 3000 + "String" + ")" * 3000
    with pytest.raises(ValidationError, match="nests more than"):
        ddl.parse_type(deep)
    problems = ddl.validate_table(ch, TableOptions(database="wiz", table="deep", order_by=["id"]),
                                  [ColumnSpec("id", "UInt32", "id"), ColumnSpec("v", deep, "v")])
    assert any("nests more than" in p for p in problems)
    assert ddl.parse_type("Array(" * 10 + "String" + ")" * 10).render().count("Array") == 10
    code, out = _cli_create(capsys, tmp_path, [{"name": "v", "type": deep}], "wiz", "deep_cli")
    assert code == 3 and "Traceback" not in json.dumps(out)
