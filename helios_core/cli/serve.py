"""Commands: ``serve`` (the HTTP API) and ``tokens create|list|revoke`` (its bearer tokens)."""

from __future__ import annotations

import argparse
from typing import Any

from helios_core.cli import acting_user
from helios_core.runtime import get_clickhouse


def _serve(args: argparse.Namespace) -> int:
    from helios_core.api import serve
    from helios_core.config import get_settings
    settings = get_settings()
    serve(args.host or settings.api_host, args.port or settings.api_port or 8000)
    return 0


def _create(args: argparse.Namespace) -> Any:
    from helios_core.tokens import create_token
    return create_token(get_clickhouse(), args.name, write=args.write, user=acting_user(args)).to_json()


def _list(args: argparse.Namespace) -> Any:
    from helios_core.tokens import list_tokens
    return [t.to_json() for t in list_tokens(get_clickhouse(), include_revoked=args.all, user=acting_user(args),
                                             all_users=args.all_users)]


def _revoke(args: argparse.Namespace) -> Any:
    from helios_core.tokens import revoke_token
    return revoke_token(get_clickhouse(), args.token, user=acting_user(args)).to_json()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the HTTP API (the seeds' endpoints; bearer tokens; docs at /docs)")
    p.add_argument("--host", help="address to bind (default HELIOS_API_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default HELIOS_API_PORT or 8000)")
    p.set_defaults(handler=_serve)

    p = sub.add_parser("tokens", help="API tokens: create (shown once), list, revoke")
    ts = p.add_subparsers(dest="tokens_command", required=True)
    c = ts.add_parser("create", help='create a token acting as the acting user (--user); prints it once with '
                                     '{"id", "name", "write", "token", "owner"}')
    c.add_argument("--name", required=True, help="who uses it, e.g. ci")
    c.add_argument("--write", action="store_true", help="allow changing data (inserts, tables, jobs, chats)")
    c.set_defaults(handler=_create)
    ls = ts.add_parser("list", help="tokens (never their secrets)")
    ls.add_argument("--all", action="store_true", help="include revoked tokens")
    ls.add_argument("--all-users", action="store_true", help="every user's tokens (admins)")
    ls.set_defaults(handler=_list)
    r = ts.add_parser("revoke", help="revoke a token by id or name")
    r.add_argument("token", help="the token's id or name")
    r.set_defaults(handler=_revoke)
