"""``python -m helios_core ask`` (in-process: the test session's engine)."""

from __future__ import annotations

import json

from helios_core.cli import main


def run(capsys, *argv: str) -> tuple[int, dict]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_ask_and_follow_up(ch, demo, capsys):
    code, first = run(capsys, "ask", "How many purchases in EUR?", "--database", "demo")
    assert code == 0
    assert set(first) == {"answer", "sql", "column_names", "rows", "chat_id"}
    n = ch.internal_query("SELECT count() AS n FROM demo.purchase_events WHERE currency = 'EUR'")[0]["n"]
    assert list(first["rows"][0].values()) == [n] and f"{n:,}" in first["answer"]

    code, second = run(capsys, "ask", "what about GBP?", "--chat", first["chat_id"])
    assert code == 0 and second["chat_id"] == first["chat_id"]
    assert "'GBP'" in second["sql"]


def test_unanswerable_exits_non_zero_with_suggestions(ch, demo, capsys):
    code = main(["ask", "What's the weather tomorrow?", "--database", "demo"])
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert code == 3
    assert "could not" in payload["error"] and len(payload["suggestions"]) == 3
    assert captured.err.startswith("error:")


def test_a_forecast_and_a_new_question_in_the_same_chat(ch, demo, capsys):
    code, first = run(capsys, "ask", "How many users signed up per day?", "--database", "demo")
    assert code == 0
    code, forecast = run(capsys, "ask", "What will revenue be next year?", "--chat", first["chat_id"])
    assert code == 3 and forecast["error"].startswith("I can't forecast")
    assert forecast["suggestions"][0] == "Revenue per month" and "sql" not in forecast
    code, fresh = run(capsys, "ask", "Top 5 countries by revenue", "--chat", first["chat_id"])
    assert code == 0 and "purchase_events" in fresh["sql"] and "LIMIT 5 BY" in fresh["sql"]


def test_bad_arguments(ch, demo, capsys):
    assert main(["ask", "anything"]) == 3
    capsys.readouterr()
    assert main(["ask", "anything", "--database", "no_such_db"]) == 4
    capsys.readouterr()
    assert main(["ask", "anything", "--chat", "nope"]) == 4
    capsys.readouterr()
    assert main(["ask", "users by plan", "--database", "demo", "--provider", "openai",
                 "--base-url", "", "--model", "m"]) == 3
