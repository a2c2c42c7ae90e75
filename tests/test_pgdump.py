"""PostgreSQL plain dumps: the parser's pieces, a dump fixture, and a real pg_dump when a server is installed.

``fixtures/pg_dump_shop.sql`` is real ``pg_dump -F p`` output (PostgreSQL 15) of a database
restored from it, with two deliberate edits so one file covers every path: the ``events``
table's data is in pg_dump's ``--column-inserts`` form, and three ``escapes`` rows use the
octal/hex escapes COPY's text format accepts (pg_dump itself writes those characters raw).
The file restores into PostgreSQL with ``psql -v ON_ERROR_STOP=1`` (checked when a server exists).
"""

from __future__ import annotations

import os
import shutil
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from pg_fixture import pg_server  # noqa: F401  (a pytest fixture)

from helios_core.cli import main as cli_main
from helios_core.errors import Conflict, ValidationError
from helios_core.pgdump import DumpScanner, decode_copy_field, load_dump, map_pg_type, parse_pg_array, tokenize

FIXTURE = Path(__file__).parent / "fixtures" / "pg_dump_shop.sql"


def rows(ch, sql):
    return ch.internal_query(sql)


# ---- pieces ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, expected", [
    ("\\N", None), ("plain", "plain"), ("a\\tb\\nc\\\\d", "a\tb\nc\\d"), ("\\101\\x42", "AB"),
    ("caf\\303\\251", "café"), ("\\\\N", "\\N"), ("\\b\\f\\v\\r", "\b\f\v\r"), ("\\q", "q"), ("", ""),
])
def test_copy_field_escapes(raw, expected):
    assert decode_copy_field(raw) == expected


@pytest.mark.parametrize("text, expected", [
    ("{}", []), ("{1,2,3}", ["1", "2", "3"]), ('{red,"green, blue",NULL,"NULL"}', ["red", "green, blue", None, "NULL"]),
    ('{"quote\\"d","back\\\\slash"}', ['quote"d', "back\\slash"]), ("{{1,2},{3,NULL}}", [["1", "2"], ["3", None]]),
    ('{"{braces}",""}', ["{braces}", ""]), ("[0:1]={7,8}", ["7", "8"]),
])
def test_array_literals(text, expected):
    assert parse_pg_array(text) == expected


@pytest.mark.parametrize("bad", ["1,2", "{1,2", '{"open}', "{1 2 {3}}"])
def test_bad_array_literals(bad):
    with pytest.raises(ValueError):
        parse_pg_array(bad)


@pytest.mark.parametrize("pg, ch, dims", [
    ("integer", "Int32", 0), ("bigint", "Int64", 0), ("smallint", "Int16", 0), ("serial", "Int32", 0),
    ("bigserial", "Int64", 0), ("numeric(12,2)", "Decimal(12, 2)", 0), ("numeric(10)", "Decimal(10, 0)", 0),
    ("numeric", "Float64", 0), ("real", "Float32", 0), ("double precision", "Float64", 0), ("text", "String", 0),
    ("character varying(120)", "String", 0), ("character(4)", "String", 0), ("boolean", "Bool", 0),
    ("timestamp without time zone", "DateTime64(6, 'UTC')", 0), ("timestamp with time zone", "DateTime64(6, 'UTC')", 0),
    ("timestamp(3) with time zone", "DateTime64(6, 'UTC')", 0), ("date", "Date32", 0), ("uuid", "UUID", 0),
    ("jsonb", "String", 0), ("json", "String", 0), ("integer[]", "Int32", 1), ("text[]", "String", 1),
    ("integer[][]", "Int32", 2), ("interval", "String", 0), ("bytea", "String", 0),
])
def test_type_mapping(pg, ch, dims):
    mapping = map_pg_type(pg)
    assert (mapping.ch_type, mapping.array_dims, mapping.supported) == (ch, dims, True)


def test_type_mapping_enums_domains_and_unknown():
    assert map_pg_type("public.mood", enums={"mood": ["a"]}).ch_type == "LowCardinality(String)"
    assert map_pg_type("public.email", domains={"email": "character varying(200)"}).ch_type == "String"
    unknown = map_pg_type("public.pair")
    assert not unknown.supported and unknown.ch_type == "String"


def test_scanner_honours_quotes_comments_and_dollar_quotes():
    text = ("SET a = 'x;y';\n-- a comment; with a semicolon\nCREATE FUNCTION f() AS $body$ SELECT 1; $body$;\n"
            "/* block; /* nested; */ still; */ SELECT E'it\\'s;', 'it''s;', \"we;ird\";\n"
            "\\connect other\nCOPY public.t (a) FROM stdin;\n1\n\\.\nSELECT 2;\n")
    scanner = DumpScanner(iter(text.splitlines(keepends=True)))
    seen = []
    for st in scanner.statements():
        seen.append((st.kind, st.text))
        if st.kind == "copy":
            assert [t for _, t in scanner.copy_rows()] == ["1"]
    assert [k for k, _ in seen] == ["sql", "sql", "sql", "meta", "copy", "sql"]
    assert seen[1][1] == "CREATE FUNCTION f() AS $body$ SELECT 1; $body$"
    assert seen[2][1].endswith("SELECT E'it\\'s;', 'it''s;', \"we;ird\"")
    tokens = tokenize(seen[2][1].split("*/", 2)[-1])
    assert [t.value for t in tokens if t.kind in ("str", "ident")] == ["it's;", "it's;", "we;ird"]


# ---- the fixture -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop(ch):
    return load_dump(ch, FIXTURE, "pgdump_shop", replace=True)


def test_fixture_tables_and_counts(ch, shop):
    loaded = {t.table: (t.rows_in_dump, t.inserted, t.quarantined) for t in shop.tables}
    assert loaded == {"customers": (4, 4, 0), "Order_Items": (4, 4, 0), "escapes": (6, 6, 0), "events": (5, 4, 1),
                      "matrix": (3, 3, 0), "analytics_daily": (2, 2, 0)}
    for table, (_, inserted, _) in loaded.items():
        assert rows(ch, f"SELECT count() AS n FROM pgdump_shop.`{table}`")[0]["n"] == inserted
    types = {r["name"]: r["type"] for r in rows(ch, "SELECT name, type FROM system.columns "
                                                    "WHERE database = 'pgdump_shop' AND table = 'customers'")}
    assert types["id"] == "Int32" and types["name"] == "String" and types["balance"] == "Nullable(Decimal(12, 2))"
    assert types["last_seen"] == "Nullable(DateTime64(6, 'UTC'))" and types["birthday"] == "Nullable(Date32)"
    assert types["tags"] == "Array(Nullable(String))" and types["uid"] == "Nullable(UUID)"
    keys = {r["name"]: r["sorting_key"] for r in rows(ch, "SELECT name, sorting_key FROM system.tables "
                                                          "WHERE database = 'pgdump_shop'")}
    assert keys["customers"].strip("()") == "id" and keys["Order_Items"].strip("()") == "order_id, line_no"


def test_fixture_values(ch, shop):
    people = {r["id"]: r for r in rows(ch, "SELECT * FROM pgdump_shop.customers")}
    ada = people[1]
    assert ada["code"] == "AB  " and ada["vip"] is True and ada["balance"] == Decimal("1234.50")
    assert ada["big"] == 9007199254740993 and ada["small"] == -3
    assert ada["signed_up"] == datetime(2024, 1, 2, 3, 4, 5, 123456)
    assert ada["last_seen"] == datetime(2024, 1, 2, 1, 4, 5)
    assert ada["birthday"] == date(1990, 12, 31) and ada["uid"] == UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    assert ada["prefs"] == '{"a": 1, "b": [true, null]}'
    assert ada["tags"] == ["red", "green, blue", 'quote"d', "back\\slash", None]
    assert ada["lucky"] == [1, 2, 3] and ada["feeling"] == "happy" and ada["note"] == "line1\nline2\ttab"
    bob = people[2]
    assert bob["name"] == 'Bob "the builder"' and bob["email"] is None and bob["balance"] is None
    assert bob["tags"] == [] and bob["feeling"] is None
    zoe = people[3]
    assert zoe["name"] == "Zoë 🚀" and zoe["note"] == "back\\slash and \\N not null and 'quotes'"
    assert zoe["ratio"] == float("inf") and zoe["score"] != zoe["score"]  # Infinity and NaN
    assert people[4]["big"] == -9223372036854775808 and people[4]["birthday"] == date(1900, 1, 1)
    assert people[4]["note"] == "semi; colon -- not a comment /* nor this */"

    escapes = {r["id"]: (r["t"], r["b"]) for r in rows(ch, "SELECT * FROM pgdump_shop.escapes")}
    assert escapes == {1: ("aAb", "\\x41"), 2: ("AB", "\\x"), 3: ("café", None), 4: ("\\N", "\\xdeadbeef"),
                       5: (None, "\\x00"), 6: ("cr\rx\bback\fform\vvert", "\\x0a")}
    events = {r["id"]: r for r in rows(ch, "SELECT * FROM pgdump_shop.events")}
    assert events[1]["happened_at"] == datetime(2024, 3, 10, 7, 0, 0, 250000)
    assert events[2]["kind"] == "it's; a -- kind" and events[3]["kind"] == "tab\there"
    assert events[5]["kind"] == "line\nbreak" and events[3]["amount"] == Decimal("1000000.000")
    assert events[1]["point"] == "(1,2)"  # a composite type, kept as PostgreSQL's text
    matrix = {r["id"]: r for r in rows(ch, "SELECT * FROM pgdump_shop.matrix")}
    assert matrix[1]["grid"] == [[1, 2], [3, 4]]  # declared integer[], the data is 2-D
    assert matrix[1]["words"] == ["{braces}", "a\\b", "", None, "NULL"]


def test_fixture_bad_rows_quarantined_with_reason(ch, shop):
    bad = rows(ch, "SELECT * FROM pgdump_shop.events_quarantine")
    assert len(bad) == 1
    assert bad[0]["column_name"] == "happened_at" and "infinity" in bad[0]["error_message"]
    assert bad[0]["source"] == "import" and bad[0]["origin"] == "dump:public.events" and bad[0]["sub_index"] == 4


def test_fixture_report_lists_unsupported_and_ignored(shop):
    report = shop.to_json()
    reasons = " | ".join(f"{u['statement'][:40]} -> {u['reason']}" for u in report["unsupported"])
    for expected in ("CREATE VIEW public.vip_customers", "CREATE FUNCTION public.add_one",
                     "CREATE FUNCTION public.touch", "CREATE TRIGGER touch_customers", "CREATE TYPE public.pair",
                     "column public.events.point"):
        assert expected in reasons
    ignored = report["ignored"]
    assert ignored["SET statements (session settings)"] == 12
    assert ignored["primary keys (used as the ClickHouse sorting key)"] == 5
    assert ignored["constraints other than primary keys (not enforced by ClickHouse)"] == 2
    assert "Column public.Order Items.Product Name is loaded as Product_Name." in report["notes"]


def test_database_rules(ch, shop):
    with pytest.raises(Conflict):
        load_dump(ch, FIXTURE, "pgdump_shop")
    with pytest.raises(ValidationError):
        load_dump(ch, FIXTURE, "bad name; DROP")
    with pytest.raises(ValidationError):
        load_dump(ch, FIXTURE, "helios")
    with pytest.raises(ValidationError, match="creates no tables"):
        load_dump(ch, b"just some text\nnot a dump\n", "pgdump_nothing")


def test_unsupported_statements_in_a_small_dump(ch):
    dump = ("CREATE TABLE public.t (id integer, at timestamp, v public.weird);\n"
            "INSERT INTO public.t VALUES (1, now(), NULL);\nINSERT INTO public.t VALUES (2, '2024-01-01', 'x');\n"
            "INSERT INTO public.t SELECT 3, now(), NULL;\nCOPY public.gone (a) FROM stdin;\n1\n2\n\\.\n"
            "CREATE MATERIALIZED VIEW public.mv AS SELECT 1;\n"
            "ALTER TABLE public.t ATTACH PARTITION x FOR VALUES IN (1);\n")
    report = load_dump(ch, dump.encode(), "pgdump_small", replace=True).to_json()
    reasons = [u["reason"] for u in report["unsupported"]]
    assert any("expression, not a literal" in r for r in reasons)
    assert any("INSERT … SELECT" in r for r in reasons)
    assert any("which the dump does not create (2 rows not loaded)" in r for r in reasons)
    assert any("views" in r for r in reasons) and any("partition" in r for r in reasons)
    assert any("unknown type public.weird" in r for r in reasons)
    assert report["tables"] == [{"table": "t", "source": "public.t", "rows_in_dump": 1, "inserted": 1,
                                 "quarantined": 0}]


LATIN1_DUMP = """\
SET statement_timeout = 0;
SET client_encoding = 'LATIN1';
SET standard_conforming_strings = on;
CREATE TABLE public.people (id integer NOT NULL, name text);
COPY public.people (id, name) FROM stdin;
1\tcaf\xe9
2\tM\\374ller
3\tM\\xfcller
4\tcaf\xe9 \\351\\tM\xfcller
\\.
INSERT INTO public.people VALUES (5, 'M\xfcller');
"""


def test_a_latin1_dump_keeps_its_text(ch, tmp_path):
    path = tmp_path / "latin1.sql"
    path.write_bytes(LATIN1_DUMP.encode("latin-1"))
    report = load_dump(ch, path, "pgdump_latin1", replace=True)
    assert [(t.inserted, t.quarantined) for t in report.tables] == [(5, 0)]
    names = {r["id"]: r["name"] for r in rows(ch, "SELECT id, name FROM pgdump_latin1.people")}
    assert names == {1: "café", 2: "Müller", 3: "Müller", 4: "café é\tMüller", 5: "Müller"}


def test_bytes_that_are_not_the_dumps_encoding_send_the_row_to_quarantine(ch):
    dump = (b"SET client_encoding = 'UTF8';\nCREATE TABLE public.t (id integer, s text);\n"
            b"COPY public.t (id, s) FROM stdin;\n1\tcaf\xc3\xa9\n2\tcaf\xe9\n3\tcaf\\351\n\\.\n"
            b"INSERT INTO public.t VALUES (4, 'caf\xe9');\n")
    report = load_dump(ch, dump, "pgdump_badbytes", replace=True)
    assert [(t.inserted, t.quarantined) for t in report.tables] == [(1, 3)]
    assert rows(ch, "SELECT s FROM pgdump_badbytes.t") == [{"s": "café"}]
    bad = rows(ch, "SELECT raw, error_message FROM pgdump_badbytes.t_quarantine")
    assert sorted(r["raw"] for r in bad) == sorted(['["4", "caf\\xe9"]', "2\tcaf\\xe9", "3\tcaf\\351"])
    assert all("not UTF8 text" in r["error_message"] for r in bad)


def test_a_dump_in_an_encoding_helios_cannot_read_is_refused(ch):
    for name in ("SQL_ASCII", "EUC_TW"):
        with pytest.raises(ValidationError, match=name):
            load_dump(ch, f"SET client_encoding = '{name}';\nCREATE TABLE t (a text);\n".encode(), "pgdump_enc")
    assert rows(ch, "SELECT count() AS n FROM system.databases WHERE name = 'pgdump_enc'")[0]["n"] == 0


def test_cli_load_dump(ch, capsys):
    assert cli_main(["load-dump", str(FIXTURE), "--database", "pgdump_cli"]) == 0
    import json
    out = json.loads(capsys.readouterr().out)
    assert out["database"] == "pgdump_cli" and out["inserted"] == 23 and out["quarantined"] == 1
    assert cli_main(["load-dump", str(FIXTURE), "--database", "pgdump_cli"]) == 5
    capsys.readouterr()
    assert cli_main(["load-dump", "/no/such/dump.sql", "--database", "pgdump_x"]) == 3
    capsys.readouterr()
    assert cli_main(["load-dump", str(FIXTURE), "--database", "pgdump_plan", "--plan"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert {t["table"] for t in plan["tables"]} >= {"customers", "events"}
    assert rows(ch, "SELECT count() AS n FROM system.databases WHERE name = 'pgdump_plan'")[0]["n"] == 0


# ---- a real PostgreSQL server, when the machine has one -----------------------------------------------------

# pg_server: a throwaway PostgreSQL server (tests/pg_fixture.py, shared with test_chat_live.py)


REAL_SCHEMA = r"""
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE people (
  id serial PRIMARY KEY, name text NOT NULL, email varchar(120), code char(4), vip boolean DEFAULT false,
  balance numeric(12,2), score real, ratio double precision, big bigint, small smallint,
  signed_up timestamp without time zone, last_seen timestamp with time zone, birthday date, uid uuid,
  prefs jsonb, tags text[], lucky integer[], feeling mood, note text);
CREATE TABLE orders (order_id bigint NOT NULL, line_no integer NOT NULL, person_id integer REFERENCES people(id),
  amount numeric, PRIMARY KEY (order_id, line_no));
CREATE VIEW vips AS SELECT * FROM people WHERE vip;
INSERT INTO people (name, email, code, vip, balance, score, ratio, big, small, signed_up, last_seen, birthday, uid,
  prefs, tags, lucky, feeling, note)
SELECT 'person ' || i || E'\t"q"\\' || chr(10) || 'é', CASE WHEN i % 3 = 0 THEN NULL ELSE 'p' || i || '@x.io' END,
  'C' || (i % 10), i % 2 = 0, (i * 1.25)::numeric(12,2), i / 4.0, i / 3.0, i::bigint * 1000000007, (i % 300)::smallint,
  timestamp '2024-01-01 00:00:00' + i * interval '1 hour 1.5 second',
  timestamptz '2024-01-01 00:00:00+02' + i * interval '1 minute', date '2000-01-01' + i, md5(i::text)::uuid,
  jsonb_build_object('i', i, 's', 'x"y'), ARRAY['a' || i, NULL, 'b,c{' || i || '}'], ARRAY[i, -i], 
  (ARRAY['sad','ok','happy'])[1 + i % 3]::mood, CASE WHEN i % 5 = 0 THEN NULL ELSE repeat('n', i % 7) END
FROM generate_series(1, 500) AS i;
INSERT INTO orders SELECT i / 3, i % 3, 1 + i % 500, CASE WHEN i % 7 = 0 THEN NULL ELSE i / 7.0 END
FROM generate_series(1, 900) AS i;
"""


@pytest.mark.parametrize("form", [(), ("--column-inserts",)], ids=["copy", "inserts"])
def test_real_pg_dump(ch, pg_server, form):  # noqa: F811  (the fixture imported above)
    psql = pg_server["psql"]
    if not psql("SELECT 1 FROM pg_database WHERE datname = 'shop'"):
        psql("CREATE DATABASE shop")
        schema = pg_server["dir"] / "schema.sql"
        schema.write_text(REAL_SCHEMA, encoding="utf-8")
        psql("", db="shop", file=schema)
    dumped = pg_server["dump"]("shop", *form)
    database = "pgdump_real_" + ("inserts" if form else "copy")
    report = load_dump(ch, dumped, database, replace=True)
    counts = {t.table: (t.rows_in_dump, t.inserted, t.quarantined) for t in report.tables}
    assert counts == {"people": (500, 500, 0), "orders": (900, 900, 0)}
    assert any("views" in u.reason for u in report.plan.unsupported)
    # Values match PostgreSQL's own answers.
    expected = psql("SELECT sum(balance), sum(big), count(email), sum(array_length(tags, 1)), "
                    "to_char(max(last_seen) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), "
                    "to_char(max(signed_up), 'YYYY-MM-DD HH24:MI:SS.US'), max(birthday), "
                    "sum(length(name)), count(note), count(DISTINCT uid) FROM people", db="shop").strip().split("|")
    got = rows(ch, f"SELECT toString(sum(balance)) AS a, toString(sum(big)) AS b, toString(count(email)) AS c, "
                   f"toString(sum(length(tags))) AS d, "
                   f"formatDateTime(max(last_seen), '%Y-%m-%d %H:%i:%S') AS e, "
                   f"formatDateTime(max(signed_up), '%Y-%m-%d %H:%i:%S.%f') AS f, toString(max(birthday)) AS g, "
                   f"toString(sum(lengthUTF8(name))) AS h, toString(count(note)) AS i, toString(uniqExact(uid)) AS j "
                   f"FROM {database}.people")[0]
    got = list(got.values())
    assert Decimal(got[0]) == Decimal(expected[0])  # ClickHouse prints 156562.5 for 156562.50
    assert got[1:] == expected[1:]
    one = rows(ch, f"SELECT name, prefs, tags, lucky, feeling FROM {database}.people WHERE id = 7")[0]
    assert one["name"] == 'person 7\t"q"\\\né' and one["tags"] == ["a7", None, "b,c{7}"] and one["lucky"] == [7, -7]
    assert one["feeling"] == "ok" and '"s": "x\\"y"' in one["prefs"]
    amounts = psql("SELECT count(*), count(amount), round(sum(amount), 6) FROM orders", db="shop").strip().split("|")
    got = rows(ch, f"SELECT count() AS n, count(amount) AS m, toString(round(sum(amount), 6)) AS s "
                   f"FROM {database}.orders")[0]
    assert [str(got["n"]), str(got["m"])] == amounts[:2] and abs(float(got["s"]) - float(amounts[2])) < 1e-6


def test_fixture_restores_into_real_postgres(pg_server):  # noqa: F811  (the fixture imported above)
    psql = pg_server["psql"]
    psql("DROP DATABASE IF EXISTS fixture_check")
    psql("CREATE DATABASE fixture_check")
    copy = pg_server["dir"] / "fixture.sql"
    shutil.copy(FIXTURE, copy)
    os.chmod(copy, 0o644)
    psql("", db="fixture_check", file=copy)
    assert psql("SELECT count(*) FROM customers", db="fixture_check").strip() == "4"
    assert psql("SELECT string_agg(t, ',' ORDER BY id) FROM escapes WHERE id <= 3", db="fixture_check").strip() \
        == "aAb,AB,café"
