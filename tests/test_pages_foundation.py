"""AppTest: the home, Databases and SQL explorer pages, driven from app.py."""

from __future__ import annotations

import pytest
from helpers import APPTEST_TIMEOUT
from streamlit.testing.v1 import AppTest


@pytest.fixture
def app(app_path, ch):
    return AppTest.from_file(app_path, default_timeout=APPTEST_TIMEOUT)


def _texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


def write_sql(at: AppTest, sql: str) -> None:
    """What typing into the explorer's editor leaves behind (AppTest cannot drive the component itself)."""
    at.session_state["sql_editor"] = sql


def test_home_shows_connection_and_offers_demo_data(app, ch, demo):
    at = app.run()
    assert not at.exception
    assert at.title[0].value == "Helios"
    assert "Embedded" in _texts(at.metric)
    assert "Embedded ClickHouse" in _texts(at.caption)
    # demo data is loaded by the fixture, so the offer is not shown
    assert not [b for b in at.button if b.key == "load_demo"]


def test_databases_page_shows_table_details(open_page, demo):
    at = open_page("pages/databases.py")
    at.radio(key="db_database").set_value("demo").run()
    at.radio(key="db_table").set_value("users").run()
    assert "demo.users" in _texts(at.subheader)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Rows"] == "2,000" and metrics["Engine"] == "MergeTree"
    assert "Sorting key: `user_id`" in _texts(at.caption)
    assert len(at.dataframe) == 2  # columns and first rows


def test_sql_explorer_runs_a_query_and_shows_metadata(open_page, demo):
    at = open_page("pages/sql_explorer.py")
    write_sql(at, "SELECT plan, count() AS users FROM demo.users GROUP BY plan ORDER BY plan")
    at.button(key="sql_run").click().run()
    assert not at.exception and not at.error
    frame = at.dataframe[0].value
    assert list(frame.columns) == ["plan", "users"] and frame["users"].sum() == 2000
    assert "3 rows" in _texts(at.caption)
    assert at.get("plotly_chart"), "a chart is drawn for category + measure"
    history = at.session_state["sql_history"]
    assert history[0]["ok"] and history[0]["rows"] == 3


def test_sql_explorer_shows_a_clean_error_for_bad_sql(open_page, demo):
    at = open_page("pages/sql_explorer.py")
    write_sql(at, "SELECT nope FROM demo.users")
    at.button(key="sql_run").click().run()
    assert not at.exception
    assert "UNKNOWN_IDENTIFIER" in at.error[0].value
    assert "Traceback" not in _texts(at.error)


def test_sql_explorer_refuses_writes_in_read_only_mode(open_page, ch, demo):
    at = open_page("pages/sql_explorer.py")
    write_sql(at, "DROP TABLE demo.users")
    at.button(key="sql_run").click().run()
    assert not at.exception
    assert "READONLY" in at.error[0].value
    assert ch.query("SELECT count() AS n FROM demo.users").records() == [{"n": 2000}]


def test_sql_explorer_writes_only_after_read_only_is_turned_off(open_page, ch):
    at = open_page("pages/sql_explorer.py")
    at.toggle(key="sql_read_only").set_value(False).run()
    assert "can change or delete data" in _texts(at.warning)
    write_sql(at, "CREATE TABLE IF NOT EXISTS default.page_scratch (a UInt8) ENGINE = Memory")
    at.button(key="sql_run").click().run()
    assert not at.exception and not at.error
    assert at.toggle(key="sql_read_only").value is True, "read-only comes back on after one write"
    ch.execute("DROP TABLE IF EXISTS default.page_scratch")


def test_truncation_notice(open_page, demo):
    at = open_page("pages/sql_explorer.py")
    at.number_input(key="sql_limit").set_value(100)
    write_sql(at, "SELECT * FROM demo.user_activity")
    at.button(key="sql_run").click().run()
    assert "first 100 rows" in _texts(at.warning)
    assert len(at.dataframe[0].value) == 100


def test_sql_explorer_run_again_from_history(open_page, demo):
    # issue 17: "Run again" set the editor's value after its widget existed and crashed every time
    at = open_page("pages/sql_explorer.py")
    write_sql(at, "SELECT count() AS n FROM demo.users")
    at.button(key="sql_run").click().run()
    write_sql(at, "SELECT plan FROM demo.users GROUP BY plan ORDER BY plan")
    at.button(key="sql_run").click().run()
    assert len(at.session_state["sql_history"]) == 2
    version = at.session_state["sql_editor_version"]
    at.button(key="sql_hist_1").click().run()  # the older query
    assert not at.exception, at.exception
    assert at.session_state["sql_editor"] == "SELECT count() AS n FROM demo.users"
    assert at.session_state["sql_editor_version"] == version + 1, "the editor is mounted afresh with that SQL"
    assert list(at.dataframe[0].value.columns) == ["n"]
    assert "1 row ·" in _texts(at.caption) and "1 rows" not in _texts(at.caption)
    history = at.session_state["sql_history"]
    assert len(history) == 3 and history[0]["sql"] == "SELECT count() AS n FROM demo.users"


def test_open_in_sql_explorer_hands_the_sql_over_and_runs_it(open_page, demo):
    at = open_page("pages/databases.py")
    at.radio(key="db_database").set_value("demo").run()
    at.radio(key="db_table").set_value("users").run()
    next(b for b in at.button if b.label == "Query in SQL explorer").click().run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["SQL explorer"]
    assert "`demo`.`users`" in at.session_state["sql_editor"]
    assert at.session_state["sql_result"].row_count == 100


def test_sql_explorer_shows_an_empty_result_as_zero_rows(open_page, demo):
    at = open_page("pages/sql_explorer.py")
    write_sql(at, "SELECT user_id, plan FROM demo.users WHERE 0")
    at.button(key="sql_run").click().run()
    assert not at.exception and not at.error
    assert "0 rows" in _texts(at.caption)
    assert "Done." not in _texts(at.success)
    result = at.session_state["sql_result"]
    assert list(at.dataframe[0].value.columns) == result.column_names  # what the core reports, nothing invented
    assert at.session_state["sql_history"][0]["rows"] == 0


def test_sql_explorer_offers_catalog_names_for_completion(ch, demo):
    from helios_core.clickhouse import catalog_names

    names = {(n.value, n.kind): n for n in catalog_names(ch)}
    assert ("demo", "database") in names
    assert names[("users", "table")].detail == "demo"
    assert names[("plan", "column")].detail.startswith("demo.users · ")
    assert not any(n.detail.startswith("system.") for n in names.values())
