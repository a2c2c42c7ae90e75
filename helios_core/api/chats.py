"""The DB chat seed: chats about a database, their history, questions answered, dumps loaded (no Docker)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, File, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from helios_core.api.auth import require_token, require_user, require_write
from helios_core.api.errors import HttpError
from helios_core.errors import ValidationError
from helios_core.runtime import get_runtime
from helios_core.users import User

router = APIRouter(tags=["Chats (DB chat)"], dependencies=[Depends(require_token)])
MASK = "********"
SEED_CONTENT_TYPES = {"chart": "image"}   # Helios keeps charts as figures; the seed calls them images


class ChatCreate(BaseModel):
    """The seed's payload. With ``dbms`` postgresql or mysql and a ``host_name`` (or a ``connection_name`` of
    .streamlit/secrets.toml), the chat reads that live database; its password stays in this process's memory only.
    Otherwise the chat is about the ClickHouse database ``database`` (a password is then never kept)."""

    model_config = ConfigDict(extra="ignore")
    chat_name: str = Field("", max_length=500)
    database: str = Field(..., max_length=512)
    host_name: str | None = Field(None, max_length=500)
    port: str | int | None = None
    user: str | None = Field(None, max_length=500)
    password: str | None = Field(None, max_length=1000)
    dbms: str | None = Field(None, max_length=50)
    environment: str | None = Field(None, max_length=50)
    schema_name: str | None = Field(None, max_length=200, alias="schema")
    connection_name: str | None = Field(None, max_length=200)


class LivePassword(BaseModel):
    model_config = ConfigDict(extra="ignore")
    password: str = Field("", max_length=1000)


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: str = Field("user", max_length=20)
    content: str = Field(..., max_length=20_000)
    content_type: str = Field("text", max_length=20)


def _store(user: User) -> Any:
    from helios_core.chat.store import ChatStore
    return ChatStore(get_runtime().clickhouse, user)


def credentials(chat: Any) -> dict[str, Any]:
    """Where the chat's data lives, in the seed's shape, password masked (Helios never hands one out)."""
    from helios_core.chat import live
    from helios_core.config import get_settings
    if chat.database.startswith(live.STANDIN_PREFIX):
        stored = live.record(get_runtime().clickhouse, chat.id)
        if stored is not None:
            return {"chat_id": chat.id, "chat_name": chat.name, "database": stored.database, "dbms": stored.dbms,
                    "environment": stored.environment, "host_name": stored.host, "port": str(stored.port),
                    "user": stored.user, "password": MASK, "schema": stored.remote_schema,
                    "connection_name": stored.connection_name, "live": True,
                    "connected": live.is_connected(chat.id)}
    settings = get_settings()
    out = {"chat_id": chat.id, "chat_name": chat.name, "database": chat.database, "dbms": "clickhouse"}
    if settings.embedded:
        return {**out, "environment": "local", "host_name": "embedded", "port": "", "user": "default",
                "password": ""}
    url = urlsplit(settings.clickhouse_url or "")
    host = url.hostname or ""
    return {**out, "environment": "local" if host in ("localhost", "127.0.0.1", "::1") else "cloud",
            "host_name": host, "port": str(url.port or ""), "user": url.username or "default",
            "password": MASK if url.password else ""}


def message_json(message: Any) -> dict[str, Any]:
    """A stored message in the seed's shape: table content is its rows, a query's is its SQL."""
    content, kind = message.content, message.content_type
    out: dict[str, Any] = {"role": message.role, "content_type": SEED_CONTENT_TYPES.get(kind, kind), "content": content,
                           "seq": message.seq, "turn": message.turn,
                           "created_at": message.created_at.isoformat() if message.created_at else None}
    if isinstance(content, dict):
        if kind == "table":
            out.update(content=content.get("rows", []), columns=content.get("columns", []),
                       truncated=bool(content.get("truncated")))
        elif kind == "query":
            out.update(content=content.get("sql", ""), failed=bool(content.get("failed")))
        elif kind == "chart":
            out["content"] = content.get("figure")
    return out


@router.get("/api/chats", summary="Every chat (credentials masked)")
def list_chats(user: User = Depends(require_user)) -> list[dict[str, Any]]:
    return [credentials(chat) for chat in _store(user).list()]


@router.post("/api/chats", summary="Create a chat about a database", dependencies=[Depends(require_write)])
def create_chat(body: ChatCreate, user: User = Depends(require_user)) -> dict[str, Any]:
    from helios_core.chat import live
    if body.connection_name or (live.DBMS_NAMES.get((body.dbms or "").strip().lower()) and body.host_name):
        if body.connection_name:
            conn = live.named_connection(body.connection_name)
        else:
            conn = live.make_connection(body.dbms or "", body.host_name or "", body.port, body.user or "",
                                        body.database, body.password or "", body.schema_name or "",
                                        body.environment or "local")
        return credentials(live.create_chat(get_runtime().clickhouse, _store(user), conn, body.chat_name))
    from helios_core.clickhouse import SYSTEM_DATABASES
    from helios_core.identifiers import check_identifier
    from helios_core.metadata import METADATA_DB
    problems = check_identifier(body.database, "database")
    if problems:
        raise ValidationError(problems[0], "Name the ClickHouse database the chat is about.", problems=problems)
    if body.database in (METADATA_DB, *SYSTEM_DATABASES):
        raise ValidationError(f"Chats are not about the {body.database!r} database.", "Choose a data database.")
    if body.dbms and body.dbms.lower() not in ("postgresql", "postgres", "clickhouse"):
        raise ValidationError(f"Unknown dbms {body.dbms[:40]!r}.", "Use clickhouse; postgresql or mysql with "
                              "host_name, port, user, password for a live database; or postgresql without a host "
                              "and a replication file (POST /api/chats/<id>/replication-file).")
    chat = _store(user).create(body.chat_name or body.database, body.database)
    payload = credentials(chat)
    if body.password:
        payload["note"] = "The password was not stored: Helios never keeps one."
    return payload


@router.get("/api/chats/{chat_id}", summary="A chat's history")
def chat_history(chat_id: str, user: User = Depends(require_user)) -> dict[str, Any]:
    store = _store(user)
    chat = store.get(chat_id)
    return {**credentials(chat), "chat_history": [message_json(m) for m in store.messages(chat.id)]}


@router.post("/api/chats/{chat_id}", summary="Add a message; a user's question gets the assistant's answer",
             dependencies=[Depends(require_write)])
def post_message(chat_id: str, body: MessageIn, user: User = Depends(require_user)) -> JSONResponse:
    from helios_core.chat.assistant import Assistant
    from helios_core.chat.store import NewMessage
    store = _store(user)
    chat = store.get(chat_id)
    if not body.content.strip():
        raise ValidationError("The message is empty.", "Type a question about the data.")
    if body.role == "assistant" and body.content_type == "text":
        stored = store.add_turn(chat.id, [NewMessage("assistant", "text", body.content)])
        return JSONResponse({"chat_id": chat.id, "chat_history": [message_json(m) for m in stored]})
    if body.role != "user" or body.content_type != "text":
        raise HttpError(422, f"Helios cannot store a {body.role[:20]!r} message of type {body.content_type[:20]!r}.",
                        "Post the user's question as role user, content_type text: the assistant answers it "
                        "(its tables, queries and charts are its own).")
    before = len(store.messages(chat.id))
    answer = Assistant(get_runtime().clickhouse, store).ask(body.content, chat)
    history = [message_json(m) for m in store.messages(chat.id)[before:]]
    if not answer.ok:
        return JSONResponse({"error": answer.text, "hint": "Try one of the suggestions.",
                             "explanation": answer.error, "suggestions": answer.suggestions, "chat_id": chat.id,
                             "chat_history": history}, status_code=422)
    return JSONResponse({**answer.to_cli_json(), "chat_history": history})


@router.post("/api/chats/{chat_id}/connect", dependencies=[Depends(require_write)],
             summary="Give a live database chat its password again (kept in the server's memory only)")
def connect_chat(chat_id: str, body: LivePassword, user: User = Depends(require_user)) -> dict[str, Any]:
    from helios_core.chat import live
    chat = _store(user).get(chat_id)
    live.reconnect(get_runtime().clickhouse, chat.id, body.password)
    return credentials(chat)


@router.get("/api/chats/{chat_id}/credentials", summary="Where the chat's data lives (password masked)")
def chat_credentials(chat_id: str, user: User = Depends(require_user)) -> dict[str, Any]:
    return credentials(_store(user).get(chat_id))


def _load(chat_id: str, path: Path, filename: str, replace: bool, user: User) -> dict[str, Any]:
    from helios_core.pgdump import line_source, load_dump
    store = _store(user)
    chat = store.get(chat_id)
    if not store.can_change(chat):  # loading replaces the chat's data: its owner's (or an admin's) call
        from helios_core.errors import Forbidden
        raise Forbidden(f"Only the owner of the chat {chat.name!r} or an admin can load data into it.",
                        "Create your own chat and load the file there.")
    report = load_dump(get_runtime().clickhouse, line_source(path), chat.database, replace=replace,
                       origin=filename[:200] or "replica.sql", source="import")
    return {"chat_id": chat.id, **report.to_json()}


@router.post("/api/chats/{chat_id}/replication-file", dependencies=[Depends(require_write)],
             summary="Load a pg_dump -F p file (form field file) into the chat's database")
async def replication_file(chat_id: str, file: UploadFile = File(...),
                           replace: bool = Query(False, description="drop the chat's database first"),
                           user: User = Depends(require_user)) -> Any:
    with tempfile.TemporaryDirectory(prefix="helios-api-") as tmp:
        path = Path(tmp) / "replica.sql"
        with path.open("wb") as out:
            while chunk := await file.read(1 << 20):
                out.write(chunk)
        return await run_in_threadpool(_load, chat_id, path, file.filename or "", replace, user)
