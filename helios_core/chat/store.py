"""Chats and their messages, kept in the ``helios`` metadata database.

A chat is a mutable record (ReplacingMergeTree keyed by id, read with FINAL):
its name, the database it is about and, for "Ask about this result", the SQL
of the query it is about. Messages are append-only facts (MergeTree): the
chat id, their order, role, content type and content (text, tables as capped
rows with column types, charts as plotly figure JSON, queries as SQL).

No secret ever enters these tables: the provider's name is kept, never its
key or a URL's password, and message text is scrubbed of key-shaped strings.
"""

from __future__ import annotations

import builtins
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from helios_core.chat import live
from helios_core.clickhouse import ClickHouse
from helios_core.config import mask_secrets
from helios_core.errors import NotFound, ValidationError
from helios_core.metadata import METADATA_DB, next_version
from helios_core.users import (
    LOCAL_ID,
    User,
    acting,
    check_change,
    check_read,
    clean_shared_with,
    owner_of,
    ownership_alters,
    visible_where,
)

CONTENT_TYPES = ("text", "table", "query", "chart")
ROLES = ("user", "assistant")
MAX_NAME = 120

METADATA_TABLES = [
    """CREATE TABLE IF NOT EXISTS helios.chats (
        id String,
        name String,
        database String,
        subject_sql String,
        subject_label String,
        created_at DateTime64(3, 'UTC'),
        updated_at DateTime64(3, 'UTC'),
        deleted UInt8 DEFAULT 0,
        version UInt64
    ) ENGINE = ReplacingMergeTree(version) ORDER BY id""",
    """CREATE TABLE IF NOT EXISTS helios.chat_messages (
        chat_id String,
        seq UInt32,
        turn UInt32,
        role LowCardinality(String),
        content_type LowCardinality(String),
        content String,
        created_at DateTime64(3, 'UTC')
    ) ENGINE = MergeTree ORDER BY (chat_id, seq)""",
]
METADATA_ALTERS = ownership_alters("helios.chats", shared=True)

METADATA_TABLES += live.METADATA_TABLES  # a live database chat's connection details, never its password

_CHAT_COLUMNS = ["id", "name", "database", "subject_sql", "subject_label", "created_at", "updated_at", "deleted",
                 "version", "owner", "shared_with"]
_MESSAGE_COLUMNS = ["chat_id", "seq", "turn", "role", "content_type", "content", "created_at"]

# Shapes of credentials that must never be stored even if someone pastes one into a question.
_SECRET_PATTERNS = [
    re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{16}\b"),                  # AWS access key ids
    re.compile(r"(?i)(aws_secret_access_key\s*[=:]\s*)\S+"),
    re.compile(r"(?i)(aws_session_token\s*[=:]\s*)\S+"),
    re.compile(r"\bsk-(?:proj-|ant-|svcacct-|admin-)?[A-Za-z0-9_\-]{16,}"),   # OpenAI / Anthropic keys
    re.compile(r"\bgsk_[A-Za-z0-9]{20,}"),                                    # Groq
    re.compile(r"\bxai-[A-Za-z0-9]{20,}"),                                    # xAI
    re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}"),                                 # Google API keys
    re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{20,}"),    # GitHub tokens
    re.compile(r"\bhf_[A-Za-z0-9]{20,}"),                                      # Hugging Face
    re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"),                          # Slack
    re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]{16,}"),                            # bearer tokens
    re.compile(r"(?i)(\b(?:api[_-]?key|secret|token|access[_-]?token)\s*[=:]\s*)(?!\*\*\*)[^\s&;,'\"]{8,}"),
]
# A 40-character AWS secret access key: base64 letters with upper and lower case (a lowercase hex SHA-1,
# such as a git commit id, is left alone).
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+]{0,39}[a-z])(?=[A-Za-z0-9/+]{0,39}[A-Z])[A-Za-z0-9/+]{40}"
                         r"(?![A-Za-z0-9/+=])")


def scrub(text: str) -> str:
    """Mask key-shaped strings, URL passwords (``user:pass@``, ``?password=``) and DSN passwords before
    anything is stored."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "***", text)
    text = _AWS_SECRET.sub("***", text)
    return mask_secrets(text)


@dataclass
class Chat:
    id: str
    name: str
    database: str
    subject_sql: str = ""
    subject_label: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    owner: str = LOCAL_ID                                   # the user who made it
    shared_with: list[str] = field(default_factory=list)    # read-only: user ids, or "*" for everyone

    def describe_subject(self) -> str:
        if self.subject_sql:
            return self.subject_label or "a saved query"
        return f"database {self.database}"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "database": self.database, "subject_sql": self.subject_sql,
                "subject_label": self.subject_label,
                "created_at": self.created_at.isoformat() if self.created_at else None,
                "updated_at": self.updated_at.isoformat() if self.updated_at else None,
                "owner": self.owner, "shared_with": list(self.shared_with)}


@dataclass
class Message:
    chat_id: str
    seq: int
    turn: int
    role: str
    content_type: str
    content: Any  # text: str; table/chart/query: a dict (stored as JSON)
    created_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {"chat_id": self.chat_id, "seq": self.seq, "turn": self.turn, "role": self.role,
                "content_type": self.content_type, "content": self.content,
                "created_at": self.created_at.isoformat() if self.created_at else None}


@dataclass
class NewMessage:
    role: str
    content_type: str
    content: Any = field(default="")


def _now() -> datetime:
    return datetime.now(UTC)


def _clean_name(name: str) -> str:
    name = " ".join(str(name or "").split())
    if not name:
        raise ValidationError("A chat needs a name.", "Type a short name, for example 'Revenue questions'.")
    return name[:MAX_NAME]


def _not_found(chat_id: str) -> NotFound:
    return NotFound(f"There is no chat {chat_id!r}.", "List chats with the Chat page's sidebar.")


class ChatStore:
    """Create, list, rename, share and delete chats; append and read their messages — as one acting user.

    The owner and admins may do everything; a user a chat is shared with may read it (not post, rename
    or delete); anyone else is told it does not exist. ``user=None`` is the single local user.
    """

    def __init__(self, ch: ClickHouse, user: User | None = None) -> None:
        self.ch = ch
        self._user = user
        self._lock = threading.Lock()  # message order within this process

    @property
    def user(self) -> User:
        return acting(self._user)

    # ---- chats --------------------------------------------------------------

    def create(self, name: str, database: str, subject_sql: str = "", subject_label: str = "",
               chat_id: str = "") -> Chat:
        if not database and not subject_sql:
            raise ValidationError("A chat is about a database or a query; neither was given.",
                                  "Pick a database (or open the chat from a query in the SQL explorer).")
        chat_id = chat_id or uuid.uuid4().hex[:12]
        if database.startswith(live.STANDIN_PREFIX) and database != live.standin_database(chat_id):
            # Another chat's live database: its connection is that chat's alone.
            raise ValidationError(f"{database!r} belongs to a live database chat.",
                                  "Connect the live database in a chat of your own.")
        now = _now()
        chat = Chat(id=chat_id, name=_clean_name(name), database=database or "",
                    subject_sql=subject_sql.strip(), subject_label=scrub(subject_label)[:200],
                    created_at=now, updated_at=now, owner=self.user.id)
        self._write(chat, deleted=False)
        return chat

    def get(self, chat_id: str) -> Chat:
        rows = self.ch.internal_query(
            "SELECT * FROM helios.chats FINAL WHERE id = {id:String} AND deleted = 0", {"id": str(chat_id)})
        if not rows:
            raise _not_found(chat_id)
        chat = self._chat(rows[0])
        check_read(self.user, chat.owner, chat.shared_with, _not_found(chat_id))
        return chat

    def _for_change(self, chat_id: str) -> Chat:
        chat = self.get(chat_id)
        check_change(self.user, chat.owner, chat.shared_with, _not_found(chat_id), f"the chat {chat.name!r}")
        return chat

    def can_change(self, chat: Chat) -> bool:
        """Whether the acting user may post to, rename, share or delete this chat (pages hide those otherwise)."""
        from helios_core.users import can_change
        return can_change(self.user, chat.owner)

    def list(self, all_users: bool = False) -> list[Chat]:
        """The acting user's chats and those shared with them (an admin's ``all_users``: everyone's)."""
        where, params = visible_where(self.user, shared=True, all_users=all_users)
        rows = self.ch.internal_query(
            f"SELECT * FROM helios.chats FINAL WHERE deleted = 0 AND {where} "
            "ORDER BY updated_at DESC, created_at DESC", params)
        return [self._chat(r) for r in rows]

    def share(self, chat_id: str, shared_with: Any) -> Chat:
        """Share read-only with these users (``*``: everyone); an empty list stops sharing."""
        chat = self._for_change(chat_id)
        chat.shared_with = clean_shared_with(shared_with)
        chat.updated_at = _now()
        self._write(chat, deleted=False)
        return chat

    def rename(self, chat_id: str, name: str) -> Chat:
        chat = self._for_change(chat_id)
        chat.name = _clean_name(name)
        chat.updated_at = _now()
        self._write(chat, deleted=False)
        return chat

    def touch(self, chat: Chat) -> None:
        chat.updated_at = _now()
        self._write(chat, deleted=False)

    def delete(self, chat_id: str) -> None:
        chat = self._for_change(chat_id)
        chat.updated_at = _now()
        self._write(chat, deleted=True)
        # The messages go too: a deleted chat keeps nothing around.
        self.ch.execute("DELETE FROM helios.chat_messages WHERE chat_id = {id:String}", {"id": chat_id})
        if chat.database.startswith(live.STANDIN_PREFIX):
            live.forget(self.ch, chat_id)  # a live database's password leaves memory, its stand-ins go

    def _write(self, chat: Chat, deleted: bool) -> None:
        row = [chat.id, chat.name, chat.database, chat.subject_sql, chat.subject_label, chat.created_at,
               chat.updated_at, int(deleted), next_version(), chat.owner, list(chat.shared_with)]
        self.ch.insert_rows("chats", [row], _CHAT_COLUMNS, database=METADATA_DB)

    @staticmethod
    def _chat(row: dict[str, Any]) -> Chat:
        return Chat(id=row["id"], name=row["name"], database=row["database"], subject_sql=row["subject_sql"],
                    subject_label=row["subject_label"], created_at=row["created_at"], updated_at=row["updated_at"],
                    owner=owner_of(row.get("owner")), shared_with=list(row.get("shared_with") or []))

    # ---- messages -----------------------------------------------------------

    # builtins.list: inside this class, ``list`` is the method that lists chats
    def add_turn(self, chat_id: str, messages: builtins.list[NewMessage]) -> builtins.list[Message]:
        """Append messages as one turn (a question or an answer), in order, in one insert."""
        for m in messages:
            if m.role not in ROLES:
                raise ValidationError(f"Unknown role {m.role!r}.")
            if m.content_type not in CONTENT_TYPES:
                raise ValidationError(f"Unknown content type {m.content_type!r}.")
        self._for_change(chat_id)  # a chat shared read-only takes no questions from its readers
        with self._lock:
            last = self.ch.internal_query(
                "SELECT max(seq) AS seq, max(turn) AS turn, count() AS n FROM helios.chat_messages "
                "WHERE chat_id = {id:String}", {"id": chat_id})[0]
            seq = int(last["seq"]) + 1 if last["n"] else 0
            turn = int(last["turn"]) + 1 if last["n"] else 0
            now = _now()
            stored: builtins.list[Message] = []
            rows = []
            for i, m in enumerate(messages):
                text: str = m.content if isinstance(m.content, str) else json.dumps(m.content, default=str)
                text = scrub(text)
                rows.append([chat_id, seq + i, turn, m.role, m.content_type, text, now])
                stored.append(Message(chat_id, seq + i, turn, m.role, m.content_type,
                                      _decode(m.content_type, text), now))
            if rows:
                self.ch.insert_rows("chat_messages", rows, _MESSAGE_COLUMNS, database=METADATA_DB)
        return stored

    def _visible(self, chat_id: str) -> bool:
        """Whether the chat exists for the acting user (a deleted chat, or another's, has no messages)."""
        try:
            self.get(chat_id)
        except NotFound:
            return False
        return True

    def messages(self, chat_id: str) -> builtins.list[Message]:
        if not self._visible(chat_id):
            return []
        rows = self.ch.internal_query(
            "SELECT * FROM helios.chat_messages WHERE chat_id = {id:String} ORDER BY seq", {"id": chat_id})
        return [Message(r["chat_id"], int(r["seq"]), int(r["turn"]), r["role"], r["content_type"],
                        _decode(r["content_type"], r["content"]), r["created_at"]) for r in rows]

    def last_query(self, chat_id: str) -> dict[str, Any] | None:
        """The content of the chat's most recent ``query`` message (for follow-ups)."""
        if not self._visible(chat_id):
            return None
        rows = self.ch.internal_query(
            "SELECT content FROM helios.chat_messages WHERE chat_id = {id:String} AND content_type = 'query' "
            "AND NOT JSONExtractBool(content, 'failed') ORDER BY seq DESC LIMIT 1", {"id": chat_id})
        return _decode("query", rows[0]["content"]) if rows else None


def _decode(content_type: str, text: str) -> Any:
    if content_type == "text":
        return text
    try:
        return json.loads(text)
    except ValueError:
        return {"error": "unreadable message"}


def safe_subject_label(sql: str, limit: int = 80) -> str:
    """A one-line label for a query subject (URLs inside masked)."""
    line = scrub(" ".join(sql.split()))
    return line if len(line) <= limit else line[: limit - 1] + "…"
