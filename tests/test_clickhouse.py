"""The guarded query layer and the catalog, against the real embedded engine."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from helios_core.clickhouse import ClickHouse, list_databases, list_tables, preview, table_exists, table_info
from helios_core.errors import NotFound, QueryError, ValidationError
from helios_core.sqlguard import SqlRefused


def test_catalog_lists_databases_in_the_seed_shape(ch, demo):
    databases = list_databases(ch)
    assert databases["demo"] == ["captcha_events", "purchase_events", "user_activity", "users"]
    assert "system" not in databases and "information_schema" not in databases
    assert "system" in list_databases(ch, include_system=True)


def test_table_details_come_from_system_tables(ch, demo):
    info = table_info(ch, "demo", "users")
    assert info.total_rows == 2000 and info.total_bytes > 0
    assert info.engine == "MergeTree" and info.sorting_key == "user_id"
    assert [c["name"] for c in info.columns][:2] == ["user_id", "signup_date"]
    assert any(t.name == "user_activity" for t in list_tables(ch, "demo"))
    assert table_exists(ch, "demo", "users") and not table_exists(ch, "demo", "nope")
    with pytest.raises(NotFound):
        table_info(ch, "demo", "nope")
    assert preview(ch, "demo", "users", limit=7).row_count == 7


def test_query_result_carries_the_seed_metadata(ch, demo):
    result = ch.query("SELECT country, count() AS n FROM demo.users GROUP BY country ORDER BY country")
    seed = result.to_api()
    assert seed["metadata"]["column_names"] == ["country", "n"]
    assert seed["metadata"]["column_types"] == ["LowCardinality(String)", "UInt64"]
    assert seed["metadata"]["row_count"] == len(seed["data"]) == 8
    assert sum(row["n"] for row in seed["data"]) == 2000
    assert result.rows_read == 2000 and result.bytes_read > 0 and result.elapsed_ms > 0
    assert result.truncated is False


def test_parameters_are_bound_not_pasted(ch, demo):
    hostile = "x' OR 1=1 --"
    result = ch.query("SELECT count() AS n FROM demo.users WHERE country = {c:String}", {"c": hostile})
    assert result.records() == [{"n": 0}]


@pytest.mark.parametrize("sql", [
    "DROP TABLE demo.users",
    "INSERT INTO demo.users (user_id) VALUES (1)",
    "CREATE TABLE demo.x (a Int8) ENGINE = Memory",
    "ALTER TABLE demo.users DELETE WHERE 1",
    "SELECT 1 SETTINGS readonly = 0",
    "SELECT 1 SETTINGS max_execution_time = 100000",
    "SELECT * FROM file('/etc/passwd', 'LineAsString')",
])
def test_read_only_refuses_writes_and_limit_overrides(ch, demo, sql):
    # the statement gate refuses first, before anything runs ...
    with pytest.raises(SqlRefused) as info:
        ch.query(sql)
    assert info.value.name in ("REFUSED", "READONLY") and info.value.message
    # ... and the readonly lock on the reader is the second wall, for SQL that skips the gate
    with pytest.raises(QueryError) as info:
        ch.run_guarded(sql)
    assert info.value.code == 164 and info.value.name == "READONLY"
    assert "read-only" in info.value.hint
    assert table_exists(ch, "demo", "users")


def test_writes_need_the_deliberate_flag(ch):
    ch.query("CREATE TABLE IF NOT EXISTS default.scratch (a UInt8) ENGINE = Memory", write=True)
    ch.query("INSERT INTO default.scratch VALUES (1), (2)", write=True)
    assert ch.query("SELECT count() AS n FROM default.scratch").records() == [{"n": 2}]
    ch.query("DROP TABLE default.scratch", write=True)
    # the write did not leave the shared connection writable for the next read-only query
    with pytest.raises(QueryError):
        ch.query("CREATE TABLE default.scratch2 (a UInt8) ENGINE = Memory")


def test_row_cap_sets_the_truncated_flag(ch):
    result = ch.query("SELECT number FROM numbers(1000000)", limit=250)
    assert result.row_count == 250 and result.truncated
    exact = ch.query("SELECT number FROM numbers(250)", limit=250)
    assert exact.row_count == 250 and not exact.truncated
    # the cap applies to the result only, never to subqueries inside it
    capped = ch.query("SELECT count() AS n FROM (SELECT number FROM numbers(300000))", limit=5)
    assert capped.records() == [{"n": 300000}]


def test_time_limit_is_enforced_by_clickhouse(ch):
    # A second ClickHouse object opens more handles on the same engine with a 1 s limit.
    strict = ClickHouse(replace(ch.settings, query_timeout_s=1, reader_pool_size=1))
    try:
        with pytest.raises(QueryError) as info:
            strict.query("SELECT count() FROM numbers(100000000000) WHERE sleepEachRow(0) = 0")
        assert info.value.name == "TIMEOUT_EXCEEDED"
        assert "Narrow the query" in info.value.hint
    finally:
        strict.close()


@pytest.mark.parametrize("sql, name", [
    ("SELEC 1", "SYNTAX_ERROR"),
    ("SELECT * FROM demo.no_such_table", "UNKNOWN_TABLE"),
    ("SELECT no_such_column FROM demo.users", "UNKNOWN_IDENTIFIER"),
])
def test_errors_map_to_a_code_and_a_human_message(ch, demo, sql, name):
    with pytest.raises(QueryError) as info:
        ch.query(sql)
    error = info.value
    assert error.name == name and error.code
    assert "Stack trace" not in str(error) and "DB::Exception" not in str(error)
    assert str(error).startswith("ClickHouse error")


def test_empty_query_is_refused_with_a_hint(ch):
    with pytest.raises(QueryError, match="empty"):
        ch.query("  ; ")


def test_parallel_queries_from_many_threads(ch, demo):
    expected = {i: ch.query(f"SELECT count() AS n FROM demo.user_activity WHERE user_id % 7 = {i}").records()
                for i in range(7)}
    results: dict[int, list] = {}
    errors: list[Exception] = []

    def worker(i: int) -> None:
        try:
            for _ in range(5):
                results[i] = ch.query(f"SELECT count() AS n FROM demo.user_activity WHERE user_id % 7 = {i}").records()
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(7)] + \
              [threading.Thread(target=lambda: ch.internal_query("SELECT count() FROM demo.users"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == expected


def test_a_second_process_on_the_same_data_dir_gets_a_plain_message(ch, tmp_path):
    import os
    import subprocess
    import sys
    env = dict(os.environ, HELIOS_DATA_DIR=str(ch.settings.data_dir))
    proc = subprocess.run([sys.executable, "-m", "helios_core", "databases"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 1
    assert "in use by another Helios process" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_uuid_and_ip_columns_come_back_as_text(ch, demo):
    result = ch.query("SELECT session_id, ip, [ip] AS ips FROM demo.user_activity LIMIT 3")
    row = result.records()[0]
    assert isinstance(row["session_id"], str) and len(row["session_id"]) == 36
    assert isinstance(row["ip"], str) and row["ip"].count(".") == 3
    assert isinstance(row["ips"][0], str)
    assert result.column_types[:2] == ["UUID", "IPv4"]


# ---- stale results, driver errors, limits (issue 16) ----------------------------------------------


@pytest.fixture
def one_reader(ch):
    """A second ClickHouse object with a single reader handle, so "the next query" uses the same handle."""
    other = ClickHouse(replace(ch.settings, reader_pool_size=1))
    yield other
    other.close()


def test_a_failed_multi_statement_leaves_nothing_for_the_next_query(one_reader, demo):
    ch = one_reader
    with pytest.raises(QueryError, match="one statement"):  # the gate refuses it before it runs
        ch.query("SELECT 'a-secret' AS x; DROP TABLE demo.users")
    # SQL that skips the gate fails on the handle; the handle is replaced, not reused
    with pytest.raises(QueryError):
        ch.run_guarded("SELECT 'a-secret' AS x; DROP TABLE demo.users")
    assert ch.run_guarded("SELECT 7 AS y").records() == [{"y": 7}]
    assert ch.query("SELECT 8 AS y").records() == [{"y": 8}]
    assert ch.internal_query("SELECT 9 AS y") == [{"y": 9}]
    assert table_exists(ch, "demo", "users")


def test_a_driver_failure_becomes_a_query_error_and_the_handle_is_replaced(one_reader, demo):
    ch = one_reader

    def poison() -> None:  # the one reader, left the way a failed multi-statement left it before the fix
        client = ch._readers.get()
        try:
            client.query("SELECT 'a-secret' AS x; DROP TABLE demo.users")
        except Exception:
            pass
        ch._readers.put(client)

    poison()
    with pytest.raises(QueryError) as info:  # the driver's StreamFailureError, read inside the guard
        ch.run_guarded("SELECT 7 AS y")
    assert "could not be read" in info.value.message and "StreamFailureError" in info.value.message
    assert info.value.hint and "a-secret" not in info.value.hint
    assert ch.run_guarded("SELECT 8 AS y").records() == [{"y": 8}]
    poison()
    with pytest.raises(QueryError, match="another query's result"):  # the gate never checks stale text
        ch.query("SELECT 9 AS y")
    assert ch.query("SELECT 10 AS y").records() == [{"y": 10}]


def test_a_failed_user_write_does_not_leave_rows_for_the_next(one_reader, demo):
    ch = one_reader
    assert ch.query("SELECT 1 AS y", write=True).records() == [{"y": 1}]  # opens the user-write handle
    try:
        ch._user_writer.query("SELECT 'a-secret' AS x; DROP TABLE default.no_such_table_here")
    except Exception:
        pass
    with pytest.raises(QueryError):
        ch.query("SELECT 2 AS y", write=True)
    assert ch.query("SELECT 3 AS y", write=True).records() == [{"y": 3}]
    assert ch.internal_query("SELECT 4 AS y") == [{"y": 4}]  # Helios's own writer never saw user SQL


def test_memory_and_result_bytes_are_limited(ch):
    small = ClickHouse(replace(ch.settings, reader_pool_size=1, max_memory_usage=64 * 1024 ** 2,
                               max_result_bytes=1024 ** 2))
    try:
        with pytest.raises(QueryError) as info:
            small.query("SELECT length(groupArray(number)) AS n FROM numbers(30000000)")
        assert info.value.name == "MEMORY_LIMIT_EXCEEDED" and info.value.hint
        # 1,500 rows of 10 kB (15 MB) against a 1 MiB limit: cut, and said so
        result = small.query("SELECT number, repeat('x', 10000) AS s FROM numbers(1500)")
        assert result.truncated and 0 < result.row_count < 1500
        assert int(result.frame["s"].str.len().sum()) <= 1024 ** 2
        small_rows = small.query("SELECT number FROM numbers(1500)")
        assert small_rows.row_count == 1500 and not small_rows.truncated
        readers = small.run_guarded("SELECT getSetting('max_memory_usage') AS m, "
                                    "getSetting('max_result_bytes') AS b").records()
        assert readers == [{"m": 64 * 1024 ** 2, "b": 1024 ** 2}]
    finally:
        small.close()


def test_default_limits_are_sane(ch):
    assert ch.settings.max_memory_usage == 2 * 1024 ** 3
    assert ch.settings.max_result_bytes == 256 * 1024 ** 2


@pytest.mark.parametrize("limit", [0, -2])
def test_a_limit_below_one_is_refused(ch, limit):
    with pytest.raises(ValidationError, match="1 or more"):
        ch.query("SELECT 1", limit=limit)


def test_an_empty_result_keeps_its_column_names(ch, demo):
    result = ch.query("SELECT user_id, country FROM demo.users WHERE 0")
    assert result.row_count == 0
    assert result.column_names == ["user_id", "country"]
    assert result.column_types == ["UInt32", "LowCardinality(String)"]
    assert result.to_api()["metadata"]["column_names"] == ["user_id", "country"]
    assert list(result.frame.columns) == ["user_id", "country"]


def test_cli_refuses_into_outfile_and_bad_limits(capsys, demo, tmp_path):
    from helios_core.cli import main
    target = tmp_path / "helios_probe.txt"
    assert main(["query", f"SELECT 1 INTO OUTFILE '{target}'"]) == 3
    err = capsys.readouterr().err
    assert not target.exists()
    assert len(err.strip().splitlines()) == 1 and "INTO OUTFILE" in err and "Traceback" not in err
    assert main(["query", "SELECT 1", "--limit", "-2"]) == 3
    assert "1 or more" in capsys.readouterr().err
