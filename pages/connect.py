"""Connect: AWS credentials (keys, profile or default chain) or the local sandbox; the streams found."""

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from helios_core.aws import (
    AwsConnection,
    available_profiles,
    kinesis_regions,
    list_streams,
)
from helios_core.config import Settings, get_settings
from pages._shared import (
    AUTO_SANDBOX_KEY,
    AWS_IDENTITY_KEY,
    AWS_STREAMS_KEY,
    auto_sandbox,
    aws_connection,
    connect_sandbox,
    forget_aws_connection,
    open_preview,
    sandbox,
    sandbox_badge,
    set_aws_connection,
    user_errors,
)

_SECRET_FIELDS = ("aws_secret_access_key", "aws_session_token")
DEFAULT_CHAIN = "(default credential chain)"


@dataclass
class TypedCredentials:
    """What the credentials form was submitted with (keys still as typed)."""
    key_id: str
    secret: str
    token: str
    profile: str
    region: str
    endpoint: str


def clear_used_secrets() -> None:
    """Secrets typed into the form are dropped from the widgets once used: the connection holds them."""
    if st.session_state.pop("aws_clear_secrets", False):
        for key in _SECRET_FIELDS:
            st.session_state.pop(key, None)


def sandbox_when_nothing_else() -> None:
    """With no connection yet and no credentials anywhere, the sandbox is the sensible default (once a session)."""
    if aws_connection() is None and auto_sandbox(announce=False, stop=False):  # else the form below is the way on
        st.rerun()  # so the sidebar shows the Sandbox label at once


def connection_status(conn: AwsConnection) -> None:
    """Who this session is connected as, with Refresh streams and Disconnect."""
    identity = st.session_state.get(AWS_IDENTITY_KEY)
    with st.container(border=True):
        if st.session_state.get(AUTO_SANDBOX_KEY) and conn.sandbox:
            st.info("No AWS credentials were found, so Helios connected to the **local sandbox**: a moto server in "
                    "this app with demo streams and a producer writing events. Enter credentials below to use AWS.",
                    icon=":material/science:")
        st.markdown(f"**Connected:** {conn.describe()}")
        if identity is not None:
            st.markdown(f"Account `{identity.account or 'unknown'}` · ARN `{identity.arn or 'unknown'}`"
                        + (f" · {identity.note}" if identity.note else ""))
        c1, c2, _ = st.columns([2, 2, 5])
        if c1.button("Refresh streams", icon=":material/refresh:", key="aws_refresh"):
            with user_errors(stop=False), st.spinner("Listing streams…"):
                st.session_state[AWS_STREAMS_KEY] = list_streams(conn)
        if c2.button("Disconnect", icon=":material/link_off:", key="aws_disconnect"):
            forget_aws_connection()
            st.session_state.pop(AUTO_SANDBOX_KEY, None)
            st.rerun()


def streams_found() -> None:
    """The connection's streams, and a way to preview one."""
    streams = st.session_state.get(AWS_STREAMS_KEY) or []
    st.subheader(f"Streams ({len(streams)})")
    if not streams:
        st.info("No Kinesis streams in this region. Pick another region, or create a stream.")
        return
    st.dataframe(pd.DataFrame([{"stream": s.name, "status": s.status, "mode": s.mode,
                                "open shards": s.open_shards, "retention (h)": s.retention_hours,
                                "note": s.note} for s in streams]),
                 hide_index=True, width="stretch", key="aws_streams_table")
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    chosen = c1.selectbox("Stream to preview", [s.name for s in streams], key="aws_preview_choice")
    if c2.button("Preview events", icon=":material/visibility:", key="aws_go_preview", type="primary"):
        open_preview(chosen)


def sandbox_producer() -> None:
    with st.expander("Sandbox producer", icon=":material/science:"):
        status = sandbox().status()
        producer = status.get("producer") or {}
        st.caption(f"Endpoint {status['endpoint_url']} · {producer.get('rate_per_s', 0):g} events/s per stream "
                   f"· about 1% deliberately bad events · "
                   f"{'running' if producer.get('running') else 'stopped'}")
        st.dataframe(pd.DataFrame([{"stream": name, **stats}
                                   for name, stats in (producer.get("streams") or {}).items()]),
                     hide_index=True, width="stretch")


def sandbox_offer(conn: AwsConnection | None) -> None:
    on_sandbox = conn is not None and conn.sandbox
    st.subheader("Sandbox" if on_sandbox else "Use the local sandbox")
    st.caption("A moto server inside this app (127.0.0.1) with demo streams user_activity, purchase_events and "
               "captcha_events, fed continuously. No AWS account needed.")
    if not on_sandbox and st.button("Start the local sandbox", icon=":material/science:", key="aws_use_sandbox"):
        with user_errors(stop=False):
            connect_sandbox()
            st.rerun()


def credentials_form(conn: AwsConnection | None, settings: Settings) -> TypedCredentials | None:
    """The credentials form; what it was submitted with, or None before it is."""
    st.subheader("Connect with AWS credentials")
    regions = kinesis_regions()
    default_region = conn.region if conn is not None and not conn.sandbox else settings.aws_region
    with st.form("aws_form"):
        st.caption("Enter an access key, or leave the keys empty to use a profile or the default credential chain "
                   "(environment, ~/.aws, SSO, instance role). Credentials stay in this browser session only.")
        c1, c2 = st.columns(2)
        key_id = c1.text_input("Access key id", key="aws_access_key_id", placeholder="AKIA…")
        secret = c2.text_input("Secret access key", type="password", key="aws_secret_access_key")
        token = st.text_input("Session token (temporary credentials only)", type="password", key="aws_session_token")
        c1, c2 = st.columns(2)
        profile = c1.selectbox("Profile (used when the keys are empty)", [DEFAULT_CHAIN] + available_profiles(),
                               key="aws_profile")
        region = c2.selectbox("Region", regions,
                              index=regions.index(default_region) if default_region in regions else 0,
                              key="aws_region")
        endpoint = st.text_input("Endpoint URL (optional: LocalStack, kinesalite, a moto server)",
                                 value=settings.aws_endpoint_url or "", key="aws_endpoint_url",
                                 placeholder="http://127.0.0.1:4566")
        submitted = st.form_submit_button("Connect", icon=":material/login:", type="primary")
    if not submitted:
        return None
    return TypedCredentials(key_id=key_id, secret=secret, token=token, profile=profile, region=region,
                            endpoint=endpoint)


def connect_with(typed: TypedCredentials) -> None:
    """Check the credentials (who they are, which streams they see) and make them this session's connection."""
    with user_errors(stop=False):
        key_id = typed.key_id.strip()
        candidate = AwsConnection(region=typed.region, access_key_id=key_id or None,
                                  secret_access_key=typed.secret.strip() or None,
                                  session_token=typed.token.strip() or None,
                                  profile=None if key_id or typed.profile == DEFAULT_CHAIN else typed.profile,
                                  endpoint_url=typed.endpoint.strip() or None)
        with st.spinner(f"Checking {candidate.describe()}…"):
            found_identity = candidate.validate()
            found_streams = list_streams(candidate)
        set_aws_connection(candidate, found_identity, found_streams)
        st.session_state.pop(AUTO_SANDBOX_KEY, None)
        st.session_state["aws_clear_secrets"] = True
        st.rerun()


def main() -> None:
    clear_used_secrets()
    settings = get_settings()
    st.title("Connect to AWS")
    sandbox_when_nothing_else()
    conn = aws_connection()
    sandbox_badge()
    if conn is not None:
        connection_status(conn)
        streams_found()
        if conn.sandbox:
            sandbox_producer()
    sandbox_offer(conn)
    typed = credentials_form(conn, settings)
    if typed is not None:
        connect_with(typed)


main()
