"""``python -m helios_core <command>``: the core, scriptable.

Prints JSON (the seeds' response shapes) on stdout. On error it prints
``{"error": …}`` on stdout, one line on stderr, and exits non-zero:
1 for a general failure, 3 for invalid input (HTTP 400 in the seeds),
4 for not found (404), 5 for a conflict (409), 6 for a change the acting
user may not make (403).

Commands act as the single local user (an admin: whoever can run them can open
the data directory). ``--user EMAIL`` (before the command) acts as that user
instead, for admins' scripts: their records, their ownership checks. Each concern adds its
commands from its own module in this package (``register(subparsers)``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable
from typing import Any

from helios_core.errors import Conflict, Forbidden, HeliosError, NotFound, ValidationError, error_payload

EXIT_ERROR, EXIT_INVALID, EXIT_NOT_FOUND, EXIT_CONFLICT, EXIT_FORBIDDEN = 1, 3, 4, 5, 6
_COMMAND_MODULES = ("query", "streams", "sources", "ingest", "chat", "reports", "jobs", "serverless", "serve")


def emit(payload: Any) -> None:
    json.dump(payload, sys.stdout, indent=2, default=str, ensure_ascii=False)
    sys.stdout.write("\n")


def exit_code_for(exc: HeliosError) -> int:
    if isinstance(exc, ValidationError):
        return EXIT_INVALID
    if isinstance(exc, NotFound):
        return EXIT_NOT_FOUND
    if isinstance(exc, Conflict):
        return EXIT_CONFLICT
    if isinstance(exc, Forbidden):
        return EXIT_FORBIDDEN
    return EXIT_ERROR


def acting_user(args: argparse.Namespace) -> Any:
    """The user a command acts as: ``--user``, else the single local user."""
    from helios_core.users import LOCAL, user_for
    name = getattr(args, "acting_user", None)
    return user_for(name) if name else LOCAL


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helios_core", description="Helios from the command line.")
    parser.add_argument("--user", dest="acting_user", default=None, metavar="EMAIL",
                        help="act as this user (admins' scripting; default: the single local user, an admin)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"helios_core.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"helios_core.cli.{name}":
                continue  # that concern's commands are not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], Any] = args.handler
    try:
        result = handler(args)
    except HeliosError as exc:
        emit(error_payload(exc))
        print(f"error: {exc}", file=sys.stderr)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # last resort: still one line, no traceback
        emit({"error": f"{type(exc).__name__}: {exc}"})
        print(f"error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if isinstance(result, int):
        return result
    if result is not None:
        emit(result)
    return 0
