"""Chats over a live PostgreSQL database (a real server started by the test; tests/pg_fixture.py).

The password must never reach the disk: not the ``helios`` tables, the chat history, the engine's
data directory (its metadata files included), logs or error messages.
"""

from __future__ import annotations

import json
import os
import secrets
from decimal import Decimal
from pathlib import Path

import pytest
from pg_fixture import pg_server  # noqa: F401  (a pytest fixture)

from helios_core.chat import live
from helios_core.chat.assistant import Assistant
from helios_core.chat.providers import Generation
from helios_core.chat.store import ChatStore
from helios_core.errors import HeliosError, ValidationError

# Quotes and a backslash: the password must survive SQL string quoting and still never be written.
PASSWORD = f"Pw-{secrets.token_hex(6)}'q\\z"
USER = "helios_reader"

SCHEMA = """
CREATE TABLE customers (id integer PRIMARY KEY, name text NOT NULL, country text NOT NULL);
CREATE TABLE orders (order_id integer PRIMARY KEY, customer_id integer REFERENCES customers(id),
                     amount numeric(10,2) NOT NULL, status text NOT NULL, created_at timestamp NOT NULL);
INSERT INTO customers VALUES (1, 'Ada', 'FR'), (2, 'Bob', 'DE'), (3, 'Cleo', 'FR'), (4, 'Dan', 'US');
INSERT INTO orders SELECT i, 1 + i % 4, (i * 2.5)::numeric(10,2), (ARRAY['paid','open','refunded'])[1 + i % 3],
  timestamp '2026-01-01' + i * interval '1 day' FROM generate_series(1, 30) AS i;
CREATE TABLE "Line Items" ("Order" integer, "sku`x" text);
INSERT INTO "Line Items" VALUES (1, 'a'), (1, 'b'), (2, 'a');
"""


class FixedSql:
    """A stand-in for an LLM that writes the given SQL (the gate and the database are real)."""

    name = "fixed"
    can_repair = False

    def __init__(self, sql: str) -> None:
        self.sql = sql

    def generate(self, request):
        return Generation(self.sql.replace("DB.", request.context.subject.database + "."), description="fixed")

    def describe(self) -> str:
        return "fixed SQL"


@pytest.fixture(scope="module")
def shop(pg_server):  # noqa: F811  (the fixture imported above)
    psql = pg_server["psql"]
    psql("CREATE DATABASE shop")
    literal = PASSWORD.replace("'", "''")
    psql(f"CREATE ROLE {USER} LOGIN PASSWORD '{literal}'")
    schema = pg_server["dir"] / "schema.sql"
    schema.write_text(SCHEMA, encoding="utf-8")
    psql("", db="shop", file=schema)
    psql(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {USER}", db="shop")
    return pg_server


def connection(shop, password: str = PASSWORD, port: int | None = None) -> live.LiveConnection:
    return live.make_connection("postgresql", "127.0.0.1", port or shop["port"], USER, "shop", password)


@pytest.fixture(scope="module")
def chat(ch, shop):
    return live.create_chat(ch, ChatStore(ch), connection(shop), "Shop (live)")


def ask(ch, chat, sql_or_question: str, provider=None):
    return Assistant(ch, ChatStore(ch), provider).ask(sql_or_question, chat)


def test_chat_reads_the_live_database_and_matches_psql(ch, shop, chat):
    psql = shop["psql"]
    assert chat.database == live.standin_database(chat.id) and live.is_connected(chat.id)
    countries = ask(ch, chat, "customers by country")
    assert countries.ok, countries.text
    expected = dict(line.split("|") for line in psql("SELECT country, count(*) FROM customers GROUP BY country",
                                                     db="shop").split())
    counted = countries.column_names[-1]
    assert {r["country"]: str(r[counted]) for r in countries.rows()} == expected
    answer = ask(ch, chat, "how many orders")
    assert answer.ok, answer.text
    assert answer.rows()[0][answer.column_names[0]] == int(psql("SELECT count(*) FROM orders", db="shop"))
    by_status = ask(ch, chat, "question", FixedSql(
        "SELECT status, sum(amount) AS total, count() AS n FROM DB.orders GROUP BY status ORDER BY status"))
    assert by_status.ok, by_status.text
    expected = [line.split("|") for line in psql("SELECT status, sum(amount), count(*) FROM orders GROUP BY status "
                                                 "ORDER BY status", db="shop").split()]
    assert [[r["status"], Decimal(str(r["total"])), r["n"]] for r in by_status.rows()] == \
        [[s, Decimal(t), int(n)] for s, t, n in expected]
    joined = ask(ch, chat, "question", FixedSql(
        "SELECT c.country, count() AS n FROM DB.orders AS o INNER JOIN DB.customers AS c ON o.customer_id = c.id "
        "WHERE c.country = 'FR' GROUP BY c.country"))
    assert joined.ok, joined.text
    assert joined.rows() == [{"country": "FR", "n": int(psql(
        "SELECT count(*) FROM orders o JOIN customers c ON o.customer_id = c.id WHERE c.country = 'FR'",
        db="shop"))}]
    odd = ask(ch, chat, "question", FixedSql("SELECT `sku\\`x` AS sku, count() AS n FROM DB.`Line Items` "
                                             "WHERE `Order` = 1 GROUP BY sku ORDER BY sku"))
    assert odd.ok, odd.text
    assert odd.rows() == [{"sku": "a", "n": 1}, {"sku": "b", "n": 1}]
    # The SQL kept and shown is the stand-in's, never the one with the password in it.
    assert PASSWORD not in answer.sql and "postgresql(" not in by_status.sql


def test_context_has_remote_columns_and_sampled_values(ch, chat):
    from helios_core.chat.context import Subject, build_context
    ctx = build_context(ch, Subject(chat.database), max_age_s=0)
    assert {t.name for t in ctx.tables} == {"customers", "orders", "Line Items"}
    country = ctx.column("customers", "country")
    assert country is not None and country.values == ["DE", "FR", "US"]
    assert ctx.column("orders", "amount").type == "Decimal(10, 2)"
    # Row counts: PostgreSQL's own statistics, no table scanned.
    assert {t.name: t.rows for t in ctx.tables} == {"customers": 4, "orders": 30, "Line Items": 3}


def test_writes_never_reach_postgresql(ch, shop, chat):
    psql = shop["psql"]
    before = psql("SELECT count(*) FROM customers", db="shop")
    refused = ask(ch, chat, "question", FixedSql("INSERT INTO DB.customers VALUES (9, 'Eve', 'XX')"))
    assert not refused.ok and "SELECT" in refused.text
    # Someone writing into the stand-in from the SQL explorer writes into a Null table: nothing leaves Helios.
    ch.query(f"INSERT INTO {chat.database}.customers VALUES (10, 'Mallory', 'XX')", write=True)
    assert psql("SELECT count(*) FROM customers", db="shop") == before
    assert ch.query(f"SELECT count() AS n FROM {chat.database}.customers").records() == [{"n": 0}]
    statements = [line for line in Path(shop["log"]).read_text(errors="replace").splitlines()
                  if "statement:" in line and f"user={USER}:" in line]
    assert statements  # what Helios sent as the reader: reads only
    first_words = {line.split("statement:", 1)[1].split()[0].upper() for line in statements}
    assert first_words <= {"COPY", "SELECT", "BEGIN", "COMMIT", "ROLLBACK", "SET", "SHOW"}, first_words
    assert all(line.split("statement:", 1)[1].split()[1].startswith("(SELECT") for line in statements
               if line.split("statement:", 1)[1].split()[0].upper() == "COPY")  # COPY (SELECT …) TO STDOUT


def test_wrong_password_and_unreachable_host_get_clear_messages(ch, shop):
    with pytest.raises(ValidationError) as wrong:
        live.create_chat(ch, ChatStore(ch), connection(shop, password="not-" + PASSWORD))
    assert "refused the user name or password" in wrong.value.message and "not-" not in str(wrong.value)
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with pytest.raises(ValidationError) as unreachable:
        live.create_chat(ch, ChatStore(ch), connection(shop, port=closed))
    assert "could not reach" in unreachable.value.message and PASSWORD not in str(unreachable.value)
    with pytest.raises(ValidationError):
        live.make_connection("oracle", "db.example", "x", "", "", "")


def test_after_a_restart_the_chat_asks_for_the_password_again(ch, shop):
    store = ChatStore(ch)
    chat = live.create_chat(ch, store, connection(shop), "restart")
    live._connections.pop(chat.id)           # what a restart forgets …
    ch.execute(f"DROP DATABASE {chat.database} SYNC")  # … with the in-memory stand-ins
    with pytest.raises(live.PasswordNeeded) as needed:
        ask(ch, store.get(chat.id), "customers by country")
    assert "password" in needed.value.message and "shop" in needed.value.message
    live.reconnect(ch, chat.id, PASSWORD)
    assert ask(ch, store.get(chat.id), "customers by country").ok


def test_named_connection_from_secrets_toml(ch, shop, tmp_path, monkeypatch):
    secrets_file = tmp_path / "secrets.toml"
    toml_password = PASSWORD.replace("\\", "\\\\").replace('"', '\\"')
    secrets_file.write_text(f'[connections.shop]\ndialect = "postgresql"\nhost = "127.0.0.1"\nport = {shop["port"]}\n'
                            f'username = "{USER}"\npassword = "{toml_password}"\ndatabase = "shop"\n')
    monkeypatch.setenv("HELIOS_SECRETS_TOML", str(secrets_file))
    assert "shop" in live.named_connections()
    store = ChatStore(ch)
    chat = live.create_chat(ch, store, live.named_connection("shop"))
    live._connections.pop(chat.id)
    # The password is read from secrets.toml again, with no prompt.
    assert ask(ch, store.get(chat.id), "customers by country").ok
    assert live.record(ch, chat.id).connection_name == "shop"


def test_another_chat_cannot_borrow_a_live_chats_connection(ch, chat):
    with pytest.raises(ValidationError):
        ChatStore(ch).create("borrow", chat.database)


def test_deleting_a_live_chat_forgets_it(ch, shop):
    store = ChatStore(ch)
    chat = live.create_chat(ch, store, connection(shop), "to delete")
    store.delete(chat.id)
    assert not live.is_connected(chat.id) and live.record(ch, chat.id) is None
    assert not ch.internal_query("SELECT name FROM system.databases WHERE name = {d:String}", {"d": chat.database})


def test_rewrite_skips_strings_and_refuses_three_part_names(shop):
    conn = connection(shop)
    db = "helios_live_abc"
    sql = f"SELECT '{db}.customers' AS s, c.id FROM {db}.customers AS c, {db}.`orders`"
    out = live.rewrite(sql, db, conn, {"customers", "orders"})
    assert out.startswith(f"SELECT '{db}.customers' AS s, c.id FROM postgresql(")
    assert out.count("postgresql(") == 2 and out.endswith("'public') AS `orders`")
    assert "AS `customers`" not in out  # its own alias c stays the only one
    with pytest.raises(HeliosError):
        live.rewrite(f"SELECT {db}.customers.id FROM {db}.customers", db, conn, {"customers"})


def test_http_api_live_chat_keeps_the_password_in_memory(shop, moto_server):
    from api_server import api_server
    payload = {"chat_name": "Shop over HTTP", "host_name": "127.0.0.1", "port": str(shop["port"]), "user": USER,
               "password": PASSWORD, "database": "shop", "dbms": "postgresql", "environment": "local"}
    with api_server(moto_server) as server, server.client("write") as api:
        created = api.post("/api/chats", json=payload)
        assert created.status_code == 200, created.text
        body = created.json()
        assert body["live"] and body["password"] == "********" and body["host_name"] == "127.0.0.1"
        chat_id = body["chat_id"]
        answer = api.post(f"/api/chats/{chat_id}", json={"role": "user", "content": "how many orders",
                                                         "content_type": "text"})
        assert answer.status_code == 200, answer.text
        assert list(answer.json()["rows"][0].values()) == [int(shop["psql"]("SELECT count(*) FROM orders",
                                                                            db="shop"))]
        creds = api.get(f"/api/chats/{chat_id}/credentials").json()
        assert creds["password"] == "********" and creds["user"] == USER and creds["connected"]
        wrong = api.post("/api/chats", json={**payload, "password": "wrong-" + PASSWORD})
        assert wrong.status_code in (400, 422) and "refused the user name or password" in wrong.json()["error"]
        texts = [created.text, answer.text, api.get("/api/chats").text, api.get(f"/api/chats/{chat_id}").text,
                 wrong.text]
        assert not any(PASSWORD in t for t in texts)
        needles = [PASSWORD.encode(), PASSWORD.replace("'", "\\'").replace("\\z", "\\\\z").encode()]
        for path in server.data_dir.rglob("*"):  # the engine's files and the server's log
            if path.is_file():
                assert not any(n in path.read_bytes() for n in needles), path


def test_chat_page_connects_asks_and_shows_clear_errors(ch, shop, open_page):
    at = open_page("pages/chat.py")
    at.selectbox(key="live_dbms").set_value("postgresql")
    at.text_input(key="live_host").set_value("127.0.0.1")
    at.text_input(key="live_port").set_value(str(shop["port"]))
    at.text_input(key="live_database").set_value("shop")
    at.text_input(key="live_user").set_value(USER)
    at.text_input(key="live_password").set_value("wrong-" + PASSWORD)
    at.button(key="live_connect").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("refused the user name or password" in e for e in errors) and not any("wrong-" in e for e in errors)
    at.text_input(key="live_password").set_value(PASSWORD).run()
    at.button(key="live_connect").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    chat_id = at.session_state["chat_active_id"]
    assert live.record(ch, chat_id).database == "shop"
    assert any("Live PostgreSQL database shop" in c.value for c in at.caption)
    at.chat_input(key="chat_input").set_value("how many orders").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Number of orders: 30" in m.value for m in at.markdown)
    # After a restart (the password forgotten) the page asks for it, and takes it.
    live._connections.pop(chat_id)
    at.run()
    assert any("needs it again" in w.value for w in at.warning)
    at.text_input(key=f"live_reconnect_pw_{chat_id}").set_value(PASSWORD)
    at.button(key=f"live_reconnect_{chat_id}").click().run()
    assert not at.exception and live.is_connected(chat_id)


def test_password_is_nowhere_on_disk_or_in_helios_tables(ch, shop, chat):
    # Runs last in this module: after the page and API chats too.
    ask(ch, chat, "how many orders")
    # Every String column of every helios table.
    columns = ch.internal_query("SELECT table, name FROM system.columns WHERE database = 'helios' "
                                "AND type LIKE '%String%'")
    assert columns
    for c in columns:
        hits = ch.internal_query(f"SELECT count() AS n FROM helios.`{c['table']}` "
                                 f"WHERE position(toString(`{c['name']}`), {{p:String}}) > 0", {"p": PASSWORD})
        assert hits[0]["n"] == 0, c
    history = json.dumps([m.to_json() for m in ChatStore(ch).messages(chat.id)], default=str)
    assert PASSWORD not in history and "postgresql(" not in history
    # Every file under the data dir (the engine's metadata .sql files, parts, logs).
    data_dir = Path(os.environ["HELIOS_DATA_DIR"])
    needles = [PASSWORD.encode(), PASSWORD.replace("'", "\\'").replace("\\z", "\\\\z").encode()]
    for path in data_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert not any(n in content for n in needles), path
    # What SQL users can see of the stand-ins: no password.
    shown = ch.query(f"SELECT create_table_query FROM system.tables WHERE database = '{chat.database}'").records()
    assert shown and not any(PASSWORD in r["create_table_query"] for r in shown)
