"""Chat: ask questions about a database (or a saved query's result); answers come with a table, a chart and SQL."""

from __future__ import annotations

import json

import plotly.io as pio
import streamlit as st

from helios_core.charts import CHART_KINDS, ChartSpec, build_chart
from helios_core.chat import live
from helios_core.chat.assistant import Assistant, frame_from_table, new_chat_name, start_query_chat, turns
from helios_core.chat.providers import DEFAULT_BEDROCK_MODEL, make_provider, what_is_sent
from helios_core.chat.store import Chat, ChatStore, Message
from helios_core.clickhouse import list_user_databases
from helios_core.wording import plural
from pages._shared import ACTIVE_CHAT_KEY, acting_user, aws_connection, open_in_sql_explorer, runtime, user_errors

ch = runtime().clickhouse
store = ChatStore(ch, acting_user())  # lists, opens and changes only what this user may
state = st.session_state
PROVIDER_LABELS = {"builtin": "Built-in (offline)", "bedrock": "Amazon Bedrock", "openai": "OpenAI-compatible"}


def user_databases() -> list[str]:
    """Databases with tables, Helios's own metadata excepted (demo first)."""
    names = [d for d, tables in list_user_databases(ch).items() if tables]
    return sorted(names, key=lambda d: (d != "demo", d))


# ---- sidebar: the chats ----------------------------------------------------------------------------


def sidebar_chats() -> tuple[dict[str, Chat], list[str]]:
    """This user's chats to pick from, and a form for a new one; returns the chats by id and the databases."""
    with user_errors():
        chats = store.list()
    ids = [c.id for c in chats]
    by_id = {c.id: c for c in chats}
    if state.get(ACTIVE_CHAT_KEY) not in by_id:
        state[ACTIVE_CHAT_KEY] = ids[0] if ids else None
    if ids:
        state["chat_pick"] = state[ACTIVE_CHAT_KEY]
    with st.sidebar:
        st.subheader("Chats")
        databases = new_chat_form(expanded=not ids)
        if ids:
            picked = st.radio("Your chats", ids, key="chat_pick", format_func=lambda i: by_id[i].name,
                              label_visibility="collapsed")
            state[ACTIVE_CHAT_KEY] = picked
            rename_share_delete(by_id[picked])
    return by_id, databases


def new_chat_form(expanded: bool) -> list[str]:
    """'New chat': about a database or about a query's result. Returns the databases it offers."""
    with st.expander("New chat", expanded=expanded, icon=":material/add_comment:"):
        with user_errors():
            databases = user_databases()
        st.text_input("Name", key="chat_new_name", placeholder="e.g. Revenue questions")
        about = st.radio("About", ["database", "query"], key="chat_new_kind", horizontal=True,
                         format_func={"database": "A database", "query": "A query's result"}.get)
        if about == "database":
            st.selectbox("Database", databases, key="chat_new_db")
        else:
            st.text_area("SQL of the query", key="chat_new_sql", height=100,
                         placeholder="SELECT … — questions then run over its result")
        ready = bool(databases) if about == "database" else bool(state.get("chat_new_sql", "").strip())
        if st.button("Create chat", key="chat_create", icon=":material/add:", disabled=not ready):
            with user_errors(stop=False):
                if about == "database":
                    chat = store.create(state.get("chat_new_name") or f"Chat about {state['chat_new_db']}",
                                        state["chat_new_db"])
                else:
                    chat = start_query_chat(ch, store, state["chat_new_sql"], state.get("chat_new_name", ""))
                state[ACTIVE_CHAT_KEY] = chat.id
                st.rerun()
    return databases


def rename_share_delete(picked: Chat) -> None:
    with st.expander("Rename or delete", icon=":material/edit:"):
        st.text_input("New name", key="chat_rename_to", placeholder=picked.name)
        if st.button("Rename", key="chat_rename", icon=":material/drive_file_rename_outline:"):
            with user_errors(stop=False):
                store.rename(picked.id, state.get("chat_rename_to", ""))
                st.rerun()
        if store.can_change(picked):
            st.text_input("Share read-only with", value=", ".join(picked.shared_with),
                          key=f"chat_share_with_{picked.id}", placeholder="e-mail addresses, or * for everyone")
            if st.button("Update sharing", key="chat_share", icon=":material/share:"):
                with user_errors():
                    store.share(picked.id, state.get(f"chat_share_with_{picked.id}", ""))
                    st.rerun()
        sure = st.checkbox("Yes, delete this chat and its messages", key="chat_delete_confirm")
        if st.button("Delete chat", key="chat_delete", icon=":material/delete:", disabled=not sure):
            with user_errors(stop=False):
                store.delete(picked.id)
                state[ACTIVE_CHAT_KEY] = None
                state.pop("chat_delete_confirm", None)
                st.rerun()


# ---- live databases: a chat over PostgreSQL or MySQL (the password stays in memory) -----------------


def live_database_form() -> None:
    """'Connect a live database': the details typed here (or a named connection of secrets.toml) make a chat."""
    named = list(live.named_connections())
    with st.expander("Connect a live database", icon=":material/cable:"):
        source = "typed"
        if named:
            source = st.radio("Connection", ["typed", "named"], key="live_source", horizontal=True,
                              format_func={"typed": "Type the details", "named": "From secrets.toml"}.get)
        if source == "named":
            st.selectbox("Named connection", named, key="live_named",
                         help="A [connections.NAME] section of .streamlit/secrets.toml (dialect, host, port, "
                              "username, password, database).")
        else:
            st.selectbox("Database system", list(live.LABELS), key="live_dbms", format_func=live.LABELS.get)
            st.text_input("Host", key="live_host", placeholder="db.example.com or 127.0.0.1")
            st.text_input("Port", key="live_port", placeholder="5432 (PostgreSQL) or 3306 (MySQL)")
            st.text_input("Database", key="live_database")
            st.text_input("User", key="live_user", help="A read-only user is recommended.")
            st.text_input("Password", key="live_password", type="password",
                          help="Kept in memory only (this browser session and the running Helios); never written "
                               "to disk, history or logs. After a restart Helios asks for it again.")
            st.radio("Environment", list(live.ENVIRONMENTS), key="live_environment", horizontal=True)
        st.caption("Helios only reads: it sends SELECTs, never writes. Still, connect as a read-only user, e.g. "
                   "`CREATE ROLE helios LOGIN PASSWORD '…'; GRANT pg_read_all_data TO helios;`")
        if st.button("Connect and create chat", key="live_connect", icon=":material/cable:"):
            with user_errors(stop=False):
                if source == "named":
                    conn = live.named_connection(state.get("live_named", ""))
                else:
                    conn = live.make_connection(state.get("live_dbms", "postgresql"), state.get("live_host", ""),
                                                state.get("live_port", ""), state.get("live_user", ""),
                                                state.get("live_database", ""), state.get("live_password", ""),
                                                environment=state.get("live_environment", "local"))
                with st.spinner(f"Connecting to {conn.describe()}…"):
                    created = live.create_chat(ch, store, conn, state.get("chat_new_name", ""))
                state[ACTIVE_CHAT_KEY] = created.id
                st.rerun()


def live_chat_banner(current: Chat) -> None:
    """Where a live chat's data is; after a restart, a box for its password (which Helios never stores)."""
    if not current.database.startswith(live.STANDIN_PREFIX):
        return
    with user_errors():
        stored = live.record(ch, current.id)
        if stored is None:
            return
        if live.is_connected(current.id) or stored.connection_name:
            st.caption(f"Live {stored.describe()} (read-only; the password stays in memory).")
            return
        st.warning(f"This chat reads the {stored.describe()}. Helios does not keep passwords, so it needs it "
                   "again after a restart.", icon=":material/key:")
        st.text_input("Password", key=f"live_reconnect_pw_{current.id}", type="password")
        if st.button("Reconnect", key=f"live_reconnect_{current.id}", icon=":material/cable:"):
            live.reconnect(ch, current.id, state.get(f"live_reconnect_pw_{current.id}", ""))
            st.rerun()


# ---- assistant settings (keys stay in this browser session) ----------------------------------------


def assistant_settings() -> None:
    with st.expander("Assistant settings", icon=":material/tune:"):
        provider_name = st.radio("Provider", list(PROVIDER_LABELS), format_func=PROVIDER_LABELS.get,
                                 horizontal=True, key="chat_provider")
        if provider_name == "bedrock":
            bedrock_settings()
        elif provider_name == "openai":
            st.text_input("Base URL", key="chat_openai_url", placeholder="https://api.openai.com/v1 or "
                          "http://localhost:11434/v1")
            st.text_input("Model", key="chat_openai_model", placeholder="gpt-4o-mini, llama3.1, …")
            st.text_input("API key (optional)", key="chat_openai_key", type="password",
                          help="Kept only in this browser session; never stored or logged.")
        if provider_name != "builtin":
            st.checkbox("Allow sending result rows (up to 20 rows of the previous answer)", key="chat_allow_rows")
        st.caption(what_is_sent(provider_name, bool(state.get("chat_allow_rows")) and provider_name != "builtin"))


def bedrock_settings() -> None:
    st.text_input("Bedrock model id", value=DEFAULT_BEDROCK_MODEL, key="chat_bedrock_model")
    conn = aws_connection()
    if conn is None:
        st.caption("No AWS connection in this session: the default credential chain and region are used. "
                   "Connect on the Connect page to choose.")
    elif getattr(conn, "sandbox", False):
        st.warning("The local sandbox does not offer Bedrock: connect to real AWS on the Connect page.",
                   icon=":material/science:")
    else:
        st.caption(f"Uses this session's AWS connection: {conn.describe()}.")


def current_provider():
    name = state.get("chat_provider", "builtin")
    return make_provider(name, model_id=state.get("chat_bedrock_model", ""),
                         connection=aws_connection() if name == "bedrock" else None,
                         base_url=state.get("chat_openai_url", ""), model=state.get("chat_openai_model", ""),
                         api_key=state.get("chat_openai_key") or None)


# ---- history ---------------------------------------------------------------------------------------


def render_chart(content: dict, table: dict | None, key: str) -> None:
    spec = ChartSpec(**content["spec"])
    kinds = list(CHART_KINDS)
    pick, _ = st.columns([1, 4])
    kind = pick.selectbox("Chart", kinds, index=kinds.index(spec.kind) if spec.kind in kinds else 0,
                          key=f"chat_kind_{key}", help="Switch the chart kind; the data stays the same.")
    try:
        if kind == spec.kind:
            figure = pio.from_json(json.dumps(content["figure"]))
        else:
            figure = build_chart(frame_from_table(table or {}), ChartSpec(kind, spec.x, spec.y, spec.color))
        st.plotly_chart(figure, key=f"chat_chart_{key}", width="stretch")
    except Exception as exc:  # a stored figure plotly cannot redraw: the table still answers
        st.caption(f"The chart cannot be drawn as {kind} ({exc}).")


def render_turn(messages: list[Message], chat_id: str) -> None:
    role = messages[0].role
    table = next((m.content for m in messages if m.content_type == "table"), None)
    with st.chat_message(role):
        for m in messages:
            key = f"{chat_id}_{m.seq}"
            if m.content_type == "text":
                st.markdown(m.content)
            elif m.content_type == "table":
                frame = frame_from_table(m.content)
                st.dataframe(frame, hide_index=True, width="stretch", key=f"chat_table_{key}")
                types = " · ".join(f"{c}: {t}" for c, t in zip(m.content.get("columns", []),
                                                             m.content.get("types", []), strict=False))
                more = " (first rows shown)" if m.content.get("truncated") else ""
                st.caption(f"{plural(m.content.get('row_count', len(frame)), 'row')}{more} — {types}")
            elif m.content_type == "chart":
                render_chart(m.content, table, key)
            elif m.content_type == "query":
                sql = m.content.get("sql", "")
                label = "SQL (failed)" if m.content.get("failed") else "SQL"
                with st.expander(label, icon=":material/code:"):
                    st.code(sql, language="sql")
                    if st.button("Open in SQL explorer", key=f"chat_open_sql_{key}", icon=":material/terminal:"):
                        open_in_sql_explorer(sql)


def conversation(chat: Chat | None, databases: list[str]) -> None:
    """The chat's turns; with no chat, the database a first question will be about."""
    if chat is None:
        st.info("Create a chat in the sidebar, or just ask: a new chat starts with your first question.",
                icon=":material/forum:")
        if not databases:
            st.warning("There is no database to ask about yet. Load the demo data on the Home page, or create a "
                       "table.")
            st.stop()
        st.selectbox("Ask about database", databases, key="chat_quick_db")
        return
    st.caption(f"About {chat.describe_subject()}" + (f" (database {chat.database})" if chat.subject_sql else "")
               + ("" if store.can_change(chat) else f" · shared with you by {chat.owner}, read-only"))
    live_chat_banner(chat)
    with user_errors(stop=False):
        for turn in turns(store.messages(chat.id)):
            render_turn(turn, chat.id)


def question_box(chat: Chat | None) -> None:
    """Ask; the first question without a chat starts one about the chosen database."""
    subject_name = chat.describe_subject() if chat else f"database {state.get('chat_quick_db', '')}"
    question = st.chat_input(f"Ask about {subject_name}…", key="chat_input")
    if not question:
        return
    with user_errors(stop=False):
        provider = current_provider()
        if chat is None:
            chat = store.create(new_chat_name(question), state["chat_quick_db"])
            state[ACTIVE_CHAT_KEY] = chat.id
        with st.chat_message("user"):
            st.markdown(question)
        with st.chat_message("assistant"):
            with st.spinner("Thinking…"):
                Assistant(ch, store, provider).ask(question, chat,
                                                   allow_rows=bool(state.get("chat_allow_rows")))
        st.rerun()


def main() -> None:
    st.title("Chat")
    by_id, databases = sidebar_chats()
    with st.sidebar:
        live_database_form()
    chat = by_id.get(state.get(ACTIVE_CHAT_KEY) or "")
    assistant_settings()
    conversation(chat, databases)
    question_box(chat)


main()
