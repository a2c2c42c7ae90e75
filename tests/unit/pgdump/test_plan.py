"""helios_core.pgdump.plan: pass 1 over a dump, with no engine: tables, ClickHouse names and types, and the fate
of every statement (used, ignored with its reason, or unsupported)."""

from __future__ import annotations

import pytest

from helios_core.errors import ValidationError
from helios_core.pgdump.plan import Unsupported, copy_target, parse_insert, plan_dump
from helios_core.pgdump.scanner import line_source, tokenize

DUMP = """\
SET statement_timeout = 0;
CREATE TYPE public.mood AS ENUM ('sad', 'ok');
CREATE DOMAIN public.posint AS integer CHECK (VALUE > 0);
CREATE TABLE public.people (
    id integer NOT NULL,
    name character varying(40),
    mood public.mood,
    score posint,
    tags text[],
    "select" text,
    weird public.geometry
);
ALTER TABLE ONLY public.people ADD CONSTRAINT people_pkey PRIMARY KEY (id);
CREATE TABLE sales.orders (id bigint NOT NULL, at timestamp with time zone);
CREATE VIEW v AS SELECT 1;
CREATE INDEX i ON public.people (name);
COPY public.people (id, name, mood, score, tags, "select", weird) FROM stdin;
1\tAnn\tok\t5\t{{a,b},{c,d}}\tx\tPOINT
2\tBo\t\\N\t\\N\t\\N\t\\N\t\\N
\\.
COPY public.missing (a) FROM stdin;
1
\\.
INSERT INTO sales.orders VALUES (1, '2024-01-01 00:00:00+00'), (2, NULL);
"""


@pytest.fixture(scope="module")
def plan():
    return plan_dump(line_source(DUMP))


def test_tables_with_row_counts(plan):
    assert {key: t.rows_in_dump for key, t in plan.tables.items()} == {("public", "people"): 2, ("sales", "orders"): 2}


def test_column_types_nullability_and_notes(plan):
    people = {c.name: c for c in plan.tables[("public", "people")].columns}
    assert {n: c.ch_type for n, c in people.items()} == {
        "id": "Int32", "name": "Nullable(String)", "mood": "LowCardinality(Nullable(String))",
        "score": "Nullable(Int32)", "tags": "Array(Array(Nullable(String)))", "select": "Nullable(String)",
        "weird": "Nullable(String)"}
    assert people["mood"].note == "enum type mood is stored as text"
    assert people["score"].note == "domain posint over integer; its checks are not enforced"
    assert people["tags"].note == "a NULL array is stored as an empty array"


def test_arrays_take_the_nesting_the_data_has(plan):
    tags = next(c for c in plan.tables[("public", "people")].columns if c.name == "tags")
    assert (tags.array_dims, tags.seen_dims) == (2, 2)  # declared text[], holds text[][]


def test_names_clickhouse_would_refuse_are_renamed_with_a_note(plan):
    people = plan.tables[("public", "people")]
    assert [c.ch_name for c in people.columns if c.name == "select"] == ["select_"]
    assert plan.tables[("sales", "orders")].ch_name == "sales_orders"
    assert plan.notes == ["Column public.people.select is loaded as select_.",
                          "Table sales.orders is loaded as sales_orders."]


def test_the_primary_key_becomes_the_sorting_key(plan):
    assert plan.tables[("public", "people")].order_by() == ["id"]
    assert "ORDER BY (`id`)" in plan.tables[("public", "people")].create_sql("shop")
    assert "ORDER BY tuple()" in plan.tables[("sales", "orders")].create_sql("shop")


def test_create_sql_makes_a_deduplicating_merge_tree(plan):
    sql = plan.tables[("public", "people")].create_sql("shop")
    assert sql.startswith("CREATE TABLE `shop`.`people`\n(\n    `id` Int32,\n")
    assert "ENGINE = MergeTree" in sql and "non_replicated_deduplication_window" in sql


def test_every_statement_is_used_ignored_or_reported(plan):
    assert dict(plan.ignored) == {
        "SET statements (session settings)": 1, "enum types (stored as text)": 1,
        "domains (mapped to their base type)": 1, "primary keys (used as the ClickHouse sorting key)": 1,
        "indexes (ClickHouse sorts by the primary key instead)": 1}
    assert [(i.line, i.reason) for i in plan.unsupported] == [
        (15, "views are not loaded (only tables)"),
        (21, "COPY into public.missing, which the dump does not create (1 row not loaded)"),
        (4, "unknown type public.geometry: its values are kept as text")]


def test_the_plan_as_json(plan):
    out = plan.to_json()
    assert [t["table"] for t in out["tables"]] == ["people", "sales_orders"]
    assert out["tables"][0]["columns"][0] == {"name": "id", "postgres_name": "id", "postgres_type": "integer",
                                              "clickhouse_type": "Int32"}
    assert out["unsupported"][0] == {"line": 15, "statement": "CREATE VIEW v AS SELECT 1",
                                     "reason": "views are not loaded (only tables)"}


def test_an_inline_primary_key_is_the_sorting_key():
    plan = plan_dump(line_source("CREATE TABLE t (id bigint PRIMARY KEY, v text);\n"))
    assert plan.tables[("public", "t")].order_by() == ["id"]


def test_a_nullable_or_array_key_is_not_a_sorting_key():
    plan = plan_dump(line_source("CREATE TABLE t (id integer[] NOT NULL, v text);\n"
                                 "ALTER TABLE ONLY t ADD CONSTRAINT k PRIMARY KEY (id);\n"))
    assert plan.tables[("public", "t")].order_by() == []


@pytest.mark.parametrize("statement, reason", [
    ("CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql;", "functions and procedures are not loaded"),
    ("CREATE TRIGGER t AFTER INSERT ON x FOR EACH ROW EXECUTE FUNCTION f();", "triggers are not loaded"),
    ("CREATE TABLE p PARTITION OF q FOR VALUES IN (1);", "a partition of another table (CREATE TABLE … PARTITION OF)"),
    ("CREATE TABLE c AS SELECT 1;", "CREATE TABLE without a column list (AS SELECT, OF type)"),
    ("CREATE TYPE pair AS (a int, b int);",
     "composite, range and base types (columns of such a type are kept as text)"),
    ("DELETE FROM t;", "not a statement Helios can load"),
])
def test_unsupported_statements_give_a_reason(statement, reason):
    plan = plan_dump(line_source(statement + "\n"))
    assert [i.reason for i in plan.unsupported] == [reason]


def test_a_connect_meta_command_adds_a_note():
    plan = plan_dump(line_source("\\connect other\nCREATE TABLE t (a int);\n"))
    assert plan.notes[0].startswith("Line 1: the dump switches database")


def test_tables_clash_after_renaming_get_a_suffix():
    plan = plan_dump(line_source("CREATE TABLE a.t (x int);\nCREATE TABLE b.t (x int);\nCREATE TABLE a.t_quarantine "
                                 "(x int);\n"))
    assert sorted(t.ch_name for t in plan.tables.values()) == ["a_t", "a_t_quarantine_2", "b_t"]


# ---- COPY targets and INSERT values --------------------------------------------------------------------------


def test_copy_target_reads_the_table_and_columns():
    assert copy_target('COPY public."Order" (id, "Name") FROM stdin') == (("public", "Order"), ["id", "Name"])
    assert copy_target("COPY t FROM stdin") == (("public", "t"), None)


def test_copy_in_another_format_is_unsupported():
    with pytest.raises(Unsupported, match="COPY options other than the text format"):
        copy_target("COPY t FROM stdin WITH (FORMAT csv)")


def test_insert_values_become_text_as_copy_writes_it():
    key, cols, rows = parse_insert(tokenize("INSERT INTO s.t (a, b) VALUES (1, 'x'), (-2, NULL), "
                                            "(TRUE, '{1,2}'::int[])"))
    assert (key, cols, rows) == (("s", "t"), ["a", "b"], [["1", "x"], ["-2", None], ["t", "{1,2}"]])


@pytest.mark.parametrize("statement, reason", [
    ("INSERT INTO t VALUES (now())", "the value 'now()' is an expression, not a literal"),
    ("INSERT INTO t VALUES (1 + 2)", "the value '1 + 2' is an expression, not a literal"),
    ("INSERT INTO t SELECT 1", "INSERT … SELECT (only INSERT … VALUES is loaded)"),
])
def test_inserts_helios_cannot_read(statement, reason):
    with pytest.raises(Unsupported) as info:
        parse_insert(tokenize(statement))
    assert str(info.value) == reason


# ---- the dump's client_encoding ---------------------------------------------------------------------------


def test_the_plan_takes_its_encoding_from_set_client_encoding():
    assert plan_dump(line_source(b"SET client_encoding = 'LATIN1';\nCREATE TABLE t (a text);\n")).encoding \
        == "iso8859-1"
    assert plan_dump(line_source("SET client_encoding = 'WIN1252';\n")).encoding_name == "WIN1252"


def test_a_dump_without_client_encoding_is_utf8():
    plan = plan_dump(line_source(b"CREATE TABLE t (a text);\n"))
    assert (plan.encoding, plan.encoding_name) == ("utf-8", "")


def test_an_unknown_client_encoding_is_refused_even_when_the_text_is_given_as_str():
    with pytest.raises(ValidationError, match="'EUC_TW'"):
        plan_dump(line_source("SET client_encoding = 'EUC_TW';\nCREATE TABLE t (a text);\n"))


def test_a_second_different_client_encoding_is_reported_not_followed():
    plan = plan_dump(line_source("SET client_encoding = 'LATIN1';\nSET client_encoding = 'UTF8';\n"
                                 "SET client_encoding = 'LATIN1';\n"))
    assert plan.encoding == "iso8859-1"
    assert [(i.line, i.reason) for i in plan.unsupported] == [
        (2, "a second client_encoding: the whole dump is read as LATIN1")]
