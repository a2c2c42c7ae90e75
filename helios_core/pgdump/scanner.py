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
    """One field of COPY text format: ``\\N`` is NULL; backslash escapes (also octal and hex) decoded.

    Octal/hex escapes denote bytes in the dump's ``encoding`` (a Python codec, see :func:`pg_codec`). Bytes that
    encoding cannot decode come back as lone surrogates, like the raw ones :func:`line_source` reads, so the
    loader can refuse the row (:func:`has_undecodable`) instead of loading altered text.
    """
    if raw == "\\N":
        return None
    if "\\" not in raw:
        return raw
    out = bytearray()
    done: list[str] = []

    def add_text(text: str) -> None:
        try:
            out.extend(text.encode(encoding, "surrogateescape"))
        except UnicodeEncodeError:  # text given as str may hold characters the dump's encoding has not
            done.append(out.decode(encoding, "surrogateescape"))
            out.clear()
            done.append(text)

    pos = 0
    for m in _COPY_ESCAPE.finditer(raw):
        add_text(raw[pos:m.start()])
        octal, hexa, char = m.groups()
        if octal:
            out.append(int(octal, 8) & 0xFF)
        elif hexa:
            out.append(int(hexa, 16))
        elif char in _SIMPLE_ESCAPES:
            out.extend(_SIMPLE_ESCAPES[char])
        else:
            add_text(char)
        pos = m.end()
    add_text(raw[pos:])
    done.append(out.decode(encoding, "surrogateescape"))
    return "".join(done)


_UNDECODABLE = re.compile("[\ud800-\udfff]")


def has_undecodable(text: str) -> bool:
    """Whether ``text`` holds bytes the dump's encoding could not decode (read as lone surrogates)."""
    return not text.isascii() and _UNDECODABLE.search(text) is not None


def show_undecodable(text: str) -> str:
    """``text`` with its undecodable bytes written as ``\\xNN``, so it can be stored and shown."""
    if not has_undecodable(text):
        return text
    # surrogateescape reads byte b as U+DC00+b; any other lone surrogate cannot be a byte.
    return _UNDECODABLE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}" if "\udc80" <= m.group() <= "\udcff"
                            else "\ufffd", text)


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


# PostgreSQL's encoding names and aliases, as PostgreSQL compares them (case and punctuation ignored: "win-1252" is
# WIN1252) → the Python codec that reads the same bytes. PostgreSQL encodings Python has no codec for (EUC_TW,
# MULE_INTERNAL) are left out, so they are refused by name rather than read wrongly.
_PG_CODECS = {
    "utf8": "utf-8", "unicode": "utf-8",
    "latin1": "iso8859-1", "latin2": "iso8859-2", "latin3": "iso8859-3", "latin4": "iso8859-4",
    "latin5": "iso8859-9", "latin6": "iso8859-10", "latin7": "iso8859-13", "latin8": "iso8859-14",
    "latin9": "iso8859-15", "latin10": "iso8859-16",
    "iso88591": "iso8859-1", "iso88592": "iso8859-2", "iso88593": "iso8859-3", "iso88594": "iso8859-4",
    "iso88599": "iso8859-9", "iso885910": "iso8859-10", "iso885913": "iso8859-13", "iso885914": "iso8859-14",
    "iso885915": "iso8859-15", "iso885916": "iso8859-16",
    "iso88595": "iso8859-5", "iso88596": "iso8859-6", "iso88597": "iso8859-7", "iso88598": "iso8859-8",
    "win1250": "cp1250", "win1251": "cp1251", "win1252": "cp1252", "win1253": "cp1253", "win1254": "cp1254",
    "win1255": "cp1255", "win1256": "cp1256", "win1257": "cp1257", "win1258": "cp1258",
    "win": "cp1251", "tcvn": "cp1258", "tcvn5712": "cp1258", "abc": "cp1258", "vscii": "cp1258",
    "win866": "cp866", "alt": "cp866", "win874": "cp874",
    "koi8r": "koi8-r", "koi8": "koi8-r", "koi8u": "koi8-u",
    "eucjp": "euc-jp", "eucjis2004": "euc-jis-2004", "euckr": "euc-kr", "euccn": "gb2312",
    "sjis": "cp932", "mskanji": "cp932", "shiftjis": "cp932", "win932": "cp932", "windows932": "cp932",
    "shiftjis2004": "shift-jis-2004", "big5": "cp950", "win950": "cp950", "windows950": "cp950",
    "gbk": "gbk", "win936": "gbk", "windows936": "gbk", "gb18030": "gb18030",
    "uhc": "cp949", "win949": "cp949", "windows949": "cp949", "johab": "johab",
}


def pg_codec(name: str) -> str:
    """The Python codec for a PostgreSQL encoding name (``SET client_encoding = 'LATIN1'`` → ``iso8859-1``)."""
    key = re.sub(r"[^0-9a-z]", "", name.lower())
    if key == "sqlascii":
        # SQL_ASCII means PostgreSQL never checked the bytes: they may be UTF-8, LATIN1 or a mix. Reading them as
        # latin-1 would keep every byte but turn UTF-8 text (the usual case) into mojibake without a word, so
        # the dump is refused and the user says which encoding the text really is in.
        raise ValidationError(
            "The dump's client_encoding is SQL_ASCII, which does not say how its text is encoded.",
            "Dump it again naming the encoding its text is really in (pg_dump --encoding=UTF8, or LATIN1, "
            "WIN1252, …), or change the dump's SET client_encoding line to that encoding.")
    codec = _PG_CODECS.get(key)
    if codec is None:
        raise ValidationError(
            f"The dump's client_encoding {name!r} is not one Helios can read.",
            "Dump it again with pg_dump --encoding=UTF8 (PostgreSQL converts the text as it writes).")
    return codec


_CLIENT_ENCODING = re.compile(r"^\s*SET\s+client_encoding\s*(?:=|\bTO\b)\s*'?([^';\s]+)'?",
                              re.IGNORECASE | re.MULTILINE)


def client_encoding(statement: str) -> str | None:
    """The encoding a ``SET client_encoding`` statement names (None for other statements)."""
    m = _CLIENT_ENCODING.match(statement)
    return m.group(1) if m else None


def detect_encoding(head: str) -> str:
    """The Python codec of a dump whose first lines are ``head`` (UTF-8 when it sets no client_encoding)."""
    m = _CLIENT_ENCODING.search(head)
    return pg_codec(m.group(1)) if m else "utf-8"
