"""Hostile SQL against the shared statement gate (helios_core.sqlguard) and the guarded path (ch.query).

Each statement is tried twice, through the gate function and through ``ch.query`` (the
path the SQL explorer, the CLI, reports and the chat use). Every one must be refused with
a message, no file may appear in the temporary directory the statements aim at, and no
setting of the reader or writer handles may change.
"""

from __future__ import annotations

import pytest

from helios_core import sqlguard
from helios_core.clickhouse import table_exists
from helios_core.errors import QueryError
from helios_core.sqlguard import SqlRefused

TARGET = "{d}"  # replaced with the test's temporary directory

# Refused in read-only mode AND in write mode.
ALWAYS_REFUSED = [
    "SELECT 1 INTO OUTFILE '{d}/a.txt'",
    "SELECT 1 INTO OUTFILE '{d}/b.txt' TRUNCATE",
    "SELECT 1 INTO OUTFILE '{d}/c.txt' APPEND",
    "SELECT 1 INTO OUTFILE '{d}/d.txt' AND STDOUT",
    "SELECT 1 INTO OUTFILE '{d}/e.gz' COMPRESSION 'gzip'",
    "sElEcT 1 iNtO oUtFiLe '{d}/f.txt'",
    "SELECT 1 /* x */ INTO /* y */ OUTFILE '{d}/g.txt'",
    "SELECT 1 -- a comment\nINTO OUTFILE '{d}/h.txt'",
    "SELECT\u00a01\u2003INTO\u00a0OUTFILE '{d}/i.txt'",
    "WITH x AS (SELECT 1 AS a) SELECT * FROM x INTO OUTFILE '{d}/j.txt'",
    "SHOW TABLES INTO OUTFILE '{d}/k.txt'",
    "DESCRIBE TABLE demo.users INTO OUTFILE '{d}/l.txt'",
    "EXPLAIN SELECT 1 INTO OUTFILE '{d}/m.txt'",
    "SELECT 1 UNION ALL SELECT 2 INTO OUTFILE '{d}/n.txt'",
    "INSERT INTO FUNCTION file('{d}/o.txt', 'CSV', 'a UInt8') SELECT 1",
    "SYSTEM STOP MERGES",
    "system stop merges",
    "/* hi */ SYSTEM FLUSH LOGS",
    "SYSTEM DROP DNS CACHE",
    "KILL QUERY WHERE 1",
    "KILL QUERY WHERE 1 SYNC",
    "KILL MUTATION WHERE 1",
    "SET readonly = 0",
    "SET max_execution_time = 100000",
    "set max_result_rows = 0",
    "SELECT 1 SETTINGS max_execution_time = 100000",
    "SELECT 1 SETTINGS readonly = 0",
    "SELECT * FROM (SELECT 1 SETTINGS max_result_rows = 100000000)",
    "SELECT count() FROM demo.users SETTINGS max_memory_usage = 0",
    "BACKUP TABLE demo.users TO File('{d}/backup.zip')",
    "RESTORE TABLE demo.users FROM File('{d}/backup.zip')",
    "SELECT 'a-secret' AS x; DROP TABLE demo.users",
    "SELECT 1;\u00a0DROP TABLE demo.users",
    "SELECT 1; SELECT 2",
    "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "SeLeCt * FrOm FiLe('/etc/passwd', 'LineAsString')",
    "SELECT file('/etc/passwd')",
    "WITH f AS (SELECT * FROM file('/etc/passwd', 'LineAsString')) SELECT * FROM f",
    "SELECT count() FROM demo.users WHERE country IN (SELECT * FROM url('http://127.0.0.1:9/x', CSV, 'c String'))",
    "SELECT * FROM demo.users AS u JOIN s3('http://127.0.0.1:9/b/k.csv', CSV, 'user_id UInt32') AS s USING user_id",
    "SELECT * FROM executable('id', TSV, 'x String')",
    "SELECT * FROM input('a UInt8')",
    "SELECT * FROM remote('127.0.0.1', system.one)",
    "SELECT * FROM remoteSecure('127.0.0.1', system.one)",
    "SELECT * FROM clusterAllReplicas('default', system.one)",
    "SELECT * FROM mysql('127.0.0.1:9', 'db', 't', 'u', 'p')",
    "SELECT * FROM postgresql('127.0.0.1:9', 'db', 't', 'u', 'p')",
    "SELECT * FROM sqlite('{d}/x.db', 't')",
    "SELECT * FROM hdfs('hdfs://127.0.0.1:9/x', CSV, 'a String')",
    "SELECT * FROM urlCluster('default', 'http://127.0.0.1:9/x', CSV, 'a String')",
    "SELECT * FROM fileCluster('default', '/etc/passwd', 'LineAsString')",
    "SELECT * FROM merge('system', '^processes$')",
    "SELECT * FROM view(SELECT * FROM file('/etc/passwd', 'LineAsString'))",
    "SELECT * FROM numbers(2) WHERE number IN (SELECT number FROM remote('127.0.0.1', system.numbers) LIMIT 1)",
    "DESCRIBE TABLE file('/etc/passwd', 'LineAsString')",
    "EXPLAIN SELECT * FROM url('http://127.0.0.1:9/', CSV, 'a String')",
    "SELECT * FROM system.processes",
    "SELECT query FROM `system`.`query_log`",
    "SELECT 1 WHERE 'x' IN (SELECT query FROM system.processes)",
    "SELECT * FROM system.text_log",
    "SELECT command FROM system.mutations",
    "SELECT catboostEvaluate('{d}/model.bin', 1)",
    "ALTER TABLE demo.users UPDATE country = file('/etc/hostname') WHERE 1",
    "CREATE FUNCTION evil_read AS () -> file('/etc/passwd')",
    "SHOW PROCESSLIST",
    "SELECT 1 FORMAT JSON",
    "USE system",
    "BEGIN TRANSACTION",
    "GRANT ALL ON *.* TO default",
    "CREATE TABLE default.evil_file (a UInt8) ENGINE = File(CSV)",
    "CREATE TABLE default.evil_as AS file('/etc/passwd', 'LineAsString')",
    "CREATE TABLE default.evil_url (a String) ENGINE = URL('http://127.0.0.1:9/x', CSV)",
    "CREATE DATABASE evil_fs ENGINE = Filesystem('{d}')",
    "CREATE DICTIONARY default.evil_dict (a UInt64) PRIMARY KEY a "
    "SOURCE(EXECUTABLE(command 'id' format 'TSV')) LAYOUT(FLAT()) LIFETIME(0)",
    "INSERT INTO default.evil_target SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "CREATE VIEW default.evil_view AS SELECT * FROM system.processes",
    "CREATE TABLE default.evil_disk (a UInt8) ENGINE = MergeTree ORDER BY a "
    "SETTINGS disk = disk(type = 'local', path = '{d}/')",
    "ALTER TABLE demo.users MODIFY SETTING storage_policy = 'default'",
    # rows written into an INSERT are not part of the parse tree: what follows them is looked at too
    "INSERT INTO demo.users (user_id) VALUES (1); DROP TABLE demo.users",
    "INSERT INTO demo.users (user_id) VALUES (1)\n;\u00a0DROP TABLE demo.users",
    "INSERT INTO demo.users FORMAT CSV\n1\n",
]

# Refused in read-only mode only: these change data, which write mode allows on purpose.
READ_ONLY_REFUSED = [
    "DROP TABLE demo.users",
    "INSERT INTO demo.users (user_id) VALUES (1)",
    "ALTER TABLE demo.users DELETE WHERE 1",
    "CREATE TABLE demo.evil (a UInt8) ENGINE = Memory",
    "TRUNCATE TABLE demo.users",
    "OPTIMIZE TABLE demo.users FINAL",
    "RENAME TABLE demo.users TO demo.users2",
    "EXPLAIN AST ALTER TABLE demo.users DELETE WHERE 1",
]


def _sql(template: str, directory) -> str:
    return template.replace(TARGET, str(directory))


def _reader_settings(ch) -> list[tuple]:
    """Every reader's guard settings (the pool hands out handles in turn)."""
    sql = ("SELECT getSetting('readonly') AS ro, getSetting('max_execution_time') AS t, "
           "getSetting('max_result_rows') AS r, getSetting('max_memory_usage') AS m, "
           "getSetting('max_result_bytes') AS b")
    return sorted({tuple(ch.run_guarded(sql).records()[0].values()) for _ in range(2 * ch.settings.reader_pool_size)})


def _writer_settings(ch) -> list[dict]:
    return ch.internal_query("SELECT getSetting('readonly') AS ro, getSetting('max_execution_time') AS t, "
                             "getSetting('max_result_rows') AS r")


@pytest.fixture(scope="module")
def baseline(ch, demo):
    return _reader_settings(ch), _writer_settings(ch)


def test_the_suite_is_big_enough():
    assert len(ALWAYS_REFUSED) + len(READ_ONLY_REFUSED) >= 40


@pytest.mark.parametrize("template", ALWAYS_REFUSED + READ_ONLY_REFUSED)
def test_refused_in_read_only_mode(ch, demo, baseline, tmp_path, template):
    sql = _sql(template, tmp_path)
    with pytest.raises(SqlRefused) as gate_info:
        sqlguard.check(ch, sql)
    with pytest.raises(SqlRefused) as path_info:
        ch.query(sql)
    for info in (gate_info, path_info):
        assert len(info.value.message) > 20 and "Traceback" not in str(info.value)
    _assert_nothing_happened(ch, tmp_path, baseline)


@pytest.mark.parametrize("template", ALWAYS_REFUSED)
def test_refused_in_write_mode_too(ch, demo, baseline, tmp_path, template):
    sql = _sql(template, tmp_path)
    with pytest.raises(SqlRefused):
        sqlguard.check(ch, sql, write=True)
    with pytest.raises(SqlRefused) as info:
        ch.query(sql, write=True)
    assert info.value.message
    _assert_nothing_happened(ch, tmp_path, baseline)


def _assert_nothing_happened(ch, directory, baseline) -> None:
    assert list(directory.iterdir()) == []
    assert (_reader_settings(ch), _writer_settings(ch)) == baseline
    assert table_exists(ch, "demo", "users")
    assert ch.internal_query("SELECT count() AS n FROM demo.users")[0]["n"] == 2000
    names = {r["name"] for r in ch.internal_query("SELECT name FROM system.tables WHERE database = 'default'")}
    assert not {n for n in names if n.startswith("evil")}
    assert not ch.internal_query("SELECT name FROM system.databases WHERE name = 'evil_fs'")


def test_readers_keep_their_guards(ch, baseline):
    readers, writer = baseline
    assert len(readers) == 1
    ro, timeout, rows, memory, result_bytes = readers[0]
    assert ro == 1 and timeout == ch.settings.query_timeout_s and rows == ch.settings.max_result_rows + 1
    assert memory == ch.settings.max_memory_usage and result_bytes == ch.settings.max_result_bytes
    assert writer[0]["ro"] == 0


@pytest.mark.parametrize("sql, refusal", [
    ("SELECT 1 INTO OUTFILE '/tmp/x'", "INTO OUTFILE"),
    ("SYSTEM STOP MERGES", "SYSTEM"),
    ("KILL QUERY WHERE 1", "KILL"),
    ("SELECT 1 SETTINGS max_execution_time = 1", "settings"),
    ("SET max_execution_time = 1", "settings"),
    ("SELECT * FROM file('/etc/passwd')", "file()"),
    ("SELECT * FROM url('http://x/', CSV, 'a String')", "url()"),
    ("SELECT * FROM system.processes", "other people's queries"),
    ("SELECT 1; SELECT 2", "one statement"),
    ("DROP TABLE demo.users", "read-only"),
])
def test_messages_say_what_and_why(ch, demo, sql, refusal):
    with pytest.raises(SqlRefused) as info:
        ch.query(sql)
    assert refusal.lower() in str(info.value).lower()
    assert info.value.hint


LEGITIMATE = [
    ("SELECT plan, count() AS n FROM demo.users GROUP BY plan ORDER BY plan", 3),
    ("WITH big AS (SELECT user_id FROM demo.purchase_events WHERE amount > 400) "
     "SELECT u.plan, count() AS n FROM demo.users AS u WHERE u.user_id IN (SELECT user_id FROM big) "
     "GROUP BY u.plan", None),
    ("SELECT u.plan, count() AS n FROM demo.users AS u INNER JOIN demo.purchase_events AS p ON p.user_id = u.user_id "
     "GROUP BY u.plan", 3),
    ("SELECT 1 AS a UNION ALL SELECT 2 AS a", 2),
    ("SELECT 1 AS a INTERSECT SELECT 1 AS a", 1),
    ("SELECT count() AS n FROM (SELECT user_id FROM demo.users WHERE country = 'DE')", 1),
    ("SHOW TABLES FROM demo", 4),
    ("SHOW DATABASES", None),
    ("DESCRIBE TABLE demo.users", None),
    ("EXISTS TABLE demo.users", 1),
    ("EXPLAIN SELECT count() FROM demo.users", None),
    ("EXPLAIN SYNTAX SELECT 1", None),
    ("SELECT sum(number) AS s FROM numbers(10)", 1),
    ("SELECT * FROM generateRandom('a UInt8', 1) LIMIT 3", 3),
    ("SELECT * FROM values('a UInt8', 1, 2, 3)", 3),
    ("SELECT * FROM view(SELECT 1 AS a)", 1),
    ("SELECT 'INTO OUTFILE /tmp/x; DROP TABLE demo.users' AS text, 1 AS url, 2 AS file", 1),
    ("-- a comment\nselect /* inline */ count() as n from demo.users", 1),
    ("SELECT name FROM system.tables WHERE database = 'demo' ORDER BY name", 4),
    ("SELECT count() AS n FROM demo.users;", 1),
]


@pytest.mark.parametrize("sql, rows", LEGITIMATE)
def test_legitimate_sql_still_runs(ch, demo, sql, rows):
    verdict = sqlguard.check(ch, sql)
    assert verdict.sql and verdict.nodes
    result = ch.query(sql)
    if rows is not None:
        assert result.row_count == rows
    else:
        assert result.row_count >= 1


def test_bound_parameters_pass_and_are_checked_too(ch, demo):
    result = ch.query("SELECT count() AS n FROM demo.users WHERE country = {c:String}", {"c": "x' OR 1=1 --"})
    assert result.records() == [{"n": 0}]
    # an Identifier parameter names a table: the gate sees the table it stands for
    sql = "SELECT count() AS n FROM {db:Identifier}.{t:Identifier}"
    with pytest.raises(SqlRefused, match="system.processes"):
        ch.query(sql, {"db": "system", "t": "processes"})
    assert ch.query(sql, {"db": "demo", "t": "users"}).records() == [{"n": 2000}]


def test_write_mode_allows_ddl_and_dml(ch):
    ch.query("CREATE TABLE default.guard_scratch (a UInt8, s String) ENGINE = MergeTree ORDER BY a", write=True)
    try:
        ch.query("INSERT INTO default.guard_scratch VALUES (1, 'x;y'), (2, 'it''s')", write=True)
        ch.query("ALTER TABLE default.guard_scratch ADD COLUMN b UInt8 DEFAULT 7", write=True)
        assert ch.query("SELECT sum(a) AS s, max(b) AS b FROM default.guard_scratch").records() == [{"s": 3, "b": 7}]
        assert ch.query("SELECT count() AS n FROM default.guard_scratch", write=True).records() == [{"n": 2}]
    finally:
        ch.query("DROP TABLE default.guard_scratch", write=True)
    assert not table_exists(ch, "default", "guard_scratch")


def test_parameterized_views_are_tables_not_table_functions(ch, demo):
    ch.query("CREATE VIEW default.guard_pv AS SELECT user_id FROM demo.users WHERE plan = {p:String}", write=True)
    try:
        assert ch.query("SELECT count() AS n FROM default.guard_pv(p = 'pro')").records()[0]["n"] > 0
    finally:
        ch.query("DROP VIEW default.guard_pv", write=True)


def test_an_admin_can_allow_a_table_function(ch, demo):
    from dataclasses import replace

    from helios_core.clickhouse import ClickHouse
    sql = "SELECT count() AS n FROM merge('demo', '^users$')"
    with pytest.raises(SqlRefused, match="HELIOS_ALLOWED_TABLE_FUNCTIONS"):
        sqlguard.check(ch, sql)
    admin = ClickHouse(replace(ch.settings, allowed_table_functions=("merge",), reader_pool_size=1))
    try:
        assert admin.query(sql).records() == [{"n": 2000}]
        with pytest.raises(SqlRefused):  # allowing one function allows nothing else
            admin.query("SELECT * FROM file('/etc/passwd', 'LineAsString')")
    finally:
        admin.close()


def test_allowed_table_functions_come_from_the_environment(tmp_path):
    from helios_core.config import load_settings
    settings = load_settings(env={"HELIOS_ALLOWED_TABLE_FUNCTIONS": " URL, s3 ,"}, cwd=tmp_path, secrets_paths=[])
    assert settings.allowed_table_functions == ("s3", "url")
    assert load_settings(env={}, cwd=tmp_path, secrets_paths=[]).allowed_table_functions == ()


@pytest.mark.parametrize("sql, says", [
    ("SELECT 1 SETTINGS max_execution_time = 100000", "settings"),
    ("SELECT count() FROM demo.users SETTINGS max_result_rows = 0, readonly = 0", "settings"),
    ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "file()"),
    ("SELECT * FROM url('http://127.0.0.1:9/x', CSV, 'a String')", "url()"),
    ("SELECT 1 INTO OUTFILE '/tmp/helios-server-probe'", "INTO OUTFILE"),
])
def test_the_gate_covers_the_server_path(ch, demo, sql, says):
    # ClickHouse.query runs the gate before it picks a handle, so the server path is gated the same way.
    # Under readonly=2 (a server) a SETTINGS clause parses instead of failing: the tree, as such a handle
    # shows it (here the writable writer's), must be refused on its own.
    canon = ch.internal_query("SELECT formatQuery({s:String}) AS q", {"s": sql})[0]["q"]
    lines = [row["explain"] for row in ch.internal_query(f"EXPLAIN AST {canon}")]
    with pytest.raises(SqlRefused) as info:
        sqlguard.inspect(sqlguard.tree(lines), canon, write=False)
    assert says.lower() in str(info.value).lower()
    with pytest.raises(SqlRefused):
        sqlguard.inspect(sqlguard.tree(lines), canon, write=True)


def test_server_guard_settings_hold_every_limit(ch):
    from helios_core.clickhouse import server_guard_settings
    settings = server_guard_settings(ch.settings, 100, None)
    assert settings == {"readonly": 2, "max_execution_time": ch.settings.query_timeout_s, "max_result_rows": 101,
                        "max_memory_usage": ch.settings.max_memory_usage,
                        "max_result_bytes": ch.settings.max_result_bytes, "result_overflow_mode": "break"}
    assert server_guard_settings(ch.settings, 5, 3)["max_execution_time"] == 3


def test_verdicts_are_cached_per_text_and_mode(ch, demo):
    sql = "SELECT count() AS cached FROM demo.users"
    first = sqlguard.check(ch, sql)
    assert sqlguard.check(ch, sql) is first
    assert sqlguard.check(ch, sql, write=True) is not first
    with pytest.raises(SqlRefused):  # a refusal is never cached as a pass
        sqlguard.check(ch, "DROP TABLE demo.users")
    assert len(sqlguard._cache) <= sqlguard._CACHE_SIZE


def test_syntax_errors_stay_clickhouse_errors(ch):
    with pytest.raises(QueryError) as info:
        ch.query("SELEC 1")
    assert info.value.name == "SYNTAX_ERROR" and "formatQuery" not in str(info.value)
