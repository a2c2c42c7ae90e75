"""The built-in assistant: offline, deterministic, driven by the subject's schema and values.

A question is read in three steps:

1. Phrases with a fixed meaning are lifted out with small patterns: time
   windows ("last 7 days", "yesterday"), grains ("per day", "hourly"), chart
   kinds ("as a bar chart"), top/bottom N, comparisons ("over 100").
2. The rest is matched, longest phrase first, against a lexicon built from the
   schema: table names, column names (and a few everyday synonyms such as
   "revenue" for an ``amount`` column), and the sampled values of categorical
   columns ("EUR", "mobile", "logins" → ``event_type = 'login'``).
3. Those mentions are interpreted: what is measured (count, distinct count,
   sum/avg/min/max/median, a rate between two counts), by what it is grouped,
   how it is filtered, which table it is about (joining a dimension table by its
   key when a column lives there), and how it is ordered and limited.

The result is a :class:`Plan` (kept with the answer, so follow-ups such as
"now by day" or "only mobile" modify it) compiled to one SELECT. Values become
SQL string literals, escaped, because the SQL is shown to the user and can be
opened in the SQL explorer; it then passes the same gate as any other SQL.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from helios_core.chat.context import SubjectContext, TableInfo, sql_name
from helios_core.chat.currency import are_currency_codes, is_currency_name, is_money_name
from helios_core.ddl import base_type
from helios_core.identifiers import sanitize_name

# ---------------------------------------------------------------------------- the plan


@dataclass
class Cond:
    table: str
    column: str
    op: str                      # = != in not in > >= < <= between
    values: list[Any] = field(default_factory=list)

    def describe(self) -> str:
        """In words: "currency is EUR", "device is not desktop", "amount over 400", "plan is pro or free"."""
        name = self.column.replace("_", " ")
        shown = [str(v) for v in self.values]
        if self.op in ("=", "in") and "currency" in self.column.lower():
            return "in " + " or ".join(shown)
        if self.op == "in":
            return f"{name} is " + (" or ".join(shown) if len(shown) <= 3 else f"one of {', '.join(shown)}")
        if self.op == "not in":
            return f"{name} is not " + " or ".join(shown)
        if self.op == "between":
            return f"{name} between {shown[0]} and {shown[1]}"
        op = {"=": "is", "!=": "is not", ">": "is over", ">=": "is at least", "<": "is under", "<=": "is at most"}
        return f"{name} {op.get(self.op, self.op)} {shown[0]}"


@dataclass
class Measure:
    func: str                    # count uniq sum avg min max median rate
    table: str = ""
    column: str = ""
    num: Cond | None = None      # rate: rows matching num ÷ rows matching den (all rows when None)
    den: Cond | None = None
    label: str = ""              # the word the user used ("purchases", "revenue")


@dataclass
class Dim:
    table: str
    column: str
    grain: str = ""              # hour day week month (time columns)
    auto: bool = False           # added by the assistant (amounts split by their currency), not asked for


@dataclass
class Window:
    kind: str                    # last | today | yesterday | this
    amount: int = 1
    unit: str = "day"            # minute hour day week month year

    def describe(self) -> str:
        if self.kind == "last":
            return f"in the last {self.amount} {self.unit}{'s' if self.amount != 1 else ''}"
        if self.kind == "this":
            return f"this {self.unit}"
        return self.kind


@dataclass
class Plan:
    table: str
    measures: list[Measure] = field(default_factory=list)
    dims: list[Dim] = field(default_factory=list)
    filters: list[Cond] = field(default_factory=list)
    window: Window | None = None
    time_table: str = ""
    time_column: str = ""
    order: str = ""              # desc | asc (by the first measure, or by sort_column for rows)
    limit: int = 0
    chart: str = ""              # a chart kind the user asked for
    rows: bool = False           # list rows instead of aggregating
    sort_column: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Plan":
        def cond(d: dict | None) -> Cond | None:
            return Cond(**d) if d else None
        measures = [Measure(func=m["func"], table=m.get("table", ""), column=m.get("column", ""),
                            num=cond(m.get("num")), den=cond(m.get("den")), label=m.get("label", ""))
                    for m in data.get("measures", [])]
        window = Window(**data["window"]) if data.get("window") else None
        return cls(table=data["table"], measures=measures, dims=[Dim(**d) for d in data.get("dims", [])],
                   filters=[Cond(**f) for f in data.get("filters", [])], window=window,
                   time_table=data.get("time_table", ""), time_column=data.get("time_column", ""),
                   order=data.get("order", ""), limit=int(data.get("limit", 0) or 0), chart=data.get("chart", ""),
                   rows=bool(data.get("rows")), sort_column=data.get("sort_column", ""))


@dataclass
class BuiltinAnswer:
    ok: bool
    sql: str = ""
    plan: Plan | None = None
    description: str = ""        # what was computed, in words
    chart: str = ""
    message: str = ""            # when not ok: what was not understood
    suggestions: list[str] = field(default_factory=list)
    refused: bool = False        # a kind of question it never answers (forecasts): message leads the suggestions


class NotUnderstood(Exception):
    pass


# ---------------------------------------------------------------------------- words

STOPWORDS = set("""
a an the of in on at for from to with into onto is are was were be been being do does did done there here what
which who whom whose how me show give list tell get find please i we you my our your us it its this that these
those have has had and or as so can could would should will shall may might let see want know need made make
makes making all any some whole data overall ever far per total value values many much than then now just only
also same instead about by each every both either one ones thing things result results chart number numbers
table tables row rows record records entry entries i'm what's whats across over under during within
compared vs versus up down out use used using was got gets get getting happened happen occur occurred
""".split())
GENERIC_ROW_WORDS = {"event", "row", "record", "entry", "log", "hit", "occurrence", "activity", "action"}
# Phrasal verbs that name an event value ("logged in" → login).
_PHRASES = [(re.compile(r"\b(?:logged|logging|log|signed|signing|sign)\s+in\b", re.I), "login"),
            (re.compile(r"\b(?:logged|logging|log|signed|signing|sign)\s+out\b", re.I), "logout"),
            (re.compile(r"\badded\s+to\s+(?:the\s+)?cart\b", re.I), "add to cart")]
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                 "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "fifty": 50,
                 "hundred": 100, "a": 1, "an": 1}
_NUM = r"(\d+|" + "|".join(sorted((k for k in _NUMBER_WORDS if k not in ("a", "an")), key=len, reverse=True)) + r")"
_UNITS = {"minute": "minute", "minutes": "minute", "min": "minute", "mins": "minute", "hour": "hour", "hours": "hour",
          "hr": "hour", "hrs": "hour", "h": "hour", "day": "day", "days": "day", "d": "day", "week": "week",
          "weeks": "week", "w": "week", "month": "month", "months": "month", "year": "year", "years": "year"}

COUNTRY_NAMES = {
    "united states": "US", "usa": "US", "america": "US", "american": "US", "united kingdom": "GB", "uk": "GB",
    "britain": "GB", "great britain": "GB", "england": "GB", "british": "GB", "germany": "DE", "german": "DE",
    "france": "FR", "french": "FR", "india": "IN", "indian": "IN", "brazil": "BR", "brazilian": "BR",
    "canada": "CA", "canadian": "CA", "japan": "JP", "japanese": "JP", "spain": "ES", "spanish": "ES",
    "italy": "IT", "italian": "IT", "netherlands": "NL", "dutch": "NL", "australia": "AU", "australian": "AU",
    "mexico": "MX", "china": "CN", "chinese": "CN", "poland": "PL", "sweden": "SE", "switzerland": "CH",
    "ireland": "IE", "korea": "KR", "south korea": "KR", "singapore": "SG", "portugal": "PT", "austria": "AT",
}
CURRENCY_NAMES = {"euro": "EUR", "euros": "EUR", "dollar": "USD", "dollars": "USD", "us dollars": "USD",
                  "pound": "GBP", "pounds": "GBP", "sterling": "GBP", "yen": "JPY", "franc": "CHF", "francs": "CHF"}

# Everyday words for columns, by column-name candidates (first that exists wins) and the usual aggregate.
CONCEPTS: list[tuple[tuple[str, ...], tuple[str, ...], str]] = [
    (("revenue",), ("revenue", "amount", "sales", "total", "price", "value"), "sum"),
    (("sales",), ("sales", "revenue", "amount", "total", "price"), "sum"),
    (("spend",), ("spend", "amount", "revenue", "cost", "price"), "sum"),
    (("spent",), ("spend", "amount", "revenue", "cost", "price"), "sum"),
    (("spending",), ("spend", "amount", "revenue", "cost", "price"), "sum"),
    (("income",), ("income", "revenue", "amount"), "sum"),
    (("turnover",), ("revenue", "amount"), "sum"),
    (("gmv",), ("gmv", "revenue", "amount"), "sum"),
    (("money",), ("amount", "revenue", "price"), "sum"),
    (("price",), ("price", "amount", "cost"), "avg"),
    (("cost",), ("cost", "price", "amount"), "sum"),
    (("order", "value"), ("amount", "price", "total", "value"), "avg"),
    (("basket", "size"), ("item_count", "items_count", "quantity"), "avg"),
    (("quantity",), ("quantity", "qty", "item_count"), "sum"),
    (("duration",), ("duration", "duration_ms", "duration_s", "time_spent", "latency", "latency_ms"), "avg"),
    (("length",), ("duration", "duration_ms", "length"), "avg"),
    (("time", "spent"), ("duration", "duration_ms", "time_spent"), "sum"),
    (("latency",), ("latency", "latency_ms", "duration_ms", "duration"), "avg"),
    (("old",), ("age",), "avg"),
    (("platform",), ("platform", "device", "os"), ""),
    (("tier",), ("tier", "plan"), ""),
    (("subscription",), ("subscription", "plan", "tier"), ""),
    (("method",), ("payment_method", "method"), ""),
    (("payment",), ("payment_method",), ""),
    (("kind",), ("kind", "type", "event_type", "category"), ""),
    (("category",), ("category", "type", "event_type", "kind"), ""),
    (("url",), ("url", "page", "path"), ""),
    (("path",), ("path", "page", "url"), ""),
    (("website",), ("website", "site", "site_id"), ""),
    (("location",), ("country", "city", "region", "location"), ""),
    (("nation",), ("country",), ""),
    (("state",), ("status", "state"), ""),
    (("outcome",), ("status", "result"), ""),
    (("sign", "up"), ("signup_date", "signup_at", "signed_up_at", "created_at", "registered_at"), ""),
    (("registration",), ("signup_date", "registered_at", "created_at"), ""),
    (("register",), ("signup_date", "registered_at", "created_at"), ""),
    (("join",), ("signup_date", "joined_at", "created_at"), ""),
]
ENTITY_ALIASES = {"customer": "user", "people": "user", "person": "user", "buyer": "user", "visitor": "user",
                  "member": "user", "account": "user", "shopper": "user", "player": "user"}
ROW_TABLE_WORDS = {"transaction": ("purchase", "order", "transaction", "payment", "sale"),
                   "order": ("purchase", "order"),
                   "sale": ("purchase", "order", "sale"),
                   "visit": ("activity", "session", "visit", "pageview"),
                   "challenge": ("captcha", "challenge")}
ACTIVE_TABLE_WORDS = ("activity", "event", "log", "session", "visit", "action")
ADDITIVE_HINTS = ("amount", "revenue", "sales", "total", "count", "quantity", "qty", "cost", "spend", "bytes",
                  "duration", "size", "items")

# Keyword phrases (lower-case words) → (kind, argument). Longest phrase wins.
KEYWORDS: dict[tuple[str, ...], tuple[str, str]] = {}


def _kw(kind: str, arg: str, *phrases: str) -> None:
    for p in phrases:
        KEYWORDS[tuple(p.split())] = (kind, arg)


_kw("agg", "count", "how many", "number of", "count of", "count", "#", "total number of", "num of", "amount of",
    "how much", "frequency of", "volume of", "counts")
_kw("agg", "uniq", "unique", "distinct", "different", "number of unique", "number of distinct",
    "count of unique", "count of distinct", "how many unique", "how many distinct", "how many different")
_kw("agg", "sum", "total", "sum of", "sum", "combined", "sum total")
_kw("agg", "avg", "average", "avg", "mean", "typical", "on average", "averaged")
_kw("agg", "median", "median")
_kw("agg", "min", "minimum", "min", "lowest", "smallest", "shortest", "cheapest", "least expensive")
_kw("agg", "max", "maximum", "max", "highest", "largest", "biggest", "longest", "most expensive", "greatest", "peak")
_kw("rate", "", "rate", "ratio", "share of", "share", "percentage of", "percentage", "percent of", "percent", "%",
    "proportion of", "proportion", "fraction of", "rates", "ratios", "shares")
_kw("by", "", "by", "per", "for each", "for every", "each", "across", "grouped by", "group by", "broken down by",
    "break down by", "split by", "breakdown by", "in each", "by each", "among")
_kw("neg", "", "not", "excluding", "exclude", "except", "without", "other than", "non", "but not", "apart from")
_kw("active", "", "active")
_kw("prep", "", "in", "on", "from", "for", "with", "where", "during", "via", "using", "through", "of type",
    "that", "who", "which", "whose", "made", "done", "paid", "had")
_kw("and", "", "and", "or", "plus")
_kw("clear", "filters", "without filters", "without filter", "no filters", "no filter", "remove the filter",
    "remove filters", "remove the filters", "drop the filter", "all data", "everything")
_kw("all", "", "all", "any", "every")
_kw("also", "", "also", "as well", "additionally", "add", "too", "and also", "in addition")
_kw("latest", "desc", "latest", "newest", "most recent", "recent", "last")
_kw("latest", "asc", "oldest", "earliest", "first")
_kw("show", "", "show", "list", "display")
_kw("follow", "", "now", "instead", "only", "just", "what about", "how about", "same", "but", "then", "and now",
    "make it", "switch to", "change to", "again")
# Words that end a "which X …" noun phrase.
_VERBS = {"has", "have", "had", "is", "are", "was", "were", "gets", "got", "get", "sees", "saw", "see", "with",
          "makes", "made", "make", "generated", "generates", "generate", "brings", "brought", "did", "does", "do",
          "shows", "received", "receives", "drives", "drove", "produced", "produces"}
# Openings that make a question a follow-up even when it names its own subject ("now purchases by day").
# Openings such as "top 5", "by device" or "in the last 7 days" follow up only when nothing else is asked.
_FOLLOW_START = ("now", "and ", "but ", "also", "what about", "how about", "instead", "only", "just", "same",
                 "then", "make it", "switch", "change", "as a", "as an", "show it", "show that", "show this",
                 "show them", "sort", "order by", "split", "break it", "without", "excluding", "except",
                 "average instead", "the same", "exclude", "remove", "drop", "include")


def stem(word: str) -> str:
    """A rough English stem: enough to match "purchases"/"purchase", "refunded"/"refunds", "countries"."""
    w = word.lower().strip("'")
    if w.startswith("/") or w.isdigit():
        return w
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("ures", ""), ("ure", ""), ("ings", ""), ("ing", ""),
                         ("ied", "y"), ("ed", ""), ("es", ""), ("s", "")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            if suffix == "s" and w.endswith(("ss", "us", "is")):
                continue
            if suffix == "es" and not w[:-2].endswith(("s", "x", "z", "ch", "sh", "v", "c", "g", "t", "r", "n",
                                                       "p", "k", "d", "l", "m", "b", "f", "y")):
                continue
            w = w[: -len(suffix)] + repl
            break
    if w.endswith("e") and len(w) >= 4:
        w = w[:-1]
    return w


def _words(name: str) -> list[str]:
    return [p for p in re.split(r"[_\s\-./]+", name.lower()) if p]


def quote_literal(value: Any) -> str:
    """A ClickHouse literal for a value taken from the data (strings escaped, numbers as they are)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


# ---------------------------------------------------------------------------- lexicon


@dataclass(frozen=True)
class Meaning:
    kind: str                    # table | column | value | rows
    table: str
    column: str = ""
    value: str = ""
    strength: float = 1.0
    agg: str = ""                # the usual aggregate (concepts such as "revenue")
    entity: bool = False         # a column that names an entity kept in its own table (user_id for "users")


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
        full_names = {stem(t.name) for t in tables if len(_words(t.name)) == 1}
        entity_tables = {stem(t.name): t for t in tables if t.is_keyed_by}
        for t in tables:
            words = _words(t.name)
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
        for words, candidates, agg in CONCEPTS:
            for t, names in columns_by_name:
                for cand in candidates:
                    if cand in names:
                        c = names[cand]
                        self.add(words, Meaning("column", t.name, c.name, strength=2.0, agg=agg))
                        break

    def _add_column(self, t: TableInfo, name: str, kind: str) -> None:
        if kind == "array":
            self.add(_words(name), Meaning("column", t.name, name, strength=1.0))
            return
        words = _words(name)
        self.add(words, Meaning("column", t.name, name, strength=3.0))
        if len(words) > 1 and words[-1] in ("id", "ms", "s", "sec", "date", "at", "ts", "uuid", "count", "num",
                                            "name", "code", "time", "type"):
            short = words[:-1]
            if not (len(short) == 1 and (stem(short[0]) in GENERIC_ROW_WORDS or short[0] in STOPWORDS)):
                self.add(short, Meaning("column", t.name, name, strength=2.5 if words[-1] != "count" else 1.5))

    def _add_value(self, t: TableInfo, column: str, value: str) -> None:
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
            rest = _words(value)
            if rest:
                self.add(rest, Meaning("value", t.name, column, value, strength=1.5))
                self.add(rest + ["page"], Meaning("value", t.name, column, value, strength=3.0))
            return
        words = _words(value)
        if words:
            self.add(words, meaning)

    def lookup(self, stems: tuple[str, ...]) -> list[Meaning]:
        return self.phrases.get(stems, [])


# ---------------------------------------------------------------------------- reading a question


@dataclass
class Item:
    kind: str                    # mention | agg | rate | by | neg | prep | and | word | cmp | marker | …
    text: str
    arg: str = ""
    meanings: list[Meaning] = field(default_factory=list)
    data: Any = None


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
                + _NUM + r"\s*(minutes?|mins?|hours?|hrs?|h|days?|d|weeks?|w|months?|years?)\b", re.I), "last_n"),
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
    re.compile(r"\b(top|bottom|highest|lowest|best|worst|largest|biggest|smallest|greatest)\s+" + _NUM + r"\b",
               re.I),
    re.compile(r"\b" + _NUM + r"\s+(most|least|highest|lowest|largest|smallest|biggest|top|bottom|best|worst|fewest)\b",
               re.I),
    re.compile(r"\b(top|bottom)\b", re.I),
]
_LATEST = re.compile(r"\b(latest|newest|last|most recent|recent|oldest|earliest|first)\s+" + _NUM + r"\b", re.I)
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
    return int(text) if text.isdigit() else _NUMBER_WORDS.get(text, 0)


def read_question(question: str, lex: Lexicon) -> Reading:
    text = " " + question.strip().rstrip("?.!") + " "
    for pattern, replacement in _PHRASES:
        text = pattern.sub(replacement, text)
    reading = Reading(items=[])
    lowered = text.lower()
    reading.question_lower = lowered.strip()
    tokens = set(re.findall(r"[a-z]+", lowered))
    reading.follow_marker = lowered.strip().startswith(_FOLLOW_START) or " instead" in lowered \
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
            amount, unit = _number(m.group(1)), _UNITS[m.group(2).lower()]
            reading.window = Window("last", amount or 1, unit)
        elif kind == "last_1":
            reading.window = Window("last", 1, _UNITS[m.group(1).lower()])
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


def _items(text: str, lex: Lexicon, compares: list, reading: Reading) -> list[Item]:
    raw = [re.sub(r"'s$", "", t) for t in _TOKEN.findall(text)]
    lower = [t.lower() for t in raw]
    stems = [stem(ENTITY_ALIASES.get(stem(t), t)) if not t.startswith("__") else t for t in lower]
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
        if lower[i] in _VERBS:
            items.append(Item("verb", lower[i]))
        elif lower[i] in STOPWORDS or lower[i] in _NUMBER_WORDS:
            items.append(Item("stop", lower[i]))
        elif re.fullmatch(r"\d+(\.\d+)?", lower[i]):
            items.append(Item("number", lower[i]))
        else:
            items.append(Item("word", raw[i]))
            reading.unknown.append(raw[i])
        i += 1
    return items


# ---------------------------------------------------------------------------- interpreting


@dataclass
class Parts:
    """A reading tied to roles: what is measured, grouped and filtered (still with candidate tables)."""

    aggs: list[tuple[str, Item | None, Item | None]] = field(default_factory=list)  # (func, target, count head)
    rate: tuple[Item | None, bool] | None = None      # (value mention, negated)
    dims: list[Item] = field(default_factory=list)
    filters: list[tuple[Item, bool]] = field(default_factory=list)  # (value mention, negated)
    compares: list[tuple[Item, Item | None]] = field(default_factory=list)  # (cmp, column mention before it)
    evidence: list[Item] = field(default_factory=list)
    head: Item | None = None          # the counted noun when nothing else is measured
    active: bool = False
    clear_filters: bool = False
    clear_columns: list[Item] = field(default_factory=list)
    also: bool = False
    latest: str = ""
    show: bool = False

    def mentions(self) -> list[Item]:
        out = [t for _, t, _ in self.aggs if t] + [h for _, _, h in self.aggs if h]
        out += self.dims + [f for f, _ in self.filters] + [c for _, c in self.compares if c] + self.evidence
        if self.head:
            out.append(self.head)
        if self.rate and self.rate[0]:
            out.append(self.rate[0])
        return out


def _col_kind(m: Meaning, ctx: SubjectContext) -> str:
    c = ctx.column(m.table, m.column)
    return c.kind if c else ""


def _is_numeric(m: Meaning, ctx: SubjectContext) -> bool:
    return m.kind == "column" and _col_kind(m, ctx) == "number"


def _has(item: Item, kind: str) -> bool:
    return any(m.kind == kind for m in item.meanings)


def interpret(reading: Reading, ctx: SubjectContext) -> Parts:
    parts = Parts()
    items = reading.items
    segment = "main"           # main | by | top | which
    pending_agg: list[str] = []
    pending_neg = False
    after_rate = False
    np_items: list[Item] = []  # the current noun phrase (consecutive mentions)
    saw_measure_np = False

    def flush_np() -> None:
        nonlocal np_items, pending_agg, saw_measure_np, after_rate
        if not np_items:
            return
        group = np_items
        np_items = []
        has_value = any(_has(m, "value") for m in group)
        if after_rate:
            # "share of purchases that are refunded": the first value after "share of" is the numerator
            values = [m for m in group if _has(m, "value")]
            if values and parts.rate and parts.rate[0] is None:
                parts.rate = (values[0], values[0].data == "neg")
                group = [m for m in group if m is not values[0]]
                after_rate = False
                if not group:
                    return
        if pending_agg:
            funcs, pending_agg = pending_agg, []
            _assign_agg(funcs, group, parts, ctx)
            saw_measure_np = True
            return
        if segment == "by":
            if has_value:
                if not parts.aggs and parts.head is None and not saw_measure_np and parts.dims:
                    # "pages by page views": the value is what is counted
                    parts.head = next(m for m in group if _has(m, "value"))
                _narrow(group, parts)
                return
            for m in group:
                if any(_is_numeric(x, ctx) for x in m.meanings) or any(x.agg for x in m.meanings):
                    parts.aggs.append(("", m, None))
                elif _has(m, "column"):
                    parts.dims.append(m)
                else:
                    parts.evidence.append(m)
            return
        if segment in ("top", "which"):
            for m in group:
                if _has(m, "value") and not (_has(m, "column") or _has(m, "table")):
                    parts.filters.append((m, m.data == "neg"))
                elif _has(m, "column") and not _has(m, "table") \
                        and not any(_is_numeric(x, ctx) for x in m.meanings):
                    parts.dims.append(m)
                elif _has(m, "column") and _has(m, "table") and any(x.entity for x in m.meanings):
                    parts.dims.append(m)
                else:
                    parts.evidence.append(m)
                    if parts.head is None and (_has(m, "table") or _has(m, "rows")):
                        parts.head = m
            return
        # main segment
        numeric = [m for m in group if any(_is_numeric(x, ctx) or x.agg for x in m.meanings)]
        if numeric and not saw_measure_np:
            parts.aggs.append(("", numeric[0], None))
            saw_measure_np = True
            _narrow(group, parts, skip=numeric[0])
            return
        if not saw_measure_np and parts.head is None:
            head = group[-1]
            # "enterprise users": the last word is the noun, the others narrow it down.
            if _has(head, "value") and not (_has(head, "table") or _has(head, "rows") or _has(head, "column")):
                parts.head = head
                parts.filters.append((head, head.data == "neg"))
            elif _has(head, "column") and not _has(head, "table") and not _has(head, "rows") \
                    and not any(x.entity for x in head.meanings) \
                    and _col_kind(next(x for x in head.meanings if x.kind == "column"), ctx) in ("category", "text"):
                # "devices", "countries" alone: grouped by, counted in rows
                parts.dims.append(head)
            else:
                parts.head = head
            saw_measure_np = True
            _narrow(group[:-1], parts)
            return
        _narrow(group, parts)

    for idx, item in enumerate(items):
        kind = item.kind
        if kind == "mention" and item.data == "cmp":
            continue  # the column of a comparison, already used
        if kind == "mention":
            if pending_neg:
                item.data = "neg"
                pending_neg = False
            np_items.append(item)
            continue
        if kind == "stop" and item.text in ("of", "the", "a", "an") and np_items:
            continue
        if kind == "and" and segment in ("by", "top", "which"):
            flush_np()
            continue
        if kind == "and" and np_items and all(_has(m, "value") for m in np_items):
            # "EUR and GBP", "logins or logouts": one list of values
            flush_np()
            continue
        flush_np()
        if kind == "cmp":
            before = None
            for prev in reversed(items[:idx]):
                if prev.kind == "mention":
                    before = prev
                    break
                if prev.kind not in ("stop", "prep"):
                    break
            if before is None or not any(_is_numeric(x, ctx) for x in before.meanings):
                before = None
                # "more than 3 items": the number's column may follow it
                for nxt in items[idx + 1:idx + 3]:
                    if nxt.kind == "mention" and any(_is_numeric(x, ctx) for x in nxt.meanings):
                        before = nxt
                        nxt.data = "cmp"
                        break
                    if nxt.kind not in ("stop",):
                        break
            parts.compares.append((item, before))
        elif kind == "agg":
            if segment == "which" or segment == "top":
                segment = "main"
            pending_agg.append(item.arg)
        elif kind == "rate":
            prev_mention = items[idx - 1] if idx and items[idx - 1].kind == "mention" else None
            if prev_mention is not None and _has(prev_mention, "value"):
                parts.filters = [f for f in parts.filters if f[0] is not prev_mention]
                if parts.head is prev_mention:
                    parts.head = None
                parts.rate = (prev_mention, prev_mention.data == "neg")
            else:
                parts.rate = (None, False)
                after_rate = True
        elif kind == "by":
            segment = "by"
        elif kind == "neg":
            pending_neg = True
        elif kind == "prep" or kind == "verb":
            if segment in ("by", "top", "which"):
                segment = "main"
        elif kind == "active":
            parts.active = True
        elif kind == "clear":
            if item.arg == "filters":
                parts.clear_filters = True
        elif kind == "all":
            nxt = items[idx + 1] if idx + 1 < len(items) else None
            if nxt is not None and nxt.kind == "mention" and _has(nxt, "column"):
                parts.clear_columns.append(nxt)
        elif kind == "also":
            parts.also = True
        elif kind == "latest":
            parts.latest = item.arg
        elif kind == "show":
            parts.show = True
        elif kind == "marker":
            if item.arg == "top":
                segment = "top"
            elif item.arg == "which":
                segment = "which"
            elif item.arg == "sup":
                segment = "main"
    flush_np()
    if reading.latest:
        parts.latest = reading.latest
    # "all devices" names a column to stop filtering on, not a dimension.
    parts.dims = [d for d in parts.dims if d not in parts.clear_columns]
    parts.evidence = [e for e in parts.evidence if e not in parts.clear_columns]
    if pending_agg:
        for func in pending_agg:
            parts.aggs.append((func, None, None))
    return parts


def _narrow(mentions: list[Item], parts: Parts, skip: Item | None = None) -> None:
    """Mentions beside the measure or the head: a recognised value filters, anything else only supports the reading."""
    for m in mentions:
        if m is skip:
            continue
        if _has(m, "value"):
            parts.filters.append((m, m.data == "neg"))
        else:
            parts.evidence.append(m)


def _assign_agg(funcs: list[str], group: list[Item], parts: Parts, ctx: SubjectContext) -> None:
    """The noun phrase after "average", "how many", "unique" …: pick what is aggregated."""
    func = _combine_funcs(funcs)
    if func in ("sum", "avg", "median", "min", "max"):
        numeric = [m for m in group if any(_is_numeric(x, ctx) for x in m.meanings)]
        if numeric:
            target = numeric[0]
            parts.aggs.append((func, target, None))
            _narrow(group, parts, skip=target)
            return
        if func == "sum":  # "total purchases": a count
            func = "count"
        else:
            parts.aggs.append((func, None, None))
            _narrow(group, parts)
            return
    head = group[-1]
    if func == "count" and _only_time_columns(head, ctx):
        # "how many users signed up per day": users are counted, "signed up" only names the time axis
        nouns = [m for m in group[:-1] if _has(m, "table")]
        if nouns:
            head = nouns[-1]
    if func == "uniq":
        # "distinct pages visited": what is distinct is the column, not the verb after it
        columns = [m for m in group if _has(m, "column")]
        if columns:
            head = columns[-1]
    _narrow(group, parts, skip=head)
    if _has(head, "value") and not (_has(head, "table") or _has(head, "column") or _has(head, "rows")):
        parts.filters.append((head, head.data == "neg"))
    parts.aggs.append((func, head, head))


def _only_time_columns(item: Item, ctx: SubjectContext) -> bool:
    return bool(item.meanings) and all(m.kind == "column" and _col_kind(m, ctx) == "time" for m in item.meanings)


def _combine_funcs(funcs: list[str]) -> str:
    if "uniq" in funcs:
        return "uniq"
    for f in ("median", "avg", "min", "max"):
        if f in funcs:
            return f
    if "sum" in funcs and "count" not in funcs:
        return "sum"
    return "count"


# ---------------------------------------------------------------------------- tables and joins


class Resolver:
    """Ties mentions to a main table and, where needed, a joined dimension table."""

    def __init__(self, ctx: SubjectContext) -> None:
        self.ctx = ctx

    def joinable(self, main: str, other: str) -> str | None:
        """The key to join ``other`` (a dimension table keyed by it) onto ``main``."""
        if main == other:
            return None
        o = self.ctx.table(other)
        m = self.ctx.table(main)
        if not o or not m:
            return None
        key = o.is_keyed_by
        if key and m.column(key) is not None:
            return key
        return None

    def semi_joinable(self, main: str, other: str) -> str | None:
        """The key for ``main.key IN (SELECT key FROM other WHERE …)`` (main is the dimension table)."""
        return self.joinable(other, main)

    def reach(self, item: Item, main: str, kinds: tuple[str, ...] = ("column", "value"),
              numeric: bool | None = None) -> tuple[Meaning | None, float, str]:
        """The best meaning of a mention from ``main``: (meaning, score, how: direct|join|semi)."""
        best: tuple[Meaning | None, float, str] = (None, 0.0, "")
        for m in item.meanings:
            if m.kind not in kinds:
                continue
            if numeric is not None and _is_numeric(m, self.ctx) != numeric:
                continue
            if m.table == main:
                score, how = m.strength, "direct"
            elif self.joinable(main, m.table):
                score, how = m.strength * 0.5, "join"
            elif m.kind == "value" and self.semi_joinable(main, m.table):
                score, how = m.strength * 0.4, "semi"
            else:
                continue
            if score > best[1]:
                best = (m, score, how)
        return best


# ---------------------------------------------------------------------------- building the plan


class Builder:
    def __init__(self, ctx: SubjectContext, lex: Lexicon) -> None:
        self.ctx = ctx
        self.lex = lex
        self.res = Resolver(ctx)

    # -- choosing the main table ------------------------------------------------------

    def candidates(self, parts: Parts) -> list[tuple[float, str]]:
        scored = []
        for t in self.ctx.tables:
            score = self._score(t, parts)
            if score is not None:
                scored.append((score, t))
        scored.sort(key=lambda s: (-s[0], -s[1].rows))
        return [(score, t.name) for score, t in scored]

    def _score(self, t: TableInfo, parts: Parts) -> float | None:
        name = t.name
        score = 0.0
        for func, target, head in parts.aggs:
            if target is None:
                continue
            if func in ("sum", "avg", "median", "min", "max") or (func == "" and head is None):
                m, s, how = self.res.reach(target, name, ("column",), numeric=True)
                if m is None or how != "direct":
                    return None
                score += s + 1.0
            else:  # count / uniq of a noun
                s = self._noun_score(target, t)
                if s is None:
                    return None
                score += s
        if parts.head is not None and not parts.aggs:
            s = self._noun_score(parts.head, t)
            if s is None:
                return None
            score += s
        if parts.rate and parts.rate[0] is not None:
            m, s, how = self.res.reach(parts.rate[0], name, ("value",))
            if m is None or how != "direct":
                return None
            score += s
        for d in parts.dims:
            m, s, how = self.res.reach(d, name, ("column",))
            if m is None:
                return None
            score += s
        for f, _neg in parts.filters:
            if f is parts.head:
                continue
            m, s, how = self.res.reach(f, name, ("value",))
            if m is None:
                return None
            score += s
        for cmp, col in parts.compares:
            if col is not None:
                m, s, how = self.res.reach(col, name, ("column",), numeric=True)
                if m is None:
                    return None
                score += s
            elif cmp.data[1]:
                if not self._concept_column(t, cmp.data[1]) and not self._joined_concept(t, cmp.data[1]):
                    return None
            elif self.primary_numeric(t) is None:
                return None
        for e in parts.evidence:
            best = 0.0
            for m in e.meanings:
                if m.table == name:
                    best = max(best, m.strength)
            score += best
        if parts.active:
            # "active users" live in activity tables; a generic events table is a weaker guess
            if any(w in name.lower() for w in ACTIVE_TABLE_WORDS if w != "event"):
                score += 2.0
            elif "event" in name.lower():
                score += 1.0
        if (parts.aggs or parts.head or parts.dims or parts.filters or parts.rate) and score <= 0 \
                and len(self.ctx.tables) > 1:
            return None
        return score

    def _noun_score(self, noun: Item, t: TableInfo) -> float | None:
        scores = [m.strength for m in noun.meanings if m.table == t.name]
        if scores:
            return max(scores)
        if len(self.ctx.tables) == 1 and not noun.meanings:
            return 0.0
        return None

    def primary_numeric(self, t: TableInfo) -> str | None:
        numbers = [c for c in t.columns if c.kind == "number"]
        if not numbers:
            return None
        for hint in ("amount", "revenue", "price", "value", "total", "duration"):
            for c in numbers:
                if hint in c.name.lower():
                    return c.name
        floats = [c for c in numbers if base_type(c.type).startswith(("Float", "Decimal"))]
        return (floats or numbers)[0].name

    def _concept_column(self, t: TableInfo, hint: str) -> str | None:
        for c in t.columns:
            if c.kind == "number" and hint in c.name.lower():
                return c.name
        return None

    def _joined_concept(self, t: TableInfo, hint: str) -> tuple[str, str] | None:
        for other in self.ctx.tables:
            if self.res.joinable(t.name, other.name):
                col = self._concept_column(other, hint)
                if col:
                    return other.name, col
        return None

    # -- the plan ------------------------------------------------------------------------

    def build(self, reading: Reading, parts: Parts) -> Plan:
        scored = self.candidates(parts)
        if not scored:
            raise NotUnderstood(self._why_not(parts))
        main = scored[0][1]
        table = self.ctx.table(main)
        assert table is not None
        plan = Plan(table=main)
        plan.measures = self._measures(parts, table, reading)
        for d in parts.dims:
            m, _s, _how = self.res.reach(d, main, ("column",))
            if m is not None and not any(x.table == m.table and x.column == m.column for x in plan.dims):
                plan.dims.append(self.dim(m))
        plan.filters = self._filters(parts, main)
        plan.filters += self._compares(parts, table)
        self._time(plan, parts, reading, table)
        for g in reading.grains:
            if plan.time_column:
                plan.dims = [d for d in plan.dims if not d.grain] + [Dim(plan.time_table, plan.time_column, g)]
                plan.dims.sort(key=lambda d: 0 if d.grain else 1)
        plan.window = reading.window
        if plan.window and not plan.time_column:
            raise NotUnderstood(f"{main} has no date or time column, so I cannot apply “{plan.window.describe()}”.")
        if reading.grains and not plan.time_column:
            raise NotUnderstood(f"{main} has no date or time column to group by {reading.grains[0]}.")
        plan.limit = reading.limit
        plan.order = reading.order
        plan.chart = reading.chart
        self._rows_mode(plan, parts, reading, table)
        if reading.superlative and not plan.dims and not plan.rows:
            # "what is the highest amount": a maximum, not a ranking of one
            for m in plan.measures:
                if m.column and m.func in ("sum", "avg", ""):
                    m.func = "min" if plan.order == "asc" else "max"
            plan.limit, plan.order = 0, ""
        return plan

    def dim(self, m: Meaning) -> Dim:
        """Grouping by a column; a time column is grouped by day unless a grain is asked for."""
        return Dim(m.table, m.column, "day" if _col_kind(m, self.ctx) == "time" else "")

    def _why_not(self, parts: Parts) -> str:
        mentioned = [m.text for m in parts.mentions()]
        if mentioned:
            return (f"I recognised {', '.join(repr(m) for m in mentioned)}, but not in one table "
                    "(or in tables I know how to join).")
        return "I did not recognise any table, column or value of this subject in the question."

    def _measures(self, parts: Parts, table: TableInfo, reading: Reading) -> list[Measure]:
        measures: list[Measure] = []
        main = table.name
        for func, target, head in parts.aggs:
            if target is None:
                if func in ("count", ""):
                    measures.append(Measure("count", label=self._rows_label(parts, table)))
                elif func == "uniq":
                    continue
                else:
                    col = self.primary_numeric(table)
                    if col is None:
                        raise NotUnderstood(f"{main} has no numeric column to take the {func} of.")
                    measures.append(Measure(func, main, col, label=col))
                continue
            if head is not None and func in ("count", "uniq"):
                measures.append(self._count_noun(func, head, table, parts))
                continue
            m, _s, _how = self.res.reach(target, main, ("column",), numeric=True)
            if m is None:
                raise NotUnderstood(f"I could not find {target.text!r} as a number in {main}.")
            chosen = func or m.agg or self._default_agg(m.column)
            measures.append(Measure(chosen, m.table, m.column, label=target.text.lower()))
        if parts.rate is not None:
            measures.insert(0, self._rate(parts, table))
        if not measures:
            if parts.head is not None:
                measures.append(self._count_noun("count", parts.head, table, parts))
            else:
                measures.append(Measure("count", label=self._rows_label(parts, table)))
        return measures

    def _default_agg(self, column: str) -> str:
        """Amounts and counts add up ("revenue by plan"); ages and scores average."""
        name = column.lower()
        last = name.split("_")[-1]
        counted = name in ("n", "cnt", "c") or (len(last) > 3 and last.endswith("s") and not last.endswith("ss"))
        return "sum" if counted or any(h in name for h in ADDITIVE_HINTS) else "avg"

    def _rows_label(self, parts: Parts, table: TableInfo) -> str:
        if parts.head is not None:
            return parts.head.text.lower()
        return "rows"

    def _count_noun(self, func: str, noun: Item, table: TableInfo, parts: Parts) -> Measure:
        main = table.name
        label = noun.text.lower()
        direct = [m for m in noun.meanings if m.table == main and (m.kind != "table" or m.strength >= 1)]
        kinds = {m.kind for m in direct}
        entity = [m for m in direct if m.entity and m.kind == "column" and table.is_keyed_by != m.column]
        if entity and "table" not in kinds and "value" not in kinds:
            # "users" counted in a table of their events: distinct users, not rows
            return Measure("uniq", main, entity[0].column, label=label)
        if func == "uniq" or ("column" in kinds and "table" not in kinds and "rows" not in kinds
                              and "value" not in kinds):
            cols = [m for m in direct if m.kind == "column"]
            if cols:
                col = max(cols, key=lambda m: m.strength)
                ckind = _col_kind(col, self.ctx)
                if ckind == "time" and func != "uniq":
                    return Measure("count", label=label)
                if table.is_keyed_by == col.column and func != "uniq":
                    return Measure("count", label=label)
                return Measure("uniq", main, col.column, label=f"unique {label}" if func == "uniq" else label)
            if func == "uniq":
                raise NotUnderstood(f"I do not know which column of {main} holds distinct {label}.")
        return Measure("count", label=label)

    def _rate(self, parts: Parts, table: TableInfo) -> Measure:
        mention, negated = parts.rate or (None, False)
        if mention is None:
            raise NotUnderstood("A rate of what? Name a value, for example “refund rate” or “solve rate”.")
        m, _s, how = self.res.reach(mention, table.name, ("value",))
        if m is None or how != "direct":
            raise NotUnderstood(f"I could not find {mention.text!r} in {table.name}.")
        num = Cond(m.table, m.column, "!=" if negated else "=", [m.value])
        col = table.column(m.column)
        values = col.values if col else []
        den = None
        if len(values) == 2 and not negated:
            other = [v for v in values if v != m.value][0]
            den = Cond(m.table, m.column, "=", [other])
        return Measure("rate", m.table, m.column, num=num, den=den, label=f"{m.value} rate")

    def _filters(self, parts: Parts, main: str) -> list[Cond]:
        by_column: dict[tuple[str, str, bool], list[str]] = {}
        for item, negated in parts.filters:
            m, _s, _how = self.res.reach(item, main, ("value",))
            if m is None:
                where = sorted({f"{x.column} of {x.table}" for x in item.meanings if x.kind == "value"})
                raise NotUnderstood(f"{item.text!r} is a value of {' and '.join(where) or 'another table'}, "
                                    f"which I cannot relate to {main}.")
            key = (m.table, m.column, negated)
            if m.value not in by_column.setdefault(key, []):
                by_column[key].append(m.value)
        out = []
        for (table, column, negated), values in by_column.items():
            if len(values) == 1:
                out.append(Cond(table, column, "!=" if negated else "=", values))
            else:
                out.append(Cond(table, column, "not in" if negated else "in", values))
        return out

    def _compares(self, parts: Parts, table: TableInfo) -> list[Cond]:
        out = []
        for cmp, col in parts.compares:
            values, hint = cmp.data
            if col is not None:
                m, _s, _how = self.res.reach(col, table.name, ("column",), numeric=True)
                if m is None:
                    continue
                target = (m.table, m.column)
            elif hint:
                name = self._concept_column(table, hint)
                target = (table.name, name) if name else self._joined_concept(table, hint)  # type: ignore[assignment]
            else:
                name = self.primary_numeric(table)
                target = (table.name, name) if name else None  # type: ignore[assignment]
            if not target:
                raise NotUnderstood(f"I could not tell which number “{cmp.arg} {values[0]}” is about.")
            out.append(Cond(target[0], target[1], cmp.arg, list(values)))
        return out

    def _time(self, plan: Plan, parts: Parts, reading: Reading, table: TableInfo) -> None:
        # A date column named in the question ("signups per month") is the time axis; else the table's own.
        for item in [h for _, _, h in parts.aggs if h] + ([parts.head] if parts.head else []) + parts.evidence:
            for m in item.meanings:
                if m.kind == "column" and _col_kind(m, self.ctx) == "time" and \
                        (m.table == table.name or self.res.joinable(table.name, m.table)):
                    plan.time_table, plan.time_column = m.table, m.column
                    return
        times = table.time_columns
        if times:
            plan.time_table, plan.time_column = table.name, times[0].name

    def _rows_mode(self, plan: Plan, parts: Parts, reading: Reading, table: TableInfo) -> None:
        """ "the 10 largest purchases", "latest 5 logins": rows, not an aggregate."""
        explicit_agg = any(func for func, _t, _h in parts.aggs) or parts.rate is not None
        if plan.dims or explicit_agg:
            return
        numeric_target = [t for f, t, h in parts.aggs if f == "" and t is not None]
        if parts.latest and (reading.limit or parts.show):
            plan.rows = True
            plan.sort_column = plan.time_column
            plan.order = "asc" if parts.latest == "asc" else "desc"
            plan.limit = reading.limit or 10
        elif reading.limit and not reading.superlative and not reading.rank_by_count and parts.head is not None:
            plan.rows = True
            col = None
            if numeric_target:
                m, _s, _how = self.res.reach(numeric_target[0], table.name, ("column",), numeric=True)
                col = m.column if m else None
            plan.sort_column = col or self.primary_numeric(table) or plan.time_column
        if plan.rows:
            plan.measures = []
            if not plan.sort_column:
                raise NotUnderstood(f"I do not know how to order the rows of {table.name}.")


# ---------------------------------------------------------------------------- follow-ups


def merge_follow_up(prev: Plan, reading: Reading, parts: Parts, builder: Builder) -> Plan:
    """Apply a short follow-up ("now by day", "only mobile", "top 5 instead") to the previous plan."""
    ctx = builder.ctx
    plan = Plan.from_json(prev.to_json())
    table = ctx.table(plan.table)
    if table is None:
        raise NotUnderstood("The previous answer was about a table that is no longer there.")
    res = builder.res
    # What is measured
    if parts.aggs or parts.rate is not None:
        # "how many of them are on mobile": a value counted is a filter, not a new measure
        filtered = [f for f, _neg in parts.filters]
        explicit_targets = [t for _f, t, _h in parts.aggs if t is not None and t not in filtered]
        if explicit_targets or parts.rate is not None:
            trial = Parts(aggs=parts.aggs, rate=parts.rate)
            plan.measures = builder._measures(trial, table, reading)
            plan.rows = False
        else:
            new = []
            for func, _t, _h in parts.aggs:
                if func in ("count", ""):
                    new.append(Measure("count", label=next((m.label for m in plan.measures if m.func == "count"),
                                                           "rows")))
                elif func == "uniq":
                    continue
                else:
                    cols = [m for m in plan.measures if m.column and m.func != "rate"]
                    col = cols[0].column if cols else builder.primary_numeric(table)
                    if not col:
                        raise NotUnderstood(f"{table.name} has no numeric column for “{func}”.")
                    new.append(Measure(func, cols[0].table if cols else table.name, col, label=col))
            if new:
                plan.measures = new
                plan.rows = False
    # Grouping
    new_dims: list[Dim] = []
    for d in parts.dims:
        m, _s, _how = res.reach(d, plan.table, ("column",))
        if m is None:
            raise NotUnderstood(f"I cannot group {plan.table} by {d.text!r}.")
        new_dims.append(builder.dim(m))
    if reading.grains:
        if not plan.time_column:
            builder._time(plan, parts, reading, table)
        if not plan.time_column:
            raise NotUnderstood(f"{plan.table} has no date or time column to group by {reading.grains[0]}.")
        new_dims = [Dim(plan.time_table, plan.time_column, g) for g in reading.grains] + new_dims
    if new_dims:
        if parts.also or reading.question_lower.startswith(("and by", "and per", "and for each")):
            kept = [d for d in plan.dims if not (d.grain and any(n.grain for n in new_dims))]
            plan.dims = kept + [d for d in new_dims if d not in kept]
        else:
            plan.dims = new_dims
        plan.dims.sort(key=lambda d: 0 if d.grain else 1)
        plan.rows = False
        if not reading.limit:
            plan.limit, plan.order = 0, ""
    # Filters
    if parts.clear_filters:
        plan.filters = []
    for c in parts.clear_columns:
        cols = {(m.table, m.column) for m in c.meanings if m.kind == "column"}
        plan.filters = [f for f in plan.filters if (f.table, f.column) not in cols]
    new_filters = builder._filters(parts, plan.table) + builder._compares(parts, table) if (
        parts.filters or parts.compares) else []
    for f in new_filters:
        if parts.also:
            same = [g for g in plan.filters if (g.table, g.column) == (f.table, f.column) and g.op in ("=", "in")
                    and f.op in ("=", "in")]
            if same:
                g = same[0]
                g.values = list(dict.fromkeys(g.values + f.values))
                g.op = "in" if len(g.values) > 1 else "="
                continue
        plan.filters = [g for g in plan.filters
                        if not ((g.table, g.column) == (f.table, f.column) and _same_direction(g.op, f.op))]
        plan.filters.append(f)
    # Window, order, limit, chart
    if reading.window:
        if not plan.time_column:
            builder._time(plan, parts, reading, table)
        if not plan.time_column:
            raise NotUnderstood(f"{plan.table} has no date or time column for “{reading.window.describe()}”.")
        plan.window = reading.window
    elif reading.clear_window:
        plan.window = None
    if reading.limit:
        plan.limit = reading.limit
        plan.order = reading.order or "desc"
    elif reading.order:
        plan.order = reading.order
    if reading.chart:
        plan.chart = reading.chart
    return plan


def _same_direction(a: str, b: str) -> bool:
    groups = [{"=", "!=", "in", "not in"}, {">", ">="}, {"<", "<="}, {"between"}]
    return any(a in g and b in g for g in groups)


# ---------------------------------------------------------------------------- currencies

_MONEY_FUNCS = ("sum", "avg", "min", "max", "median")


def currency_column(table: TableInfo) -> str | None:
    """The column that says which currency a row's amounts are in, if the table has one."""
    for c in table.columns:
        if c.kind in ("category", "text") and is_currency_name(c.name):
            return c.name
    for c in table.columns:
        if c.is_category and are_currency_codes(c.values):
            return c.name
    return None


def split_by_currency(plan: Plan, ctx: SubjectContext) -> None:
    """Amounts in several currencies are never added together: group by the currency unless one is chosen."""
    plan.dims = [d for d in plan.dims if not d.auto]
    if plan.rows:
        return
    money = [m for m in plan.measures if m.func in _MONEY_FUNCS and m.column and is_money_name(m.column)]
    table = ctx.table(money[0].table) if money else None
    column = currency_column(table) if table is not None else None
    if table is None or column is None:
        return
    if any(d.table == table.name and d.column == column for d in plan.dims):
        return
    if any(f.table == table.name and f.column == column and f.op in ("=", "in") and len(f.values) == 1
           for f in plan.filters):
        return
    plan.dims.append(Dim(table.name, column, auto=True))


# ---------------------------------------------------------------------------- SQL


# The first word of each everyday concept ("revenue", "sales"): a sum labelled so keeps the user's word.
_CONCEPT_STEMS = {stem(words[0]) for words, _candidates, _agg in CONCEPTS}


class Compiler:
    def __init__(self, ctx: SubjectContext) -> None:
        self.ctx = ctx
        self.res = Resolver(ctx)

    def compile(self, plan: Plan) -> str:
        main = self.ctx.table(plan.table)
        if main is None:
            raise NotUnderstood(f"There is no table {plan.table!r} here.")
        used = {plan.table}
        semi: list[Cond] = []
        for d in plan.dims:
            used.add(d.table)
        for f in plan.filters:
            if f.table != plan.table and not self.res.joinable(plan.table, f.table):
                semi.append(f)
            else:
                used.add(f.table)
        for m in plan.measures:
            if m.table:
                used.add(m.table)
        if plan.time_table:
            used.add(plan.time_table)
        joins = [t for t in sorted(used) if t != plan.table]
        aliases: dict[str, str] = {}
        if joins:
            for t in [plan.table] + joins:
                aliases[t] = self._alias(t, set(aliases.values()))
        taken = {c.name.lower() for t in used for c in self.ctx.table(t).columns}  # type: ignore[union-attr]

        def col(table: str, column: str) -> str:
            return f"{aliases[table]}.{sql_name(column)}" if aliases else sql_name(column)

        select: list[str] = []
        group: list[str] = []
        order: list[str] = []
        names: set[str] = set()

        def alias(name: str) -> str:
            base = sanitize_name(name.lower())
            if base.lower() in taken or base in names:
                base = f"{base}_value" if base.lower() in taken else base
            n, candidate = 2, base
            while candidate in names or candidate.lower() in taken:
                candidate = f"{base}_{n}"
                n += 1
            names.add(candidate)
            return candidate

        if plan.rows:
            select.append("*" if not aliases else f"{aliases[plan.table]}.*")
        time_aliases = []
        for d in plan.dims:
            if d.grain:
                expr = self._grain(col(d.table, d.column), d.grain, self._is_date(d.table, d.column))
                a = alias(d.grain)
                select.append(f"{expr} AS {a}")
                group.append(a)
                time_aliases.append(a)
            else:
                expr = col(d.table, d.column)
                select.append(expr)
                group.append(expr)
        measure_aliases = []
        for m in plan.measures:
            expr = self._measure(m, col)
            a = alias(self._measure_name(m))
            select.append(f"{expr} AS {a}")
            measure_aliases.append(a)
        where = [self._cond(f, col) for f in plan.filters if f not in semi]
        for f in semi:
            key = self.res.semi_joinable(plan.table, f.table)
            other = self.ctx.table(f.table)
            if not key or other is None:
                raise NotUnderstood(f"I do not know how to relate {plan.table} to {f.table}.")
            inner = self._cond(f, lambda _t, c: sql_name(c))
            where.append(f"{col(plan.table, key)} IN (SELECT {sql_name(key)} FROM {other.ref} WHERE {inner})")
        if plan.window and plan.time_column:
            where.append(self._window(col(plan.time_table, plan.time_column), plan.window,
                                      self._is_date(plan.time_table, plan.time_column)))
        direction = "ASC" if plan.order == "asc" else "DESC"
        # Top N of amounts split by currency: N per currency (amounts in different currencies do not rank).
        per = [col(d.table, d.column) for d in plan.dims if d.auto and not d.grain] \
            if plan.limit and len(plan.dims) > 1 else []
        if plan.rows:
            order.append(f"{col(plan.table, plan.sort_column)} {direction}")
        elif plan.limit and measure_aliases:
            order += per + [f"{measure_aliases[0]} {direction}"] + [g for g in group if g not in per]
        elif time_aliases:
            order += group
        elif group and measure_aliases:
            order.append(f"{measure_aliases[0]} {direction}")
            order += group
        lines = ["SELECT " + ",\n       ".join(select)]
        lines.append(f"FROM {main.ref}" + (f" AS {aliases[plan.table]}" if aliases else ""))
        for t in joins:
            key = self.res.joinable(plan.table, t)
            other = self.ctx.table(t)
            if not key or other is None:
                raise NotUnderstood(f"I do not know how to join {plan.table} with {t}.")
            lines.append(f"INNER JOIN {other.ref} AS {aliases[t]} ON {aliases[plan.table]}.{sql_name(key)} = "
                         f"{aliases[t]}.{sql_name(key)}")
        if where:
            lines.append("WHERE " + "\n  AND ".join(where))
        if group:
            lines.append("GROUP BY " + ", ".join(group))
        if order:
            lines.append("ORDER BY " + ", ".join(order))
        if plan.limit and per:
            lines.append(f"LIMIT {int(plan.limit)} BY {', '.join(per)}")
        elif plan.limit:
            lines.append(f"LIMIT {int(plan.limit)}")
        elif plan.rows:
            lines.append("LIMIT 10")
        return "\n".join(lines)

    @staticmethod
    def _alias(table: str, taken: set[str]) -> str:
        words = _words(table) or ["t"]
        base = "".join(w[0] for w in words if w[0].isalpha()) or "t"
        if base.lower() in {"as", "by", "in", "on", "or", "to", "is", "if", "at", "of"}:
            base += "t"
        candidate, n = base, 2
        while candidate in taken:
            candidate = f"{base}{n}"
            n += 1
        return candidate

    def _is_date(self, table: str, column: str) -> bool:
        c = self.ctx.column(table, column)
        return bool(c and not base_type(c.type).startswith("DateTime"))

    @staticmethod
    def _grain(expr: str, grain: str, is_date: bool) -> str:
        if is_date and grain in ("minute", "hour"):
            grain = "day"
        return {"minute": f"toStartOfMinute({expr})", "hour": f"toStartOfHour({expr})",
                "day": f"toDate({expr})", "week": f"toStartOfWeek({expr}, 1)", "month": f"toStartOfMonth({expr})",
                "year": f"toStartOfYear({expr})"}[grain]

    @staticmethod
    def _window(expr: str, w: Window, is_date: bool) -> str:
        if w.kind == "today":
            return f"toDate({expr}) = today()"
        if w.kind == "yesterday":
            return f"toDate({expr}) = yesterday()"
        if w.kind == "this":
            start = {"week": "toStartOfWeek({x}, 1)", "month": "toStartOfMonth({x})", "year": "toStartOfYear({x})"}
            f = start.get(w.unit, "toDate({x})")
            return f"{f.format(x=expr)} = {f.format(x='today()')}"
        unit = w.unit.upper()
        if is_date:
            if w.unit in ("minute", "hour"):
                return f"{expr} >= today() - 1"
            return f"{expr} > today() - INTERVAL {int(w.amount)} {unit}"
        return f"{expr} >= now() - INTERVAL {int(w.amount)} {unit}"

    def _measure(self, m: Measure, col) -> str:
        if m.func == "count":
            return "count()"
        if m.func == "rate":
            num = self._cond(m.num, col) if m.num else "1"
            if m.den:
                return f"countIf({num}) / countIf({self._cond(m.den, col)})"
            return f"countIf({num}) / count()"
        c = col(m.table, m.column)
        return {"uniq": f"uniqExact({c})", "sum": f"sum({c})", "avg": f"avg({c})", "min": f"min({c})",
                "max": f"max({c})", "median": f"quantileExactInclusive(0.5)({c})"}[m.func]

    @staticmethod
    def _measure_name(m: Measure) -> str:
        if m.func == "count":
            return m.label if m.label and m.label != "rows" else "count"
        if m.func == "rate":
            return f"{m.num.values[0] if m.num else ''}_rate"
        if m.func == "uniq":
            return "unique_" + plural(words(m.column)).replace(" (", "_").rstrip(")")
        prefix = {"sum": "total", "avg": "avg", "min": "min", "max": "max", "median": "median"}[m.func]
        if m.func == "sum" and m.label and m.label != m.column and stem(m.label) in _CONCEPT_STEMS:
            return m.label
        return f"{prefix}_{m.column}"

    def _cond(self, f: Cond, col) -> str:
        c = col(f.table, f.column)
        literal = [quote_literal(v) for v in f.values]
        if f.op in ("in", "not in"):
            return f"{c} {f.op.upper()} ({', '.join(literal)})"
        if f.op == "between":
            return f"{c} BETWEEN {literal[0]} AND {literal[1]}"
        return f"{c} {f.op} {literal[0]}"


# ---------------------------------------------------------------------------- words for the answer


def describe(plan: Plan) -> str:
    """What was computed, in words: “number of purchases by day where currency is EUR in the last 7 days”."""
    if plan.rows:
        first = plan.order == "asc"
        if plan.sort_column == plan.time_column:
            text = f"{'earliest' if first else 'latest'} rows of {words(plan.table)}"
        else:
            text = f"rows of {words(plan.table)} with the {'lowest' if first else 'highest'} {words(plan.sort_column)}"
    else:
        names = [_measure_words(m, plan) for m in plan.measures]
        text = " and ".join(names)
        counted = bool(plan.measures) and plan.measures[0].func in ("count", "uniq")
        if plan.limit == 1 and plan.dims:
            best = ("fewest" if counted else "lowest") if plan.order == "asc" else ("most" if counted else "highest")
            what = names[0][len("number of "):] if counted and names[0].startswith("number of ") else names[0]
            text = f"{' and '.join(_dim_words(d) for d in plan.dims if not d.auto)} with the {best} {what}"
            if any(d.auto for d in plan.dims):
                text += " in each currency"
        elif plan.dims:
            text += " by " + " and ".join(_dim_words(d) for d in plan.dims)
    shown = [f for f in plan.filters if not _says_itself(f, plan)]
    conds = [f.describe() for f in shown if not f.describe().startswith("in ")]
    if conds:
        text += " where " + " and ".join(conds)
    for f in shown:
        if f.describe().startswith("in "):
            text += " " + f.describe()  # "in EUR"
    if plan.window:
        text += f" {plan.window.describe()}"
    if plan.limit and not plan.rows and plan.limit != 1:
        text += f", {'top' if plan.order != 'asc' else 'bottom'} {plan.limit}"
        if any(d.auto for d in plan.dims) and len(plan.dims) > 1:
            text += " in each currency"
    elif plan.order == "asc" and plan.dims and not plan.rows and plan.limit != 1:
        text += ", smallest first"
    return text


def words(name: str) -> str:
    """A column or table name as words: payment_method → payment method, duration_ms → duration (ms)."""
    parts = _words(name)
    if len(parts) > 1 and parts[-1] in ("ms", "s", "sec", "usd", "eur", "gbp"):
        return " ".join(parts[:-1]) + f" ({parts[-1]})"
    if len(parts) > 1 and parts[-1] in ("id", "uuid"):
        return " ".join(parts[:-1])
    return " ".join(parts) or name


def plural(phrase: str) -> str:
    if phrase.endswith(("s", ")")):
        return phrase
    if phrase.endswith("y") and not phrase.endswith(("ay", "ey", "oy", "uy")):
        return phrase[:-1] + "ies"
    return phrase + "s"


def _measure_words(m: Measure, plan: Plan) -> str:
    if m.func == "count":
        label = m.label if m.label and m.label != "rows" else ""
        if not label:
            return f"number of {words(plan.table)} rows"
        return f"number of {label}" if label.endswith("s") else f"number of {label} rows"
    if m.func == "rate":
        num = m.num.values[0] if m.num else ""
        if m.den:
            return f"{num} rate ({num} ÷ {m.den.values[0]})"
        return f"share of rows with {words(m.num.column) if m.num else ''} {num}".replace("  ", " ")
    if m.func == "uniq":
        return f"number of distinct {plural(words(m.column))}"
    word = {"sum": "total", "avg": "average", "min": "minimum", "max": "maximum", "median": "median"}[m.func]
    return f"{word} {words(m.column)}"


def _dim_words(d: Dim) -> str:
    return d.grain or words(d.column)


def _says_itself(f: Cond, plan: Plan) -> bool:
    """ "number of logins where event type is login": the filter repeats the counted word."""
    labels = {stem(w) for m in plan.measures if m.func == "count" for w in _words(m.label)}
    return f.op == "=" and len(f.values) == 1 and bool(labels) \
        and {stem(w) for w in _words(str(f.values[0]))} <= labels


# ---------------------------------------------------------------------------- suggestions


def suggestions(ctx: SubjectContext, n: int = 3) -> list[str]:
    """Questions the built-in assistant can answer about this subject (each checked by reading it)."""
    tables = sorted(ctx.tables, key=lambda t: (-(len(t.time_columns) > 0), -t.rows))
    kinds: dict[str, list[tuple[str, str]]] = {"count": [], "measure": [], "time": [], "filter": []}
    for t in tables:
        label = _label(t.name)
        cats = [c for c in t.columns if c.is_category]
        nums = [c for c in t.columns if c.kind == "number"]
        if cats:
            kinds["count"].append((t.name, f"{label.capitalize()} by {_label(cats[0].name)}"))
        if nums and cats:
            kinds["measure"].append((t.name, f"Average {_label(_short(nums[0].name))} by {_label(cats[-1].name)}"))
        if t.time_columns:
            kinds["time"].append((t.name, f"{label.capitalize()} per day in the last 7 days"))
        for c in cats:
            plain = [v for v in c.values if re.fullmatch(r"[A-Za-z][A-Za-z_ ]+", v)]
            if plain:
                kinds["filter"].append((t.name, f"How many {label} with {_label(c.name)} {plain[0]}?"))
                break
    out: list[str] = []
    used: set[str] = set()
    for kind in ("count", "measure", "time", "filter"):
        options = sorted(kinds[kind], key=lambda o: o[0] in used)  # prefer a table not shown yet
        for table, q in options:
            if q not in out and _answers(ctx, q):
                out.append(q)
                used.add(table)
                break
        if len(out) >= n:
            break
    if not out and ctx.tables:
        out.append(f"How many rows are in {ctx.tables[0].name}?")
    return out[:n]


def _label(name: str) -> str:
    return name.replace("_", " ").strip()


def _short(name: str) -> str:
    words = name.split("_")
    return "_".join(words[:-1]) if len(words) > 1 and words[-1] in ("ms", "s", "sec", "usd", "eur") else name


def _answers(ctx: SubjectContext, question: str) -> bool:
    try:
        return answer(question, ctx.with_previous(None), with_suggestions=False).ok
    except Exception:
        return False


# ---------------------------------------------------------------------------- entry point

_lexicons: dict[int, tuple[list[TableInfo], Lexicon]] = {}


def lexicon(ctx: SubjectContext) -> Lexicon:
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


def answer(question: str, ctx: SubjectContext, with_suggestions: bool = True) -> BuiltinAnswer:
    """Read a question (and the previous turn's plan) into SQL, or say what was not understood."""
    if not question or not question.strip():
        return BuiltinAnswer(False, message="The question is empty.",
                             suggestions=suggestions(ctx) if with_suggestions else [])
    lex = lexicon(ctx)
    forecast = _FORECAST.search(question)
    reading = read_question(_FORECAST.sub(" ", question) if forecast else question, lex)
    unknown = _unknown_words(reading)
    if forecast and not unknown:  # "what will revenue be next year" (the weather tomorrow is not understood)
        return BuiltinAnswer(False, message=FORECAST_MESSAGE, refused=True,
                             suggestions=_forecast_suggestions(question, ctx) if with_suggestions else [])
    try:
        if unknown and _WHY.match(question):
            raise NotUnderstood("I can count, sum and compare what is in the data, but not explain causes.")
        if unknown:
            # A word that names nothing here ("employees") would otherwise be dropped and the rest answered:
            # a confident answer to another question.
            raise NotUnderstood(_not_understood_message(unknown, ctx))
        parts = interpret(reading, ctx)
        builder = Builder(ctx, lex)
        prev_plan = Plan.from_json(ctx.previous.plan) if ctx.previous and ctx.previous.plan else None
        if prev_plan is not None and _is_follow_up(reading, parts, prev_plan, builder):
            plan = merge_follow_up(prev_plan, reading, parts, builder)
        else:
            if _WHY.match(question):
                raise NotUnderstood("I can count, sum and compare what is in the data, but not explain causes.")
            if not _has_subject(parts, reading, ctx) or _only_a_noun(parts, reading):
                raise NotUnderstood(_not_understood_message(reading.unknown, ctx))
            plan = builder.build(reading, parts)
        split_by_currency(plan, ctx)
        sql = Compiler(ctx).compile(plan)
    except NotUnderstood as exc:
        return BuiltinAnswer(False, message=str(exc), suggestions=suggestions(ctx) if with_suggestions else [])
    return BuiltinAnswer(True, sql=sql, plan=plan, description=describe(plan), chart=plan.chart)


def _has_subject(parts: Parts, reading: Reading, ctx: SubjectContext) -> bool:
    if parts.head is not None or parts.rate is not None:
        return True
    if len(ctx.tables) == 1 and any(f in ("count", "") for f, _t, _h in parts.aggs):
        return True  # "how many rows?" about a single table (a saved query's result)
    if any(t is not None for _f, t, _h in parts.aggs):
        return True
    if parts.dims or any(_has(e, "table") for e in parts.evidence):
        return True
    if parts.filters and (parts.aggs or reading.grains or reading.window):
        return True
    return False


_WHY = re.compile(r"^\s*(why|how come|explain|predict|forecast|will|should|would|could you explain)\b", re.I)


def _only_a_noun(parts: Parts, reading: Reading) -> bool:
    """ "people churn": one recognised noun among words that mean nothing here — do not guess."""
    structure = (parts.aggs or parts.dims or parts.filters or parts.compares or parts.rate or reading.grains
                 or reading.window or reading.limit or parts.latest)
    return bool(reading.unknown) and not structure


def _not_understood_message(unknown: list[str], ctx: SubjectContext) -> str:
    if unknown:
        words = ", ".join(repr(w) for w in unknown[:4])
        where = "this result" if ctx.subject.is_query else f"the {ctx.subject.database} database"
        return f"I could not match {words} to a table, column or value of {where}."
    return "I could not tell what to count or measure in this question."


# Words that carry no meaning of their own in a question about data ("where do users come from").
FILLER_WORDS = set("""
come comes came coming go goes went look looks looking like break breakdown overview summary summarise summarize
stats statistics figure figures metric metrics kpi kpis currently current right actually really roughly
approximately approx ok okay hey hi hello thanks thank kindly exist exists existing recorded tracked stored
seen observed placed contain contains containing happening counted
""".split())
PRONOUNS = {"it", "them", "they", "those", "these", "their"}


def _unknown_words(reading: Reading) -> list[str]:
    """Words of the question that match no table, column, value or keyword (and are not filler)."""
    return [w for w in reading.unknown if w.lower() not in FILLER_WORDS and w.lower() not in PRONOUNS]


# Questions about the future: the data only holds the past, and a sum of it is not a forecast.
_FORECAST = re.compile(r"\b(will|forecast\w*|predict\w*|projection\w*|projected|going to be|expected to|"
                       r"next\s+(?:hour|day|week|month|quarter|year|\d+\s+\w+)|tomorrow|in the future|"
                       r"future)\b", re.I)
FORECAST_MESSAGE = "I can't forecast; I can only show what is already in the data. Here is what I can show:"


def _forecast_suggestions(question: str, ctx: SubjectContext) -> list[str]:
    """The history of what was asked about ("revenue per month"), then the usual suggestions."""
    out: list[str] = []
    reading = read_question(_FORECAST.sub(" ", question), lexicon(ctx))
    try:
        parts = interpret(reading, ctx)
    except NotUnderstood:
        parts = Parts()
    for item in [t for _f, t, _h in parts.aggs if t] + ([parts.head] if parts.head else []):
        q = f"{item.text[:1].upper()}{item.text[1:]} per month"
        if q not in out and _answers(ctx, q):
            out.append(q)
    return (out + [s for s in suggestions(ctx) if s not in out])[:3]


def _is_follow_up(reading: Reading, parts: Parts, prev: Plan, builder: "Builder") -> bool:
    """A short modification of the previous answer, rather than a question of its own?"""
    res = builder.res
    related = {prev.table} | {t.name for t in builder.ctx.tables if res.joinable(prev.table, t.name)
                              or res.semi_joinable(prev.table, t.name)}
    named = {m.table for item in parts.evidence + ([parts.head] if parts.head else [])
             for m in item.meanings if m.kind == "table" and m.strength >= 2}
    if named and not (named & related):
        return False  # "now purchases by day" after a question about events: a new question
    if reading.follow_marker:
        return True  # "now …", "only …", "… instead", "what about …", "and for …", "it", "them"
    # A question with its own subject ("top 5 countries by revenue") is a new question, even when it
    # starts like a modifier; a bare modifier ("top 5", "by device", "in the last 7 days") follows up.
    has_target = any(t is not None for _f, t, _h in parts.aggs) or parts.head is not None \
        or (parts.rate is not None and parts.rate[0] is not None)
    if named or has_target:
        return False
    return True
