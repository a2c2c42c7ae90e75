"""Command: ``ask`` — a question to the chat assistant, answered from the data.

``python -m helios_core ask "QUESTION" --database D [--chat ID] [--provider builtin|bedrock|openai]``
prints ``{"answer", "sql", "column_names", "rows", "chat_id"}``. With ``--chat`` the question follows up on
that chat's last answer (its history is in the ``helios`` database, so this works across runs). A question
the assistant cannot answer exits with 3 and prints its explanation and questions it can answer.

LLM settings: ``--model-id`` (Bedrock; AWS credentials from the usual chain), ``--base-url`` and ``--model``
(OpenAI-compatible; the key is read from ``HELIOS_LLM_API_KEY`` or ``OPENAI_API_KEY``, never from a flag,
so it stays out of shell history).
"""

from __future__ import annotations

import argparse
import sys

from helios_core.chat.assistant import Assistant, new_chat_name
from helios_core.chat.providers import DEFAULT_BEDROCK_MODEL, PROVIDERS, make_provider
from helios_core.chat.store import ChatStore
from helios_core.cli import EXIT_INVALID, acting_user, emit
from helios_core.config import get_settings
from helios_core.errors import ValidationError
from helios_core.runtime import get_clickhouse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ask", help="ask the chat assistant a question about a database (or follow up on a chat)")
    p.add_argument("question")
    p.add_argument("--database", "-d", default=None, help="the database the question is about")
    p.add_argument("--chat", default=None, help="continue this chat (its database and last answer)")
    p.add_argument("--provider", choices=PROVIDERS, default="builtin", help="who writes the SQL (default builtin)")
    p.add_argument("--model-id", default=DEFAULT_BEDROCK_MODEL, help="Bedrock model id")
    p.add_argument("--base-url", default="",
                   help="OpenAI-compatible base URL, e.g. http://localhost:11434/v1 (default: HELIOS_LLM_BASE_URL)")
    p.add_argument("--model", default="", help="OpenAI-compatible model name (default: HELIOS_LLM_MODEL)")
    p.set_defaults(handler=ask)

    p = sub.add_parser("chats", help="list chats (the acting user's and those shared with them)")
    p.add_argument("--all-users", action="store_true", help="every user's chats (admins)")
    p.set_defaults(handler=lambda a: [c.to_json() for c in ChatStore(get_clickhouse(), acting_user(a))
                                      .list(all_users=a.all_users)])

    p = sub.add_parser("chat-share", help="share a chat read-only with users (e-mail addresses, or * for everyone)")
    p.add_argument("chat_id")
    p.add_argument("--with", dest="shared_with", default="", help="comma-separated; empty stops sharing")
    p.set_defaults(handler=lambda a: ChatStore(get_clickhouse(), acting_user(a)).share(a.chat_id,
                                                                                      a.shared_with).to_json())


def ask(args: argparse.Namespace) -> object:
    ch = get_clickhouse()
    store = ChatStore(ch, acting_user(args))
    provider = _provider(args)  # bad provider settings fail before a chat is created
    if args.chat:
        chat = store.get(args.chat)
        if args.database and args.database != chat.database and not chat.subject_sql:
            raise ValidationError(f"Chat {chat.id} is about database {chat.database!r}, not {args.database!r}.",
                                  "Leave out --database to continue it, or leave out --chat to start a new one.")
    else:
        if not args.database:
            raise ValidationError("Say which database the question is about (--database), or continue a chat "
                                  "(--chat ID).", missing_fields=["database"])
        from helios_core.chat.context import Subject, build_context
        build_context(ch, Subject(args.database))  # a missing database fails here, before a chat exists
        chat = store.create(new_chat_name(args.question), args.database)
    answer = Assistant(ch, store, provider).ask(args.question, chat)
    if not answer.ok:
        payload = {"error": answer.text, "explanation": answer.error, "suggestions": answer.suggestions,
                   "chat_id": chat.id}
        if answer.sql:
            payload["sql"] = answer.sql
        emit(payload)
        print(f"error: {answer.text}", file=sys.stderr)
        return EXIT_INVALID
    return answer.to_cli_json()


def _provider(args: argparse.Namespace):
    settings = get_settings()
    connection = None
    if args.provider == "bedrock":
        from helios_core.aws import connection_from_settings
        connection = connection_from_settings()  # Bedrock ignores its endpoint (moto has no Bedrock)
    return make_provider(args.provider, model_id=args.model_id, connection=connection,
                         base_url=args.base_url or settings.llm_base_url or "",
                         model=args.model or settings.llm_model or "", api_key=settings.llm_api_key)
