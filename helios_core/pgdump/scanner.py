"""Reading a plain dump's text: line sources, the statement scanner, COPY text fields, array literals, and a
small SQL tokenizer for the DDL and INSERT statements. Pure: no engine, no plan."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helios_core.errors import ValidationError

LineSource = Callable[[], Iterator[str]]

# ---- reading the dump: statements and COPY data -------------------------------------------------------


@dataclass
class Statement:
    kind: str        # "sql", "copy" or "meta" (a psql backslash command such as \connect or \restrict)
    text: str
    line: int


class DumpScanner:
    """Splits dump text into statements, honouring quotes, dollar quotes and comments.

    After a ``COPY … FROM stdin`` statement is yielded, :meth:`copy_rows` gives
    its data lines; whatever the caller does not read is skipped.
    """

    _DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
    _COPY = re.compile(r"^\s*COPY\s.+\sFROM\s+stdin\b", re.IGNORECASE | re.DOTALL)

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self.line_no = 0
        self._copy_open = False

    def _next_line(self) -> str | None:
        try:
            line = next(self._lines)
        except StopIteration:
            return None
        self.line_no += 1
        return line

    def copy_rows(self) -> Iterator[tuple[int, str]]:
        """Data lines of the COPY just yielded (without the line ending), up to ``\\.``."""
        while self._copy_open:
            line = self._next_line()
            if line is None:
                self._copy_open = False
                return
            text = line[:-1] if line.endswith("\n") else line
            if text.endswith("\r"):
                text = text[:-1]
            if text == "\\.":
                self._copy_open = False
                return
            yield self.line_no, text

    def statements(self) -> Iterator[Statement]:
        buf: list[str] = []
        state = ""          # "", "'", "E'", '"', "$", "/*"
        tag = ""            # the dollar-quote tag
        depth = 0           # nested block comments
        start_line = 0
        started = False     # the current statement has a non-blank character
        while True:
            line = self._next_line()
            if line is None:
                break
            if not state and not started and line.lstrip().startswith("\\"):
                yield Statement("meta", line.strip(), self.line_no)
                buf = []
                continue
            i, n = 0, len(line)
            while i < n:
                c = line[i]
                if not state:
                    if c == "-" and line.startswith("--", i):
                        buf.append("\n")
                        break
                    if c == "/" and line.startswith("/*", i):
                        state, depth = "/*", 1
                        i += 2
                        continue
                    if c == "'":
                        prev = "".join(buf[-2:])
                        e_string = len(prev) >= 1 and prev[-1] in "eE" and (len(prev) < 2 or not
                                                                             (prev[-2].isalnum() or prev[-2] == "_"))
                        state = "E'" if e_string else "'"
                    elif c == '"':
                        state = '"'
                    elif c == "$":
                        m = self._DOLLAR.match(line, i)
                        prev = "".join(buf[-1:])
                        if m and not (prev and (prev[-1].isalnum() or prev[-1] == "_")):
                            state, tag = "$", m.group(0)
                            buf.append(tag)
                            i += len(tag)
                            continue
                    elif c == ";":
                        text = "".join(buf).strip()
                        buf, started = [], False
                        if text:
                            if self._COPY.match(text):
                                self._copy_open = True
                                yield Statement("copy", text, start_line)
                                for _ in self.copy_rows():  # the caller did not read them: skip
                                    pass
                                break  # nothing follows ``FROM stdin;`` on its line
                            yield Statement("sql", text, start_line)
                        i += 1
                        continue
                    if not started and not c.isspace():
                        started, start_line = True, self.line_no
                    buf.append(c)
                    i += 1
                    continue
                if state == "/*":
                    if line.startswith("*/", i):
                        depth -= 1
                        i += 2
                        if depth == 0:
                            state = ""
                            buf.append(" ")
                        continue
                    if line.startswith("/*", i):
                        depth += 1
                        i += 2
                        continue
                    i += 1
                    continue
                if state == "$":
                    end = line.find(tag, i)
                    if end == -1:
                        buf.append(line[i:])
                        break
                    buf.append(line[i:end + len(tag)])
                    i = end + len(tag)
                    state = ""
                    continue
                if state == "E'" and c == "\\" and i + 1 < n:
                    buf.append(line[i:i + 2])
                    i += 2
                    continue
                quote = '"' if state == '"' else "'"
                if c == quote:
                    if i + 1 < n and line[i + 1] == quote:
                        buf.append(c + c)
                        i += 2
                        continue
                    state = ""
                buf.append(c)
                i += 1
        text = "".join(buf).strip()
        if text:
            yield Statement("sql", text, start_line or self.line_no)


# ---- COPY text format and array literals -------------------------------------------------------------

_COPY_ESCAPE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|(.))", re.DOTALL)
_SIMPLE_ESCAPES = {"b": b"\b", "f": b"\f", "n": b"\n", "r": b"\r", "t": b"\t", "v": b"\v"}


def decode_copy_field(raw: str, encoding: str = "utf-8") -> str | None:
    """One field of COPY text format: ``\\N`` is NULL; backslash escapes (also octal and hex) decoded."""
    if raw == "\\N":
        return None
    if "\\" not in raw:
        return raw
    # Octal/hex escapes denote bytes in the dump's encoding, so decode to bytes first.
    out = bytearray()
    pos = 0
    for m in _COPY_ESCAPE.finditer(raw):
        out += raw[pos:m.start()].encode(encoding, "surrogateescape")
        octal, hexa, char = m.groups()
        if octal:
            out.append(int(octal, 8) & 0xFF)
        elif hexa:
            out.append(int(hexa, 16))
        else:
            out += _SIMPLE_ESCAPES.get(char, char.encode(encoding, "surrogateescape"))
        pos = m.end()
    out += raw[pos:].encode(encoding, "surrogateescape")
    return out.decode(encoding, "replace")


def split_copy_line(line: str) -> list[str]:
    return line.split("\t")


def parse_pg_array(text: str) -> list[Any]:
    """A PostgreSQL array literal ``{a,"b c",NULL,{1,2}}`` → nested lists of text (None for NULL)."""
    text = text.strip()
    if text.startswith("[") and "=" in text[:40]:  # explicit bounds: [0:2]={1,2,3}
        text = text.split("=", 1)[1].strip()
    if not text.startswith("{"):
        raise ValueError(f"{text[:40]!r} is not an array literal (expected {{…}})")
    value, pos = _parse_array_at(text, 0)
    if text[pos:].strip():
        raise ValueError("unexpected text after the array's closing brace")
    return value


def _parse_array_at(text: str, pos: int) -> tuple[list[Any], int]:
    assert text[pos] == "{"
    pos += 1
    items: list[Any] = []
    n = len(text)
    expecting = True
    while pos < n:
        c = text[pos]
        if c.isspace():
            pos += 1
            continue
        if c == "}":
            return items, pos + 1
        if c == ",":
            pos += 1
            expecting = True
            continue
        if not expecting:
            raise ValueError("missing comma between array elements")
        if c == "{":
            inner, pos = _parse_array_at(text, pos)
            items.append(inner)
        elif c == '"':
            pos += 1
            chars: list[str] = []
            while pos < n and text[pos] != '"':
                if text[pos] == "\\" and pos + 1 < n:
                    pos += 1
                chars.append(text[pos])
                pos += 1
            if pos >= n:
                raise ValueError("unterminated quoted array element")
            items.append("".join(chars))
            pos += 1
        else:
            chars = []
            while pos < n and text[pos] not in ",}":
                if text[pos] == "\\" and pos + 1 < n:
                    pos += 1
                chars.append(text[pos])
                pos += 1
            word = "".join(chars).strip()
            items.append(None if word.upper() == "NULL" else word)
        expecting = False
    raise ValueError("unterminated array literal (missing })")


# ---- a small SQL tokenizer for the DDL and INSERT statements ------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<dq>"(?:[^"]|"")*")
  | (?P<estr>[Ee]'(?:[^'\\]|\\.|'')*')
  | (?P<str>'(?:[^']|'')*')
  | (?P<dollar>\$(?P<tag>(?:[A-Za-z_][A-Za-z0-9_]*)?)\$.*?\$(?P=tag)\$)
  | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<cast>::)
  | (?P<punct>[(),;\[\].])
  | (?P<op>[-+*/<>=~!@#%^&|`?:]+)
""", re.VERBOSE | re.DOTALL)

_E_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


@dataclass
class Token:
    kind: str     # ident, word, str, num, cast, punct, op, dollar
    value: str    # idents: the name (unquoted); words: as written; strings: the decoded text

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.value.upper() in words


def _unescape_e_string(body: str) -> str:
    def repl(m: re.Match[str]) -> str:
        octal, hexa, char = m.groups()
        if octal:
            return chr(int(octal, 8))
        if hexa:
            return chr(int(hexa, 16))
        return _E_ESCAPES.get(char, char)
    return _COPY_ESCAPE.sub(repl, body.replace("''", "'"))


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"cannot read the statement near {text[pos:pos + 30]!r}")
        pos = m.end()
        kind = m.lastgroup
        assert kind is not None  # every alternative of _TOKEN is a named group
        if kind == "tag":
            kind = "dollar"
        value = m.group(0)
        if kind == "ws":
            continue
        if m.group("dollar") is not None:
            tokens.append(Token("dollar", value))
        elif kind == "dq":
            tokens.append(Token("ident", value[1:-1].replace('""', '"')))
        elif kind == "estr":
            tokens.append(Token("str", _unescape_e_string(value[2:-1])))
        elif kind == "str":
            tokens.append(Token("str", value[1:-1].replace("''", "'")))
        else:
            tokens.append(Token(kind, value))
    return tokens


def name_value(tok: Token) -> str:
    # Unquoted identifiers fold to lower case in PostgreSQL.
    return tok.value if tok.kind == "ident" else tok.value.lower()


def read_qualified(tokens: list[Token], pos: int) -> tuple[tuple[str, str], int]:
    parts = [name_value(tokens[pos])]
    pos += 1
    while pos + 1 < len(tokens) and tokens[pos].value == "." and tokens[pos + 1].kind in ("ident", "word"):
        parts.append(name_value(tokens[pos + 1]))
        pos += 2
    schema = parts[-2] if len(parts) >= 2 else "public"
    return (schema, parts[-1]), pos


def matching_paren(tokens: list[Token], pos: int) -> int:
    depth = 0
    for i in range(pos, len(tokens)):
        if tokens[i].value == "(" and tokens[i].kind == "punct":
            depth += 1
        elif tokens[i].value == ")" and tokens[i].kind == "punct":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError("unbalanced parentheses")


def split_top(tokens: list[Token]) -> list[list[Token]]:
    parts: list[list[Token]] = [[]]
    depth = 0
    for tok in tokens:
        if tok.kind == "punct" and tok.value in "([":
            depth += 1
        elif tok.kind == "punct" and tok.value in ")]":
            depth -= 1
        if tok.kind == "punct" and tok.value == "," and depth == 0:
            parts.append([])
            continue
        parts[-1].append(tok)
    return [p for p in parts if p]


def render_tokens(tokens: list[Token]) -> str:
    text = " ".join(t.value if t.kind != "ident" else f'"{t.value}"' for t in tokens)
    text = re.sub(r"\s*([(\[])\s*", r"\1", text)      # numeric(12, 2), integer[]
    text = re.sub(r"\s*([)\]])", r"\1", text)          # keep the space in "timestamp(3) with time zone"
    text = re.sub(r"\s*,\s*", ",", text)
    return re.sub(r"\s*\.\s*", ".", text)


# ---- line sources and the dump's encoding -------------------------------------------------------------


def line_source(data: str | bytes | Path) -> LineSource:
    """A re-openable source of the dump's lines (a file path, bytes, or text)."""
    if isinstance(data, Path):
        path = data
        if not path.is_file():
            raise ValidationError(f"There is no file {path}.", "Check the path to the dump.")
        with path.open("rb") as fh:
            encoding = detect_encoding(fh.read(65536).decode("latin-1"))

        def from_file() -> Iterator[str]:
            with path.open("r", encoding=encoding, errors="surrogateescape", newline="") as fh:
                yield from _lines(fh)
        return from_file
    if isinstance(data, bytes):
        encoding = detect_encoding(data[:65536].decode("latin-1"))
        raw = data

        def from_bytes() -> Iterator[str]:
            yield from _lines(io.TextIOWrapper(io.BytesIO(raw), encoding=encoding, errors="surrogateescape",
                                               newline=""))
        return from_bytes
    text = data

    def from_text() -> Iterator[str]:
        yield from _lines(io.StringIO(text, newline=""))
    return from_text


def _lines(fh: io.TextIOBase) -> Iterator[str]:
    # newline="" keeps a bare "\r" inside a line; only "\n" ends a line (as in COPY data).
    pending = ""
    for chunk in iter(lambda: fh.read(1 << 16), ""):
        pending += chunk
        parts = pending.split("\n")
        pending = parts.pop()
        for part in parts:
            yield part + "\n"
    if pending:
        yield pending


def detect_encoding(head: str) -> str:
    m = re.search(r"SET\s+client_encoding\s*=\s*'([^']+)'", head, re.IGNORECASE)
    name = (m.group(1) if m else "UTF8").upper().replace("-", "").replace("_", "")
    return {"UTF8": "utf-8", "UNICODE": "utf-8", "LATIN1": "latin-1", "ISO88591": "latin-1", "WIN1252": "cp1252",
            "SQLASCII": "utf-8", "LATIN9": "iso8859-15", "WIN1251": "cp1251", "KOI8R": "koi8-r"}.get(name, "utf-8")
