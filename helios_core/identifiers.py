"""Identifier validation and quoting for every name Helios puts into SQL.

Names are checked against a strict allow-list (no regex blocklist) and then
always quoted with backticks, so even a name that slipped through could not
end the identifier and run anything.
"""

from __future__ import annotations

import re

from helios_core.errors import ValidationError

MAX_LENGTH = 128
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Names that would confuse readers of generated SQL even when quoted.
RESERVED = frozenset("""
all alter and any array as asc between by case cast create database default delete desc describe distinct drop
else end exists explain false final format from full global group having if ilike in inner insert interval into is
join key left like limit not null offset on or order outer over partition prewhere primary right sample select set
settings show system table tables then to true truncate union update use using values view when where window with
""".split())
# ClickHouse's own default database: an ordinary database every server has. Quoted like any other name,
# it is accepted although ``default`` is a reserved word (refusing it refused the server's own database).
BUILTIN_DATABASES = frozenset({"default"})


def check_identifier(name: str, kind: str = "column") -> list[str]:
    """Problems with ``name`` as a database, table or column name (empty when fine)."""
    problems: list[str] = []
    if not isinstance(name, str) or not name:
        return [f"The {kind} name is empty."]
    if len(name) > MAX_LENGTH:
        problems.append(f"The {kind} name {name[:40]!r}… is longer than {MAX_LENGTH} characters.")
    if not _NAME.match(name):
        problems.append(f"The {kind} name {name!r} may use only letters, digits and underscores, "
                        "and must not start with a digit.")
    if name.lower() in RESERVED and not (kind == "database" and name in BUILTIN_DATABASES):
        problems.append(f"The {kind} name {name!r} is a reserved SQL word; choose another (for example {name}_).")
    return problems


def validate_identifier(name: str, kind: str = "column") -> str:
    problems = check_identifier(name, kind)
    if problems:
        raise ValidationError(problems[0], "Rename it and try again.", problems=problems)
    return name


def quote_ident(name: str) -> str:
    """Backtick-quote a name, escaping backslashes and backticks."""
    return "`" + str(name).replace("\\", "\\\\").replace("`", "\\`") + "`"


def qualified(database: str, table: str) -> str:
    return f"{quote_ident(database)}.{quote_ident(table)}"


def sanitize_name(raw: str) -> str:
    """Turn any key (a JSON path, a CSV header) into a valid column name."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", str(raw)).strip("_") or "col"
    if name[0].isdigit():
        name = f"c_{name}"
    if name.lower() in RESERVED:
        name = f"{name}_"
    return name[:MAX_LENGTH]
