"""Phrases → meanings (tables, columns, values), built from one subject's schema and sampled values."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from helios_core.chat.builtin.vocabulary import (
    CONCEPTS,
    COUNTRY_NAMES,
    CURRENCY_NAMES,
    ENTITY_ALIASES,
    GENERIC_ROW_WORDS,
    ROW_TABLE_WORDS,
    STOPWORDS,
    name_words,
    stem,
)
from helios_core.chat.context import SubjectContext, SubjectTable


@dataclass(frozen=True)
class Meaning:
    kind: str                    # table | column | value | rows
    table: str
    column: str = ""
    value: str = ""
    strength: float = 1.0
    agg: str = ""                # the usual aggregate (concepts such as "revenue")
    entity: bool = False         # a column that names an entity kept in its own table (user_id for "users")


def column_kind_of(m: Meaning, ctx: SubjectContext) -> str:
    c = ctx.column(m.table, m.column)
    return c.kind if c else ""


def is_numeric(m: Meaning, ctx: SubjectContext) -> bool:
    return m.kind == "column" and column_kind_of(m, ctx) == "number"


class Lexicon:
    """Phrases (tuples of stems) → meanings, built from one subject's schema and sampled values."""

    def __init__(self, ctx: SubjectContext) -> None:
        self.ctx = ctx
        self.phrases: dict[tuple[str, ...], list[Meaning]] = {}
        self.codes: dict[str, list[Meaning]] = {}
        self.max_len = 1
        self._build()

    def add(self, words: Iterable[str], meaning: Meaning, force: bool = False) -> None:
        key = tuple(stem(w) for w in words)
        if not key or (all(k in STOPWORDS for k in key) and not force):
            return
        bucket = self.phrases.setdefault(key, [])
        for i, existing in enumerate(bucket):
            if (existing.kind, existing.table, existing.column, existing.value) == \
                    (meaning.kind, meaning.table, meaning.column, meaning.value):
                bucket[i] = Meaning(meaning.kind, meaning.table, meaning.column, meaning.value,
                                    max(meaning.strength, existing.strength), existing.agg or meaning.agg,
                                    existing.entity or meaning.entity)
                return
        bucket.append(meaning)
        self.max_len = max(self.max_len, len(key))

    def _build(self) -> None:
        tables = self.ctx.tables
        full_names = {stem(t.name) for t in tables if len(name_words(t.name)) == 1}
        entity_tables = {stem(t.name): t for t in tables if t.is_keyed_by}
        for t in tables:
            words = name_words(t.name)
            self.add(words, Meaning("table", t.name, strength=3.0), force=True)
            if len(words) > 1:
                for w in words:
                    s = stem(w)
                    generic = s in GENERIC_ROW_WORDS or s in full_names or s in STOPWORDS
                    self.add([w], Meaning("table", t.name, strength=0.5 if generic else 2.0))
            for word, hints in ROW_TABLE_WORDS.items():
                if any(h in t.name.lower() for h in hints):
                    self.add([word], Meaning("table", t.name, strength=2.0))
            if any(stem(w) == "event" for w in words) or any("event" in c.name for c in t.columns):
                self.add(["events"], Meaning("rows", t.name, strength=0.5))
            for c in t.columns:
                self._add_column(t, c.name, c.kind)
                for v in c.values:
                    self._add_value(t, c.name, v)
        # Entities: "users" is the users table, and user_id in every table that has it.
        for s, dim in entity_tables.items():
            key = dim.is_keyed_by or ""
            for t in tables:
                if t.column(key) is not None:
                    self.add([s], Meaning("column", t.name, key, strength=1.5, entity=True))
            for alias, target in ENTITY_ALIASES.items():
                if target == s:
                    for m in list(self.phrases.get((s,), [])):
                        self.add([alias], m)
        columns_by_name = [(t, {c.name.lower(): c for c in t.columns}) for t in tables]
        for concept_words, candidates, agg in CONCEPTS:
            for t, names in columns_by_name:
                for cand in candidates:
                    if cand in names:
                        c = names[cand]
                        self.add(concept_words, Meaning("column", t.name, c.name, strength=2.0, agg=agg))
                        break

    def _add_column(self, t: SubjectTable, name: str, kind: str) -> None:
        if kind == "array":
            self.add(name_words(name), Meaning("column", t.name, name, strength=1.0))
            return
        words = name_words(name)
        self.add(words, Meaning("column", t.name, name, strength=3.0))
        if len(words) > 1 and words[-1] in ("id", "ms", "s", "sec", "date", "at", "ts", "uuid", "count", "num",
                                            "name", "code", "time", "type"):
            short = words[:-1]
            if not (len(short) == 1 and (stem(short[0]) in GENERIC_ROW_WORDS or short[0] in STOPWORDS)):
                self.add(short, Meaning("column", t.name, name, strength=2.5 if words[-1] != "count" else 1.5))

    def _add_value(self, t: SubjectTable, column: str, value: str) -> None:
        meaning = Meaning("value", t.name, column, value, strength=3.0)
        if value.isupper() and len(value) <= 3:
            self.codes.setdefault(value, []).append(meaning)
            if len(value) == 3:
                self.add([value.lower()], meaning)
            for name, code in list(COUNTRY_NAMES.items()) + list(CURRENCY_NAMES.items()):
                if code == value:
                    self.add(name.split(), meaning)
            return
        if value.startswith("/"):
            self.add([value.lower()], meaning)
            rest = name_words(value)
            if rest:
                self.add(rest, Meaning("value", t.name, column, value, strength=1.5))
                self.add(rest + ["page"], Meaning("value", t.name, column, value, strength=3.0))
            return
        words = name_words(value)
        if words:
            self.add(words, meaning)

    def lookup(self, stems: tuple[str, ...]) -> list[Meaning]:
        return self.phrases.get(stems, [])


_lexicons: dict[int, tuple[list[SubjectTable], Lexicon]] = {}


def lexicon_for(ctx: SubjectContext) -> Lexicon:
    """The lexicon of a context's tables (cached while the same table list is in use)."""
    key = id(ctx.tables)
    cached = _lexicons.get(key)
    if cached and cached[0] is ctx.tables:
        return cached[1]
    lex = Lexicon(ctx)
    if len(_lexicons) > 32:
        _lexicons.clear()
    _lexicons[key] = (ctx.tables, lex)
    return lex
