"""The built-in assistant on the question set (results compared as row sets with hand-written SQL),
on a schema it has never seen, over a saved query, and when it cannot understand."""

from __future__ import annotations

import pandas as pd
import pytest

from helios_core.chat import builtin
from helios_core.chat.assistant import Assistant
from helios_core.chat.context import PreviousTurn, Subject, build_context, invalidate
from helios_core.chat.eval_set import CASES, UNANSWERABLE, run_case, same_rows


def test_the_question_set_is_big_and_varied():
    assert len(CASES) >= 40
    kinds = {c.kind for c in CASES}
    assert {"aggregate", "group", "filter", "time", "join", "rate", "follow-up"} <= kinds
    assert sum(len(c.questions) > 1 for c in CASES) >= 8


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_question(ch, demo, case):
    result = run_case(ch, case)
    assert result.ok, f"{case.label}: {result.reason}\n{result.sql}"


def test_same_rows_ignores_order_and_names_but_not_values():
    a = pd.DataFrame({"x": ["a", "b"], "n": [1, 2]})
    assert same_rows(a, pd.DataFrame({"n": [2, 1], "y": ["b", "a"]}))
    assert not same_rows(a, pd.DataFrame({"x": ["a", "b"], "n": [1, 3]}))
    assert not same_rows(a, pd.DataFrame({"x": ["a"], "n": [1]}))
    assert same_rows(pd.DataFrame({"v": [0.1 + 0.2]}), pd.DataFrame({"v": [0.3]}))


@pytest.mark.parametrize("question", UNANSWERABLE)
def test_unanswerable_questions_say_so_with_three_answerable_suggestions(ch, demo, question):
    ctx = build_context(ch, Subject("demo"))
    result = builtin.answer(question, ctx)
    assert not result.ok and result.message
    assert len(result.suggestions) == 3
    for suggestion in result.suggestions:
        assert builtin.answer(suggestion, ctx).ok, suggestion


def test_answers_are_deterministic(ch, demo):
    ctx = build_context(ch, Subject("demo"))
    first = builtin.answer("Revenue by plan in the last 7 days", ctx)
    again = builtin.answer("Revenue by plan in the last 7 days", ctx)
    assert first.ok and first.sql == again.sql and first.plan.to_json() == again.plan.to_json()


def test_a_schema_it_has_never_seen(ch):
    """Driven by the schema and sampled values, not by the demo's names."""
    ch.execute("CREATE DATABASE IF NOT EXISTS shop")
    ch.execute("DROP TABLE IF EXISTS shop.orders")
    ch.execute("""CREATE TABLE shop.orders (ordered_at DateTime, region LowCardinality(String),
                  channel Enum8('web' = 1, 'store' = 2, 'phone' = 3), total Float64, quantity UInt16)
                  ENGINE = MergeTree ORDER BY ordered_at""")
    ch.execute("""INSERT INTO shop.orders SELECT now() - toIntervalMinute(number * 37),
                  ['north','south','east'][1 + number % 3],
                  ['web','store','phone'][1 + number % 3 = 1 ? 1 : 1 + number % 2 + 1], (number % 97) * 1.5,
                  1 + number % 5
                  FROM numbers(3000)""")
    invalidate("shop")
    ctx = build_context(ch, Subject("shop"))
    assistant = Assistant(ch)
    cases = {
        "Total sales by region": "SELECT region, sum(total) FROM shop.orders GROUP BY region",
        "How many orders in the south via phone?":
            "SELECT count() FROM shop.orders WHERE region = 'south' AND channel = 'phone'",
        "Average quantity per channel": "SELECT channel, avg(quantity) FROM shop.orders GROUP BY channel",
        "Orders per day in the last 3 days":
            "SELECT toDate(ordered_at) AS d, count() FROM shop.orders WHERE ordered_at >= now() - INTERVAL 3 DAY "
            "GROUP BY d",
        "Top 2 regions by revenue":
            "SELECT region, sum(total) AS r FROM shop.orders GROUP BY region ORDER BY r DESC LIMIT 2",
    }
    for question, expected in cases.items():
        answer = assistant.ask(question, subject=ctx.subject)
        assert answer.ok, f"{question}: {answer.text}"
        assert same_rows(answer.frame, ch.query(expected).frame), f"{question}\n{answer.sql}"
    ch.execute("DROP DATABASE shop")
    invalidate("shop")


def test_chat_over_a_saved_query(ch, demo):
    sql = "SELECT event_type, device, count() AS events FROM demo.user_activity GROUP BY event_type, device"
    subject = Subject("demo", sql, "events by type and device")
    assistant = Assistant(ch)
    answer = assistant.ask("events by device", subject=subject)
    assert answer.ok, answer.text
    assert answer.sql.startswith("WITH result AS")
    expected = ch.query("SELECT device, count() FROM demo.user_activity GROUP BY device").frame
    assert same_rows(answer.frame, expected)
    follow = assistant.ask("only mobile", subject=subject,
                           previous=PreviousTurn("events by device", answer.sql, answer.column_names,
                                                 answer.column_types, answer.plan))
    assert follow.ok and len(follow.frame) == 1 and follow.frame.iloc[0]["device"] == "mobile"
    rows = assistant.ask("How many rows of result?", subject=subject)
    assert rows.ok and int(rows.frame.iloc[0, 0]) == 18  # 6 event types × 3 devices


def test_answer_text_uses_numbers_from_the_result(ch, demo):
    answer = Assistant(ch).ask("How many purchases in EUR?", subject=Subject("demo"))
    n = int(ch.internal_query("SELECT count() AS n FROM demo.purchase_events WHERE currency = 'EUR'")[0]["n"])
    assert f"{n:,}" in answer.text
    grouped = Assistant(ch).ask("Average age by plan", subject=Subject("demo"))
    top = grouped.frame.sort_values(grouped.column_names[1], ascending=False).iloc[0]
    assert str(top["plan"]) in grouped.text and f"{top[grouped.column_names[1]]:,.2f}" in grouped.text
    assert grouped.chart is not None and grouped.chart.kind == "bar" and grouped.figure
    series = Assistant(ch).ask("Purchases per day", subject=Subject("demo"))
    assert series.chart is not None and series.chart.kind == "line"


def test_follow_up_without_a_previous_turn_is_not_guessed(ch, demo):
    ctx = build_context(ch, Subject("demo"))
    assert not builtin.answer("now by day", ctx).ok


# ---- issue 17: confident answers to questions it cannot answer, follow-ups, currencies, wording


def _chain(ch, *questions):
    assistant, previous, answer = Assistant(ch), None, None
    for q in questions:
        answer = assistant.ask(q, subject=Subject("demo"), previous=previous)
        if answer.ok:
            previous = PreviousTurn(q, answer.sql, answer.column_names, answer.column_types, answer.plan)
    return answer


def test_a_forecast_is_refused_plainly_with_what_it_can_show(ch, demo):
    answer = _chain(ch, "what will revenue be next year?")
    assert not answer.ok and not answer.sql
    assert answer.text.startswith("I can't forecast; ")
    assert answer.suggestions[0] == "Revenue per month"  # the history of what was asked about
    assert "Revenue per month" in answer.text


def test_an_unknown_noun_is_not_answered_with_a_count(ch, demo):
    answer = _chain(ch, "How many purchases were made?", "how many employees does the company have")
    assert not answer.ok and not answer.sql
    assert answer.text.startswith("I could not answer that.") and "'employees'" in answer.text
    assert len(answer.suggestions) == 3 and "Questions I can answer here:" in answer.text


def test_a_vague_question_does_not_repeat_the_previous_answer(ch, demo):
    answer = _chain(ch, "Total revenue", "anything interesting?")
    assert not answer.ok and answer.text.startswith("I could not answer that.") and answer.suggestions


def test_a_question_of_its_own_is_not_bound_to_the_previous_table(ch, demo):
    fresh = _chain(ch, "top 5 countries by revenue")
    after = _chain(ch, "how many users signed up per day", "top 5 countries by revenue")
    assert after.ok, after.text
    assert after.sql == fresh.sql and "purchase_events" in after.sql


@pytest.mark.parametrize("chain, expected", [
    (("Revenue by country", "top 5 instead"), "LIMIT 5 BY"),
    (("How many purchases in EUR?", "and for GBP?"), "currency = 'GBP'"),
    (("Events by device", "how many of them are on mobile?"), "device = 'mobile'"),
    (("Purchases by status", "top 2"), "LIMIT 2"),
    (("Logins by device", "now by day"), "toDate(event_time)"),
])
def test_what_reads_like_a_follow_up_modifies_the_previous_answer(ch, demo, chain, expected):
    answer = _chain(ch, *chain)
    first = _chain(ch, chain[0])
    assert answer.ok, answer.text
    assert expected in answer.sql
    assert answer.sql.split("FROM")[1].split()[0] == first.sql.split("FROM")[1].split()[0]  # the same table


def test_amounts_in_several_currencies_are_split_by_currency_and_named(ch, demo):
    total = _chain(ch, "Total revenue")
    assert total.ok and "GROUP BY currency" in total.sql
    assert all(code in total.text for code in ("USD", "EUR", "GBP")) and "Total:" not in total.text
    usd = total.frame.set_index("currency").loc["USD"].iloc[0]
    assert f"{usd:,.2f} USD" in total.text
    eur = _chain(ch, "Total revenue in EUR")
    assert eur.ok and "GROUP BY" not in eur.sql and "in EUR" in eur.text
    top = _chain(ch, "Top 3 countries by revenue")
    assert "LIMIT 3 BY" in top.sql and len(top.frame) == 9
    counts = _chain(ch, "Purchases by payment method")  # counts are not amounts: not split
    assert "currency" not in counts.sql


def test_currency_column_is_recognised_by_name_or_by_its_codes(ch, demo):
    from helios_core.chat.context import ColumnInfo, SubjectTable
    by_name = SubjectTable("t", "t", [ColumnInfo("price", "Float64", "number"),
                                   ColumnInfo("currency_code", "String", "category", ["AAA"])])
    by_codes = SubjectTable("t", "t", [ColumnInfo("price", "Float64", "number"),
                                    ColumnInfo("ccy_x", "String", "category", ["CHF", "EUR"])])
    countries = SubjectTable("t", "t", [ColumnInfo("price", "Float64", "number"),
                                     ColumnInfo("country", "String", "category", ["USA", "DEU"])])
    assert builtin.currency_column(by_name) == "currency_code"
    assert builtin.currency_column(by_codes) == "ccy_x"
    assert builtin.currency_column(countries) is None


def test_answer_sentences_read_as_english(ch, demo):
    signups = _chain(ch, "how many users signed up per day")
    assert signups.text.startswith("Number of users by day — "), signups.text
    broken = ("Number of signed", " 1 rows", "rows of 10 rows", "where in ", ", top 1:", ", top 1 —",
              "has the highest users", "_id", "duration_ms")
    for case in CASES:
        if not case.expected_sql:
            continue
        answer = _chain(ch, *case.questions)
        assert not any(b in answer.text for b in broken), f"{case.label}: {answer.text}"


def test_filler_words_do_not_block_a_question_but_unknown_verbs_do(ch, demo):
    compare = _chain(ch, "Compare revenue across plans")
    assert compare.ok and "plan" in compare.sql
    bought = _chain(ch, "How many people bought something?")  # was "Number of people: 2,000"
    assert not bought.ok and "'bought'" in bought.text
    month = _chain(ch, "How many users signed up last month?")
    assert month.ok and month.text.startswith("Number of users in the last month: ")


def test_a_named_table_the_answer_would_leave_out_is_not_dropped(ch, demo):
    answer = _chain(ch, "average age of purchases")  # was "Average age: 43.07" over all users
    assert not answer.ok and "'purchases'" in answer.text and answer.suggestions


def test_summary_names_currencies_and_never_adds_them_up():
    from helios_core.chat.summary import summarize
    frame = pd.DataFrame({"currency": ["USD", "EUR"], "revenue": [1234.5, 99.0]})
    text = summarize(frame, ["currency", "revenue"], ["LowCardinality(String)", "Float64"], "total amount by currency")
    assert text == "Total amount by currency: 1,234.50 USD, 99 EUR."
    counts = pd.DataFrame({"currency": ["USD", "EUR"], "purchases": [3, 2]})
    text = summarize(counts, ["currency", "purchases"], ["String", "UInt64"], "number of purchases by currency")
    assert text == "Number of purchases by currency: USD 3, EUR 2."


def test_summary_reads_ids_plainly_and_counts_rows_in_english():
    from helios_core.chat.summary import summarize
    frame = pd.DataFrame({"user_id": [1836, 7], "orders": [5, 1]})
    text = summarize(frame, ["user_id", "orders"], ["UInt32", "UInt64"], "number of orders by user")
    assert "1836 has the most (5), 7 the fewest (1)" in text and "1,836" not in text
    one = pd.DataFrame({"a": ["x"], "b": ["y"], "c": ["z"]})
    assert summarize(one, ["a", "b", "c"], ["String"] * 3) == "1 row."


def test_a_table_named_customers_is_not_read_as_users(ch):
    """"customers" is an alias of "users" only when the schema has no customers of its own."""
    from helios_core.chat.assistant import Assistant
    from helios_core.chat.store import ChatStore

    ch.execute("CREATE DATABASE IF NOT EXISTS alias_shop")
    ch.execute("CREATE TABLE IF NOT EXISTS alias_shop.customers (id Int32, country String) "
               "ENGINE = MergeTree ORDER BY id")
    ch.execute("TRUNCATE TABLE alias_shop.customers")
    ch.execute("INSERT INTO alias_shop.customers VALUES (1, 'FR'), (2, 'DE'), (3, 'FR')")
    store = ChatStore(ch)
    chat = store.create("aliases", "alias_shop")
    answer = Assistant(ch, store, None).ask("customers by country", chat)
    assert answer.ok, answer.text
    assert {r["country"] for r in answer.rows()} == {"FR", "DE"}
