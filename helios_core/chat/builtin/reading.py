"""Reading a question: fixed phrases lifted out by patterns, the rest matched against the lexicon."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from helios_core.chat.builtin.lexicon import Lexicon, Meaning
from helios_core.chat.builtin.plan import Window
from helios_core.chat.builtin.vocabulary import (
    ENTITY_ALIASES,
    FOLLOW_START,
    KEYWORDS,
    NUM,
    NUMBER_WORDS,
    PHRASES,
    PRONOUNS,
    STOPWORDS,
    UNITS,
    VERBS,
    stem,
)


@dataclass
class Item:
    kind: str                    # mention | agg | rate | by | neg | prep | and | word | cmp | marker | …
    text: str
    arg: str = ""
    meanings: list[Meaning] = field(default_factory=list)
    data: Any = None


def has_meaning(item: Item, kind: str) -> bool:
    return any(m.kind == kind for m in item.meanings)


@dataclass
class Reading:
    """Everything recognised in one question, before it is tied to tables."""

    items: list[Item]
    window: Window | None = None
    clear_window: bool = False
    grains: list[str] = field(default_factory=list)
    chart: str = ""
    limit: int = 0
    order: str = ""
    superlative: str = ""        # "which … has the most …": max/min when nothing is grouped
    rank_by_count: bool = False
    latest: str = ""             # "latest 5 …" (desc) or "first 5 …" (asc): rows by time
    follow_marker: bool = False
    question_lower: str = ""
    unknown: list[str] = field(default_factory=list)


_WINDOW_PATTERNS = [
    (re.compile(r"\b(?:in|during|over|for|within|from)?\s*(?:the\s+)?(?:last|past|previous|recent|trailing)\s+"
                + NUM + r"\s*(minutes?|mins?|hours?|hrs?|h|days?|d|weeks?|w|months?|years?)\b", re.I), "last_n"),
    (re.compile(r"\b(?:in|during|over|for|within|from)?\s*(?:the\s+)?(?:last|past|previous)\s+"
                r"(minute|hour|day|week|month|year)\b", re.I), "last_1"),
    (re.compile(r"\b(?:for|on|from|since)?\s*(today|yesterday)(?:'s)?\b", re.I), "day"),
    (re.compile(r"\b(?:in|during|for)?\s*this\s+(week|month|year)\b", re.I), "this"),
]
_ALL_TIME = re.compile(r"\b(?:for\s+|over\s+|across\s+|in\s+)?(?:all[- ]time|of all time|the whole period|"
                       r"all dates|all days|any time|ever)\b", re.I)
_GRAIN_PATTERNS = [
    (re.compile(r"\b(?:per|by|each|every|a|for each|for every|in each|broken down by|split by|grouped by|group by)"
                r"\s+(minute|hour|day|date|week|month|year)\b", re.I), None),
    (re.compile(r"\b(minutely|hourly|daily|weekly|monthly|yearly)\b", re.I), None),
    (re.compile(r"\b(over time|trend|time series|day by day|timeline)\b", re.I), "day"),
]
_GRAIN_WORDS = {"minute": "minute", "hour": "hour", "day": "day", "date": "day", "week": "week", "month": "month",
                "year": "year", "minutely": "minute", "hourly": "hour", "daily": "day", "weekly": "week",
                "monthly": "month", "yearly": "year"}
_CHART_PATTERNS = [
    re.compile(r"\b(?:as|in|into|to|with|using)?\s*(?:a\s+|an\s+)?(bar|line|scatter|area|pie|column)\s*"
               r"(?:chart|graph|plot|diagram)s?\b", re.I),
    re.compile(r"\b(?:as|into|to)\s+(?:a\s+|an\s+)?(bars?|lines?|scatter|area|pie|table)\b", re.I),
]
_TOP_PATTERNS = [
    re.compile(r"\b(top|bottom|highest|lowest|best|worst|largest|biggest|smallest|greatest)\s+" + NUM + r"\b",
               re.I),
    re.compile(r"\b" + NUM + r"\s+(most|least|highest|lowest|largest|smallest|biggest|top|bottom|best|worst|fewest)\b",
               re.I),
    re.compile(r"\b(top|bottom)\b", re.I),
]
_LATEST = re.compile(r"\b(latest|newest|last|most recent|recent|oldest|earliest|first)\s+" + NUM + r"\b", re.I)
_MOST_COMMON = re.compile(r"\b(most|least)\s+(common|popular|frequent|used|active|visited|viewed|frequently used)\b",
                          re.I)
_WHICH = re.compile(r"^\s*(?:in|for|on|at)?\s*(which|what)\b", re.I)
_SUPERLATIVE = re.compile(r"\b(?:the\s+)?(most|highest|largest|biggest|greatest|best|fewest|least|lowest|smallest|"
                          r"worst|top)\b", re.I)
_SORT = re.compile(r"\b(?:sort(?:ed)?|order(?:ed)?)?\s*(?:in\s+)?(ascending|descending|asc|desc)(?:\s+order)?\b|"
                   r"\b(lowest|smallest|fewest|highest|largest|biggest) first\b", re.I)
_COMPARE = re.compile(
    r"\b(more than|greater than|higher than|larger than|bigger than|longer than|older than|over|above|exceeding|"
    r"at least|no less than|less than|fewer than|lower than|smaller than|shorter than|younger than|under|below|"
    r"at most|no more than|equal to|equals|exactly)\s*\$?(\d+(?:\.\d+)?)\s*(k|ms|s|sec|seconds|years?)?(?![\w.])"
    r"|(>=|<=|>|<|=)\s*\$?(\d+(?:\.\d+)?)", re.I)
_BETWEEN = re.compile(r"\bbetween\s+\$?(\d+(?:\.\d+)?)\s+and\s+\$?(\d+(?:\.\d+)?)\b", re.I)
_CMP_OPS = {"more than": ">", "greater than": ">", "higher than": ">", "larger than": ">", "bigger than": ">",
            "longer than": ">", "older than": ">", "over": ">", "above": ">", "exceeding": ">", "at least": ">=",
            "no less than": ">=", "less than": "<", "fewer than": "<", "lower than": "<", "smaller than": "<",
            "shorter than": "<", "younger than": "<", "under": "<", "below": "<", "at most": "<=",
            "no more than": "<=", "equal to": "=", "equals": "=", "exactly": "=", ">=": ">=", "<=": "<=", ">": ">",
            "<": "<", "=": "="}
_TOKEN = re.compile(r"__\w+?__|/[A-Za-z0-9_\-/.]*|[A-Za-z][A-Za-z0-9_]*(?:'[a-z]+)?|\d+(?:\.\d+)?|%|#")


def _number(text: str) -> int:
    text = text.lower()
    return int(text) if text.isdigit() else NUMBER_WORDS.get(text, 0)


def read_question(question: str, lex: Lexicon) -> Reading:
    text = " " + question.strip().rstrip("?.!") + " "
    for pattern, replacement in PHRASES:
        text = pattern.sub(replacement, text)
    reading = Reading(items=[])
    lowered = text.lower()
    reading.question_lower = lowered.strip()
    tokens = set(re.findall(r"[a-z]+", lowered))
    reading.follow_marker = lowered.strip().startswith(FOLLOW_START) or " instead" in lowered \
        or bool(tokens & PRONOUNS)

    def cut(match: re.Match, marker: str = " ") -> None:
        nonlocal text
        text = text[: match.start()] + f" {marker} " + text[match.end():]

    m = _ALL_TIME.search(text)
    if m:
        reading.clear_window = True
        cut(m)
    for pattern, kind in _WINDOW_PATTERNS:
        m = pattern.search(text)
        if not m:
            continue
        if kind == "last_n":
            amount, unit = _number(m.group(1)), UNITS[m.group(2).lower()]
            reading.window = Window("last", amount or 1, unit)
        elif kind == "last_1":
            reading.window = Window("last", 1, UNITS[m.group(1).lower()])
        elif kind == "day":
            reading.window = Window(m.group(1).lower())
        else:
            reading.window = Window("this", 1, m.group(1).lower())
        cut(m, "__window__")
        break
    for pattern, fixed in _GRAIN_PATTERNS:
        while True:
            m = pattern.search(text)
            if not m:
                break
            reading.grains.append(fixed or _GRAIN_WORDS[m.group(1).lower()])
            cut(m, "__grain__")
    for pattern in _CHART_PATTERNS:
        m = pattern.search(text)
        if m:
            kind = m.group(1).lower().rstrip("s")
            reading.chart = {"pie": "bar", "column": "bar", "bar": "bar", "line": "line", "scatter": "scatter",
                             "area": "area", "table": "table"}.get(kind, "bar")
            cut(m)
            break
    m = _SORT.search(text)
    if m:
        word = (m.group(1) or m.group(2) or "").lower()
        reading.order = "asc" if word in ("ascending", "asc", "lowest", "smallest", "fewest") else "desc"
        cut(m)
    m = _LATEST.search(text)
    if m and _number(m.group(2)) > 0:
        reading.limit = _number(m.group(2))
        reading.latest = "asc" if m.group(1).lower() in ("oldest", "earliest", "first") else "desc"
        cut(m, "__latest__")
    m = _MOST_COMMON.search(text)
    if m:
        reading.rank_by_count = True
        reading.order = "desc" if m.group(1).lower() == "most" else "asc"
        reading.limit = 1
        cut(m, "__top__")
    for i, pattern in enumerate(_TOP_PATTERNS):
        if reading.limit:
            break
        m = pattern.search(text)
        if not m:
            continue
        if i == 0:
            word, n = m.group(1).lower(), _number(m.group(2))
        elif i == 1:
            n, word = _number(m.group(1)), m.group(2).lower()
        else:
            word, n = m.group(1).lower(), 10
        if n <= 0:
            continue
        reading.limit = n
        reading.order = "asc" if word in ("bottom", "lowest", "worst", "smallest", "least", "fewest") else "desc"
        cut(m, "__top__")
        break
    if _WHICH.match(text) and not reading.limit:
        m = _SUPERLATIVE.search(text)
        if m:
            word = m.group(1).lower()
            reading.superlative = word
            reading.order = "asc" if word in ("fewest", "least", "lowest", "smallest", "worst") else "desc"
            reading.limit = 1
            w = _WHICH.match(text)
            assert w is not None  # the same text matched just above
            text = text[: m.start()] + " __sup__ " + text[m.end():]
            text = text[: w.start(1)] + "__which__" + text[w.end(1):]
    compares: list[tuple[str, list[float], str]] = []
    while True:
        m = _BETWEEN.search(text)
        if not m:
            break
        compares.append(("between", [_num(m.group(1)), _num(m.group(2))], ""))
        cut(m, f"__cmp{len(compares) - 1}__")
    while True:
        m = _COMPARE.search(text)
        if not m:
            break
        if m.group(1):
            op, value, unit = _CMP_OPS[m.group(1).lower()], _num(m.group(2)), (m.group(3) or "").lower()
            if unit == "k":
                value *= 1000
        else:
            op, value, unit = _CMP_OPS[m.group(4)], _num(m.group(5)), ""
        word = (m.group(1) or "").lower()
        hint = "age" if word in ("older than", "younger than") else (
            "duration" if word in ("longer than", "shorter than") else "")
        compares.append((op, [value], hint))
        cut(m, f"__cmp{len(compares) - 1}__")
    reading.items = _items(text, lex, compares, reading)
    return reading


def _num(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() else value


def _stem_token(token: str, lex: Lexicon) -> str:
    """A word's stem; "customers" reads as "users" only when the schema has no customers of its own."""
    own = stem(token)
    alias = ENTITY_ALIASES.get(own)
    if alias is None or (own,) in lex.phrases:
        return own
    return stem(alias)


def _items(text: str, lex: Lexicon, compares: list, reading: Reading) -> list[Item]:
    raw = [re.sub(r"'s$", "", t) for t in _TOKEN.findall(text)]
    lower = [t.lower() for t in raw]
    stems = [_stem_token(t, lex) if not t.startswith("__") else t for t in lower]
    items: list[Item] = []
    i = 0
    while i < len(raw):
        tok = raw[i]
        if tok.startswith("__"):
            name = tok.strip("_")
            if name.startswith("cmp"):
                op, values, hint = compares[int(name[3:])]
                items.append(Item("cmp", tok, op, data=(values, hint)))
            else:
                items.append(Item("marker", tok, name))
            i += 1
            continue
        # Upper-case codes (US, DE, EUR) match only as written, so "in" and "us" stay words.
        if tok in lex.codes:
            items.append(Item("mention", tok, meanings=list(lex.codes[tok])))
            i += 1
            continue
        best_kw, best_lex = 0, 0
        for n in range(min(4, len(raw) - i), 0, -1):
            if not best_kw and tuple(lower[i:i + n]) in KEYWORDS:
                best_kw = n
            if not best_lex and n <= lex.max_len and lex.lookup(tuple(stems[i:i + n])):
                best_lex = n
        if best_lex and best_lex >= best_kw and not (best_lex == 1 and lower[i] in STOPWORDS
                                                     and tuple(lower[i:i + 1]) in KEYWORDS):
            n = best_lex
            items.append(Item("mention", " ".join(raw[i:i + n]), meanings=list(lex.lookup(tuple(stems[i:i + n])))))
            i += n
            continue
        if best_kw:
            n = best_kw
            kind, arg = KEYWORDS[tuple(lower[i:i + n])]
            items.append(Item(kind, " ".join(lower[i:i + n]), arg))
            i += n
            continue
        if lower[i] in VERBS:
            items.append(Item("verb", lower[i]))
        elif lower[i] in STOPWORDS or lower[i] in NUMBER_WORDS:
            items.append(Item("stop", lower[i]))
        elif re.fullmatch(r"\d+(\.\d+)?", lower[i]):
            items.append(Item("number", lower[i]))
        else:
            items.append(Item("word", raw[i]))
            reading.unknown.append(raw[i])
        i += 1
    return items
