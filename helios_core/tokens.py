"""API tokens: bearer tokens for the HTTP API, stored as hashes in ``helios.api_tokens``.

A token is shown once, when it is created; Helios keeps only its SHA-256, so
neither the metadata tables nor a backup can give a token back. A token is
read-only unless created with ``write`` (then it may change data: inserts,
tables, jobs, chats, and SQL sent with ``"write": true``). A token belongs to
the user who created it; API requests made with it act as that user, and
only they (or an admin) list and revoke it.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from helios_core.errors import NotFound, ValidationError
from helios_core.identifiers import check_identifier
from helios_core.metadata import METADATA_DB, next_version
from helios_core.users import LOCAL_ID, User, acting, can_change, owner_of, ownership_alters, visible_where

if TYPE_CHECKING:
    from helios_core.clickhouse import ClickHouse

TOKEN_PREFIX = "helios_"
CACHE_SECONDS = 5.0   # a token revoked by another process (server ClickHouse) stops working within this
_TABLE = f"{METADATA_DB}.api_tokens"
_COLUMNS = ["id", "name", "token_hash", "write", "created_at", "revoked", "version", "owner"]

METADATA_TABLES = [
    f"""CREATE TABLE IF NOT EXISTS {_TABLE} (
        id String,
        name String,
        token_hash String,
        write UInt8,
        created_at DateTime64(3, 'UTC'),
        revoked UInt8 DEFAULT 0,
        version UInt64
    ) ENGINE = ReplacingMergeTree(version) ORDER BY id""",
]
METADATA_ALTERS = ownership_alters(_TABLE, shared=False)


@dataclass
class ApiToken:
    id: str
    name: str
    write: bool
    created_at: datetime
    revoked: bool = False
    owner: str = LOCAL_ID     # the user the token acts as

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "write": self.write, "created_at": self.created_at.isoformat(),
                "revoked": self.revoked, "owner": self.owner}


@dataclass
class NewToken:
    record: ApiToken
    token: str   # the only time the secret exists outside the client

    def to_json(self) -> dict[str, Any]:
        return {**self.record.to_json(), "token": self.token,
                "note": "Keep this token now: Helios stores only its hash and cannot show it again."}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


_ready: set[int] = set()
_ready_lock = threading.Lock()


def _ensure_table(ch: ClickHouse) -> None:
    # Also created at start-up with the other metadata tables (runtime.RECORD_MODULES lists this module);
    # this keeps tokens working on a connection opened without the runtime (a test's own ClickHouse).
    with _ready_lock:
        if id(ch) in _ready:
            return
        for ddl in [*METADATA_TABLES, *METADATA_ALTERS]:
            ch.execute(ddl)
        _ready.add(id(ch))


def _now() -> datetime:
    return datetime.now(UTC)


def _write(ch: ClickHouse, record: ApiToken, token_hash: str) -> None:
    ch.insert_rows("api_tokens", [[record.id, record.name, token_hash, int(record.write), record.created_at,
                                   int(record.revoked), next_version(), record.owner]], _COLUMNS,
                   database=METADATA_DB)


def create_token(ch: ClickHouse, name: str, write: bool = False, user: User | None = None) -> NewToken:
    """A new token for the acting user (names are unique per user)."""
    me = acting(user)
    name = str(name or "").strip()
    if not name:
        raise ValidationError("missing necessary fields", "Name the token after who uses it, e.g. ci.",
                              missing_fields=["name"])
    problems = check_identifier(name, "token")
    if problems:
        raise ValidationError(problems[0], "Use letters, digits and underscores, e.g. ci or dashboard_1.")
    _ensure_table(ch)
    if any(t.name == name for t in list_tokens(ch, user=me)):
        raise ValidationError(f"A token named {name!r} already exists.", "Revoke it first, or choose another name.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken(id=uuid.uuid4().hex[:12], name=name, write=bool(write), created_at=_now(), owner=me.id)
    _write(ch, record, hash_token(token))
    _cache.clear()
    return NewToken(record, token)


def _rows(ch: ClickHouse, where: str = "1", params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    _ensure_table(ch)
    return ch.internal_query(f"SELECT id, name, token_hash, write, created_at, revoked, owner FROM {_TABLE} FINAL "
                             f"WHERE {where} ORDER BY created_at, id", params or {})


def _record(row: dict[str, Any]) -> ApiToken:
    created = row["created_at"]
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return ApiToken(row["id"], row["name"], bool(row["write"]), created, bool(row["revoked"]),
                    owner_of(row.get("owner")))


def list_tokens(ch: ClickHouse, include_revoked: bool = False, user: User | None = None,
                all_users: bool = False) -> list[ApiToken]:
    """The acting user's tokens (an admin's ``all_users``: everyone's)."""
    where, params = visible_where(acting(user), shared=False, all_users=all_users)
    rows = _rows(ch, ("1" if include_revoked else "revoked = 0") + f" AND {where}", params)
    return [_record(r) for r in rows]


def revoke_token(ch: ClickHouse, id_or_name: str, user: User | None = None) -> ApiToken:
    """Revoke by id or by name (the acting user's; an admin's also by another user's token id); the token
    stops working at once in this process. Another user's token is reported as not found."""
    me = acting(user)
    rows = _rows(ch, "revoked = 0 AND (id = {k:String} OR name = {k:String})", {"k": str(id_or_name)})
    # A name means the acting user's own token; an id reaches another user's only for an admin.
    rows = [r for r in rows if owner_of(r.get("owner")) == me.id or (r["id"] == str(id_or_name)
                                                                    and can_change(me, r.get("owner")))]
    if not rows:
        raise NotFound(f"There is no active token {id_or_name!r}.", "List tokens to see their ids and names.")
    row = rows[0]
    record = _record(row)
    record.revoked = True
    _write(ch, record, row["token_hash"])
    _cache.clear()
    return record


_cache: dict[str, tuple[float, ApiToken | None]] = {}


def cached_token(token: str) -> tuple[bool, ApiToken | None]:
    """``(known, token)`` from memory only: known is False when :func:`verify_token` must ask ClickHouse."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return True, None
    hit = _cache.get(hash_token(token))
    if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
        return True, hit[1]
    return False, None


def verify_token(ch: ClickHouse, token: str) -> ApiToken | None:
    """The active token with this secret, or None. Compared by hash, so timing reveals nothing of it."""
    known, found = cached_token(token)
    if known:
        return found
    digest = hash_token(token)
    now = time.monotonic()
    rows = _rows(ch, "revoked = 0 AND token_hash = {h:String}", {"h": digest})
    found = _record(rows[0]) if rows else None
    if len(_cache) > 10_000:  # many wrong tokens: never grow without bound
        _cache.clear()
    _cache[digest] = (now, found)
    return found
