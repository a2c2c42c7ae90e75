"""Who is acting, and what they may see and change.

Every helios_core function that reads, lists, changes or deletes a record takes
the acting :class:`User`, so the pages, the CLI and the HTTP API enforce one set
of rules. Without an identity provider (no ``[auth]`` in secrets.toml) Helios is
used by one person: the single local user ``local``, an admin, as before
ownership existed; records written before then belong to that user.

Rules: the owner and admins may read, change and delete a record; a report or a
chat may also be shared read-only with named users or ``*`` (everyone). A
record a user may not read is reported as not found (its existence is not
revealed); a record they may read but not change gets :class:`Forbidden`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from helios_core.errors import Forbidden, NotFound, ValidationError

LOCAL_ID = "local"
EVERYONE = "*"
MAX_SHARED = 200


@dataclass(frozen=True)
class User:
    id: str              # a signed-in user's e-mail address (lower case); "local" without an identity provider
    name: str = ""
    is_admin: bool = False

    @property
    def label(self) -> str:
        return f"{self.name} ({self.id})" if self.name and self.name != self.id else self.id


LOCAL = User(LOCAL_ID, "Local user", is_admin=True)
# Background work Helios does on records' behalf (job runner, recovery, ingestion): never a person.
SYSTEM = User("helios", "Helios", is_admin=True)


def normalize_id(value: Any) -> str:
    return str(value or "").strip().lower()


def admin_ids(settings: Any = None) -> frozenset[str]:
    if settings is None:
        from helios_core.config import get_settings
        settings = get_settings()
    return frozenset(normalize_id(a) for a in getattr(settings, "admins", ()) if normalize_id(a))


def sign_in_configured(settings: Any = None) -> bool:
    if settings is None:
        from helios_core.config import get_settings
        settings = get_settings()
    return bool(getattr(settings, "sign_in", False))


def user_for(user_id: Any, name: str = "", settings: Any = None) -> User:
    """The user with this id (an e-mail address, or ``local``), an admin when the settings list them."""
    uid = normalize_id(user_id)
    if not uid:
        raise ValidationError("A user needs an id (their e-mail address).")
    if uid == LOCAL_ID:
        return LOCAL
    return User(uid, str(name or "").strip()[:200], is_admin=uid in admin_ids(settings))


def signed_in_user(identity: Any, name: str = "", settings: Any = None) -> User:
    """The user an identity provider vouched for (their e-mail address). The reserved ids of the local user and
    of Helios itself are refused, so no account named "local" at a provider becomes the local admin."""
    uid = normalize_id(identity)
    if not uid or uid in (LOCAL_ID, SYSTEM.id):
        raise Forbidden(f"The identity provider gave no usable identity ({uid or 'none'!r}).",
                        "Sign in with an account that has an e-mail address.")
    return user_for(uid, name, settings)


def acting(user: User | None) -> User:
    """The acting user; None stands for the single local user, and is refused once sign-in is configured
    (a caller that forgot to say who acts must not act as an admin)."""
    if user is not None:
        return user
    if sign_in_configured():
        raise Forbidden("Helios does not know who is acting (sign-in is configured).",
                        "Sign in first; scripts pass --user or use an API token.")
    return LOCAL


def owner_of(value: Any) -> str:
    """A stored owner; rows written before ownership existed belong to the single local user."""
    return normalize_id(value) or LOCAL_ID


def can_read(user: User, owner: str, shared_with: Iterable[str] = ()) -> bool:
    shared = set(shared_with or ())
    return user.is_admin or owner_of(owner) == user.id or EVERYONE in shared or user.id in shared


def can_change(user: User, owner: str | None) -> bool:
    return user.is_admin or owner_of(owner) == user.id


def check_read(user: User, owner: str, shared_with: Iterable[str], not_found: NotFound) -> None:
    if not can_read(user, owner, shared_with):
        raise not_found


def check_change(user: User, owner: str, shared_with: Iterable[str], not_found: NotFound, what: str) -> None:
    """Owner or admin; someone it was only shared with learns they may not change it, anyone else: not found."""
    if can_change(user, owner):
        return
    if can_read(user, owner, shared_with):
        raise Forbidden(f"Only the owner of {what} ({owner_of(owner)}) or an admin can change it; it is shared "
                        "with you read-only.", "Ask its owner, or make your own copy.")
    raise not_found


def visible_where(user: User, shared: bool, all_users: bool = False) -> tuple[str, dict[str, Any]]:
    """A WHERE condition (bound parameter ``_me``) for the records a user lists: their own plus those shared
    with them; an admin sees everyone's with ``all_users``."""
    if all_users and user.is_admin:
        return "1", {}
    cond = "owner = {_me:String}"
    if shared:
        cond = "(owner = {_me:String} OR has(shared_with, {_me:String}) OR has(shared_with, '*'))"
    return cond, {"_me": user.id}


def clean_shared_with(values: Any) -> list[str]:
    """Named users (e-mail addresses or ``local``) or ``*`` for everyone; duplicates dropped."""
    if isinstance(values, str):
        values = values.replace(";", ",").split(",")
    out: list[str] = []
    for raw in values or ():
        uid = normalize_id(raw)
        if not uid or uid in out:
            continue
        if uid != EVERYONE and (len(uid) > 200 or any(c.isspace() for c in uid)):
            raise ValidationError(f"{uid[:60]!r} is not a user: share with e-mail addresses or * for everyone.")
        out.append(uid)
    if len(out) > MAX_SHARED:
        raise ValidationError(f"Share with at most {MAX_SHARED} users, or with * (everyone).")
    return out


def ownership_alters(table: str, shared: bool) -> list[str]:
    """Statements adding the ownership columns to an existing metadata table (idempotent), so data dirs made
    before ownership keep working: their rows read as the local user's."""
    out = [f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS owner String DEFAULT '{LOCAL_ID}'"]
    if shared:
        out.append(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS shared_with Array(String) DEFAULT []")
    return out
