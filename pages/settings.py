"""Settings: tokens for the HTTP API — create (shown once), list, revoke."""

from __future__ import annotations

import streamlit as st

from helios_core.tokens import create_token, list_tokens, revoke_token
from helios_core.users import User
from pages._shared import acting_user, runtime, user_errors

rt = runtime()


def api_server_note() -> None:
    server = rt.services.get("api")
    if server is not None:
        st.caption(f"The HTTP API is served from this app at {server.url} (documentation at {server.url}/docs).")
    else:
        st.caption("The HTTP API is off in this app: start the app with HELIOS_API_PORT set, or run "
                   "`python -m helios_core serve` on another data directory.")
    st.caption("Every API request needs `Authorization: Bearer <token>` and acts as the token's owner (you, for the "
               "tokens below). Helios keeps only a hash of each token, so a token is shown once, when it is created.")


def new_token_form(me: User) -> None:
    with st.form("api_token_new", clear_on_submit=True):
        c1, c2 = st.columns([3, 1])
        name = c1.text_input("Name", placeholder="ci", help="Who uses it: letters, digits and underscores.")
        write = c2.checkbox("Allow writes", help="Inserts, new tables, jobs, chats and SQL sent with write.")
        if st.form_submit_button("Create token", icon=":material/key:"):
            with user_errors(stop=False):
                new = create_token(rt.clickhouse, name, write=write, user=me)
                st.success(f"Token {new.record.name!r} created. Copy it now: it is not shown again.",
                           icon=":material/check_circle:")
                st.code(new.token, language=None)


def token_list(me: User) -> None:
    with user_errors():
        tokens = list_tokens(rt.clickhouse, user=me)
    if not tokens:
        st.info("No tokens yet.", icon=":material/info:")
    for token in tokens:
        c1, c2, c3, c4 = st.columns([3, 2, 3, 1])
        c1.markdown(f"**{token.name}**  \n`{token.id}`")
        c2.write("read and write" if token.write else "read-only")
        c3.write(f"created {token.created_at:%Y-%m-%d %H:%M} UTC")
        if c4.button("Revoke", key=f"api_token_revoke_{token.id}", icon=":material/block:"):
            with user_errors(stop=False):
                revoke_token(rt.clickhouse, token.id, me)
                st.rerun()


def main() -> None:
    st.title("Settings")
    st.subheader("HTTP API tokens")
    me = acting_user()
    api_server_note()
    new_token_form(me)
    token_list(me)


main()
