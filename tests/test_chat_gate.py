"""The gate: one read-only SELECT, checked by ClickHouse's parser and analyzer, over the chat's tables only."""

from __future__ import annotations

import pytest

from helios_core.chat import gate
from helios_core.chat.context import Subject, build_context
from helios_core.chat.gate import SqlRefused
from helios_core.errors import HeliosError


@pytest.fixture(scope="module")
def ctx(ch, demo):
    return build_context(ch, Subject("demo"))


@pytest.fixture(scope="module")
def query_ctx(ch, demo):
    sql = "SELECT event_type, device, count() AS n FROM demo.user_activity GROUP BY event_type, device"
    return build_context(ch, Subject("demo", sql, "events by type and device"))


@pytest.mark.parametrize("sql, says", [
    ("DROP TABLE demo.users", "not DROP"),
    ("INSERT INTO demo.users SELECT * FROM demo.users", "not INSERT"),
    ("ALTER TABLE demo.users DELETE WHERE 1", "not ALTER"),
    ("SELECT 1; DROP TABLE demo.users", "several"),
    ("SELECT nosuch FROM demo.users", "nosuch"),
    ("SELECT count() FROM demo.nosuch", "nosuch"),
    ("SELECT * FROM system.tables", "system.tables"),
    ("SELECT (SELECT count() FROM helios.chats) AS n", "helios.chats"),
    ("SELECT * FROM url('http://127.0.0.1:9/x.csv', CSV, 'a String')", "url()"),
    ("SELECT * FROM numbers(10)", "numbers()"),
    ("SELECT count() FROM demo.users INTO OUTFILE '/tmp/helios-gate.csv'", "INTO OUTFILE"),
    ("SELECT count() FROM demo.users FORMAT JSON", "FORMAT"),
    ("SELECT count() FROM demo.users SETTINGS max_result_rows = 100000000", "settings"),
    ("SELECT file('/etc/passwd')", "file()"),
    ("SELECT count() FROM users", "demo.users"),
    ("SHOW TABLES", "not SHOW"),
    ("this is not sql", "parse"),
])
def test_refused(ch, ctx, sql, says):
    with pytest.raises(SqlRefused) as info:
        gate.check(ch, sql, ctx.policy())
    assert says.lower() in str(info.value).lower()


def test_a_select_passes_and_runs_in_canonical_form(ch, ctx):
    checked, result = gate.run(ch, "select plan, count() as n from demo.users group by plan -- a comment",
                               ctx.policy())
    assert checked.sql.startswith("SELECT") and "comment" not in checked.sql
    assert checked.tables == ["demo.users"]
    assert sorted(result.frame["plan"]) == ["enterprise", "free", "pro"]


def test_joins_ctes_and_subqueries_over_known_tables_pass(ch, ctx):
    sql = ("WITH big AS (SELECT user_id FROM demo.purchase_events WHERE amount > 400) "
           "SELECT u.plan, count() FROM demo.users AS u WHERE u.user_id IN (SELECT user_id FROM big) GROUP BY u.plan")
    checked = gate.check(ch, sql, ctx.policy())
    assert set(checked.tables) == {"demo.users", "demo.purchase_events"}


def test_the_data_is_untouched_after_refusals(ch, ctx):
    before = ch.internal_query("SELECT count() AS n FROM demo.users")[0]["n"]
    for sql in ("DROP TABLE demo.users", "SELECT 1; DROP TABLE demo.users", "TRUNCATE TABLE demo.users"):
        with pytest.raises(HeliosError):
            gate.run(ch, sql, ctx.policy())
    assert ch.internal_query("SELECT count() AS n FROM demo.users")[0]["n"] == before


def test_query_subject_reads_result_only(ch, query_ctx):
    policy = query_ctx.policy()
    checked, result = gate.run(ch, "SELECT device, sum(n) AS events FROM result GROUP BY device", policy)
    assert checked.sql.startswith("WITH result AS")
    assert checked.tables == ["demo.user_activity"]
    assert result.frame["events"].sum() == ch.internal_query("SELECT count() AS n FROM demo.user_activity")[0]["n"]
    for sql in ("SELECT * FROM demo.users", "SELECT count() FROM result WHERE device IN "
                "(SELECT device FROM demo.user_activity)", "SELECT nosuch FROM result"):
        with pytest.raises(SqlRefused):
            gate.check(ch, sql, policy)
    # a follow-up written with its own WITH merges with the attached saved query
    checked, result = gate.run(ch, "WITH 2 AS k SELECT device, sum(n) * k AS twice FROM result GROUP BY device",
                               policy)
    assert len(result.frame) == 3


def test_saved_query_must_itself_be_a_select(ch):
    with pytest.raises(SqlRefused):
        build_context(ch, Subject("demo", "DROP TABLE demo.users", "bad"))
    with pytest.raises(SqlRefused):
        build_context(ch, Subject("demo", "SELECT * FROM system.tables", "bad"))
