"""Words with a fixed meaning: stop words, keywords, everyday names for columns, numbers, units."""

from __future__ import annotations

import re
from typing import Any

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
PHRASES = [(re.compile(r"\b(?:logged|logging|log|signed|signing|sign)\s+in\b", re.I), "login"),
            (re.compile(r"\b(?:logged|logging|log|signed|signing|sign)\s+out\b", re.I), "logout"),
            (re.compile(r"\badded\s+to\s+(?:the\s+)?cart\b", re.I), "add to cart")]
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                 "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "fifty": 50,
                 "hundred": 100, "a": 1, "an": 1}
NUM = r"(\d+|" + "|".join(sorted((k for k in NUMBER_WORDS if k not in ("a", "an")), key=len, reverse=True)) + r")"
UNITS = {"minute": "minute", "minutes": "minute", "min": "minute", "mins": "minute", "hour": "hour", "hours": "hour",
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
VERBS = {"has", "have", "had", "is", "are", "was", "were", "gets", "got", "get", "sees", "saw", "see", "with",
          "makes", "made", "make", "generated", "generates", "generate", "brings", "brought", "did", "does", "do",
          "shows", "received", "receives", "drives", "drove", "produced", "produces"}
# Openings that make a question a follow-up even when it names its own subject ("now purchases by day").
# Openings such as "top 5", "by device" or "in the last 7 days" follow up only when nothing else is asked.
FOLLOW_START = ("now", "and ", "but ", "also", "what about", "how about", "instead", "only", "just", "same",
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


def name_words(name: str) -> list[str]:
    return [p for p in re.split(r"[_\s\-./]+", name.lower()) if p]


def quote_literal(value: Any) -> str:
    """A ClickHouse literal for a value taken from the data (strings escaped, numbers as they are)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


# Words that carry no meaning of their own in a question about data ("where do users come from").
FILLER_WORDS = set("""
come comes came coming go goes went look looks looking like break breakdown overview summary summarise summarize
stats statistics figure figures metric metrics kpi kpis currently current right actually really roughly
approximately approx ok okay hey hi hello thanks thank kindly exist exists existing recorded tracked stored
seen observed placed contain contains containing happening counted something new compare comparison split
distribution spread
""".split())
PRONOUNS = {"it", "them", "they", "those", "these", "their"}
