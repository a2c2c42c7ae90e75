"""AppTest for the Chat page: ask, see table + chart + SQL, follow up, switch the chart, reload from history,
open the SQL in the explorer, and "Ask about this result" from the SQL explorer."""

from __future__ import annotations

from helpers import APPTEST_TIMEOUT
from streamlit.testing.v1 import AppTest

from helios_core.chat.store import ChatStore


def codes(at: AppTest) -> list[str]:
    return [c.value for c in at.code]


def test_ask_follow_up_and_reload(ch, demo, app_path, open_page):
    at = open_page("pages/chat.py")
    at.text_input(key="chat_new_name").input("AppTest revenue")
    at.selectbox(key="chat_new_db").set_value("demo")
    at.button(key="chat_create").click().run()
    assert not at.exception, at.exception
    chat_id = at.session_state["chat_active_id"]
    assert ChatStore(ch).get(chat_id).name == "AppTest revenue"

    at.chat_input(key="chat_input").set_value("Revenue by plan").run()
    assert not at.exception, at.exception
    assert len(at.chat_message) == 2
    assert at.chat_message[1].markdown[0].value.startswith("Total amount by plan")
    table = at.dataframe[0].value
    assert sorted(set(table["plan"])) == ["enterprise", "free", "pro"]
    assert set(table["currency"]) == {"USD", "EUR", "GBP"}  # amounts are not added across currencies
    assert len(at.get("plotly_chart")) == 1
    assert any("SQL" in e.label for e in at.expander)
    assert any("sum(pe.amount)" in c for c in codes(at))

    at.chat_input(key="chat_input").set_value("only completed").run()
    assert not at.exception, at.exception
    assert len(at.chat_message) == 4
    assert any("status = 'completed'" in c for c in codes(at))
    assert len(at.dataframe) == 2 and len(at.get("plotly_chart")) == 2

    kinds = [s for s in at.selectbox if s.key and s.key.startswith(f"chat_kind_{chat_id}_")]
    kinds[-1].set_value("line").run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 2

    # A new browser session (AppTest instance) reloads the chat from the helios database.
    again = AppTest.from_file(app_path, default_timeout=APPTEST_TIMEOUT)
    again.session_state["chat_active_id"] = chat_id
    again.run()
    again.switch_page("pages/chat.py").run()
    assert not again.exception, again.exception
    assert len(again.chat_message) == 4
    assert [m.value for m in again.chat_message[0].markdown] == ["Revenue by plan"]
    assert len(again.dataframe) == 2 and len(again.get("plotly_chart")) == 2

    # The SQL opens in the SQL explorer, which runs it.
    open_buttons = [b for b in again.button if b.key and b.key.startswith("chat_open_sql_")]
    open_buttons[0].click().run()
    assert not again.exception, again.exception
    assert "sum(pe.amount)" in again.session_state["sql_editor"]
    assert again.session_state["sql_result"].row_count == 9  # 3 plans × 3 currencies


def test_rename_and_delete_from_the_sidebar(ch, demo, app_path):
    store = ChatStore(ch)
    chat = store.create("To be renamed", "demo")
    at = AppTest.from_file(app_path, default_timeout=APPTEST_TIMEOUT)
    at.session_state["chat_active_id"] = chat.id
    at.run()
    at.switch_page("pages/chat.py").run()
    at.text_input(key="chat_rename_to").input("Renamed in the UI")
    at.button(key="chat_rename").click().run()
    assert not at.exception, at.exception
    assert store.get(chat.id).name == "Renamed in the UI"
    at.checkbox(key="chat_delete_confirm").check().run()
    at.button(key="chat_delete").click().run()
    assert not at.exception, at.exception
    assert chat.id not in {c.id for c in store.list()}


def test_unanswerable_question_shows_suggestions(ch, demo, app_path):
    chat = ChatStore(ch).create("Weather", "demo")
    at = AppTest.from_file(app_path, default_timeout=APPTEST_TIMEOUT)
    at.session_state["chat_active_id"] = chat.id
    at.run()
    at.switch_page("pages/chat.py").run()
    at.chat_input(key="chat_input").set_value("What's the weather tomorrow?").run()
    assert not at.exception, at.exception
    text = at.chat_message[1].markdown[0].value
    assert "could not" in text and "Questions I can answer here" in text
    assert len(at.dataframe) == 0


def test_provider_settings_say_what_is_sent_and_keep_the_key_in_the_session(ch, demo, open_page):
    at = open_page("pages/chat.py")
    at.radio(key="chat_provider").set_value("openai").run()
    assert not at.exception, at.exception
    at.text_input(key="chat_openai_key").input("sk-page-secret-000000000000")
    at.run()
    captions = " ".join(c.value for c in at.caption)
    assert "never any result rows" in captions
    at.checkbox(key="chat_allow_rows").check().run()
    assert "because you allowed it" in " ".join(c.value for c in at.caption)
    rows = ch.internal_query("SELECT count() AS n FROM helios.chat_messages WHERE content LIKE '%sk-page-secret%'")
    assert rows[0]["n"] == 0


def test_ask_about_this_result_from_the_sql_explorer(ch, demo, app_path):
    at = AppTest.from_file(app_path, default_timeout=APPTEST_TIMEOUT).run()
    at.switch_page("pages/sql_explorer.py").run()
    at.session_state["sql_editor"] = "SELECT device, count() AS events FROM demo.user_activity GROUP BY device"
    at.button(key="sql_run").click().run()
    assert not at.exception, at.exception
    at.button(key="sql_ask_chat").click().run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Chat"]  # switched to the Chat page
    at.switch_page("pages/chat.py")  # AppTest's own notion of the current page follows explicitly
    chat = ChatStore(ch).get(at.session_state["chat_active_id"])
    assert chat.subject_sql and "demo.user_activity" in chat.subject_sql
    at.chat_input(key="chat_input").set_value("total events").run()
    assert not at.exception, at.exception
    total = ch.internal_query("SELECT count() AS n FROM demo.user_activity")[0]["n"]
    assert f"{total:,}" in at.chat_message[1].markdown[0].value
    assert any(c.startswith("WITH result AS") for c in codes(at))


def test_new_chat_about_a_query_from_the_sidebar(ch, demo, open_page):
    at = open_page("pages/chat.py")
    at.radio(key="chat_new_kind").set_value("query").run()
    at.text_area(key="chat_new_sql").input("SELECT plan, count() AS users FROM demo.users GROUP BY plan")
    at.text_input(key="chat_new_name").input("Plans")
    at.run()
    at.button(key="chat_create").click().run()
    assert not at.exception, at.exception
    chat = ChatStore(ch).get(at.session_state["chat_active_id"])
    assert chat.name == "Plans" and "demo.users" in chat.subject_sql
    at.chat_input(key="chat_input").set_value("users by plan").run()
    assert not at.exception, at.exception
    assert sorted(at.dataframe[0].value["plan"]) == ["enterprise", "free", "pro"]
    # a statement that is not a SELECT is refused with a message, not a traceback
    at.radio(key="chat_new_kind").set_value("query").run()
    at.text_area(key="chat_new_sql").input("DROP TABLE demo.users")
    at.run()
    at.button(key="chat_create").click().run()
    assert not at.exception and any("SELECT" in e.value for e in at.error)
