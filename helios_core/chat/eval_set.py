"""The question set the built-in assistant is measured on (tests and ``bench/chat_eval.py``).

Each case is a question — or a chain of questions, where each one follows up on
the answer before it — over the demo database (:mod:`helios_core.demo`), with
its expected result written by hand as SQL. A case passes when the assistant's
result has the same *set of rows* as the expected SQL's (column names, column
order and SQL text do not matter; numbers are compared to 9 significant digits).
"""

from __future__ import annotations

import itertools
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pandas as pd

DATABASE = "demo"


@dataclass
class Case:
    questions: list[str]          # the last one is judged; the others set up its context
    expected_sql: str             # empty: the last question must be declined with suggestions
    kind: str                     # aggregate group filter time join rate follow-up new-question rows unanswerable
    chart: str = ""               # the chart kind the answer must have, when the question asks for one
    tags: list[str] = field(default_factory=list)

    @property
    def question(self) -> str:
        return self.questions[-1]

    @property
    def label(self) -> str:
        return " → ".join(self.questions)


def _c(q: str | list[str], sql: str, kind: str, chart: str = "") -> Case:
    return Case([q] if isinstance(q, str) else list(q), sql.strip(), kind, chart)


CASES: list[Case] = [
    # ---- single table: counts and aggregates
    _c("How many users are there?", "SELECT count() FROM demo.users", "aggregate"),
    _c("How many purchases were made?", "SELECT count() FROM demo.purchase_events", "aggregate"),
    _c("How many unique users made a purchase?",
       "SELECT count(DISTINCT user_id) FROM demo.purchase_events", "aggregate"),
    _c("How many customers purchased?", "SELECT count(DISTINCT user_id) FROM demo.purchase_events", "aggregate"),
    _c("Number of distinct sessions", "SELECT count(DISTINCT session_id) FROM demo.user_activity", "aggregate"),
    # amounts are in USD, EUR and GBP: never added up across currencies, so split by currency
    _c("Total revenue", "SELECT currency, sum(amount) FROM demo.purchase_events GROUP BY currency", "aggregate"),
    _c("Total revenue in EUR", "SELECT sum(amount) FROM demo.purchase_events WHERE currency = 'EUR'", "aggregate"),
    _c("Average purchase amount", "SELECT currency, avg(amount) FROM demo.purchase_events GROUP BY currency",
       "aggregate"),
    _c("What is the median purchase amount?",
       "SELECT currency, quantileExactInclusive(0.5)(amount) FROM demo.purchase_events GROUP BY currency",
       "aggregate"),
    _c("Minimum purchase amount", "SELECT currency, min(amount) FROM demo.purchase_events GROUP BY currency",
       "aggregate"),
    _c("What is the highest amount?", "SELECT currency, max(amount) FROM demo.purchase_events GROUP BY currency",
       "aggregate"),
    _c("Maximum duration", "SELECT max(duration_ms) FROM demo.user_activity", "aggregate"),
    _c("Average age of users", "SELECT avg(age) FROM demo.users", "aggregate"),
    _c("How many distinct countries do users come from?",
       "SELECT count(DISTINCT country) FROM demo.users", "aggregate"),
    # ---- group by one or two dimensions, top/bottom N
    _c("Users by plan", "SELECT plan, count() FROM demo.users GROUP BY plan", "group"),
    _c("How many users per country?", "SELECT country, count() FROM demo.users GROUP BY country", "group"),
    _c("Events by device", "SELECT device, count() FROM demo.user_activity GROUP BY device", "group"),
    _c("What's the split of events by device?", "SELECT device, count() FROM demo.user_activity GROUP BY device",
       "group"),
    _c("Purchases by status", "SELECT status, count() FROM demo.purchase_events GROUP BY status", "group"),
    _c("Total revenue by currency",
       "SELECT currency, sum(amount) FROM demo.purchase_events GROUP BY currency", "group"),
    _c("Average amount by payment method",
       "SELECT payment_method, currency, avg(amount) FROM demo.purchase_events GROUP BY payment_method, currency",
       "group"),
    _c("Number of events by device and event type",
       "SELECT device, event_type, count() FROM demo.user_activity GROUP BY device, event_type", "group"),
    _c("Median duration by event type",
       "SELECT event_type, quantileExactInclusive(0.5)(duration_ms) FROM demo.user_activity GROUP BY event_type",
       "group"),
    _c("Unique sessions per device",
       "SELECT device, count(DISTINCT session_id) FROM demo.user_activity GROUP BY device", "group"),
    _c("Top 5 pages by page views",
       "SELECT page, count() AS n FROM demo.user_activity WHERE event_type = 'page_view' "
       "GROUP BY page ORDER BY n DESC LIMIT 5", "group"),
    _c("Which device has the most logins?",
       "SELECT device, count() AS n FROM demo.user_activity WHERE event_type = 'login' "
       "GROUP BY device ORDER BY n DESC LIMIT 1", "group"),
    _c("Bottom 3 countries by number of events",
       "SELECT country, count() AS n FROM demo.user_activity GROUP BY country ORDER BY n ASC LIMIT 3", "group"),
    _c("Which currency has the highest average amount?",
       "SELECT currency, avg(amount) AS a FROM demo.purchase_events GROUP BY currency ORDER BY a DESC LIMIT 1",
       "group"),
    _c("Top 10 users by revenue",
       "SELECT user_id, currency, sum(amount) AS r FROM demo.purchase_events GROUP BY user_id, currency "
       "ORDER BY r DESC LIMIT 10 BY currency", "group"),
    _c("What is the most common event type?",
       "SELECT event_type, count() AS n FROM demo.user_activity GROUP BY event_type ORDER BY n DESC LIMIT 1",
       "group"),
    # ---- filters recognised from the data
    _c("Purchases in EUR", "SELECT count() FROM demo.purchase_events WHERE currency = 'EUR'", "filter"),
    _c("Logins on mobile",
       "SELECT count() FROM demo.user_activity WHERE event_type = 'login' AND device = 'mobile'", "filter"),
    _c("Revenue from completed purchases in USD",
       "SELECT sum(amount) FROM demo.purchase_events WHERE status = 'completed' AND currency = 'USD'", "filter"),
    _c("How many enterprise users are there?",
       "SELECT count() FROM demo.users WHERE plan = 'enterprise'", "filter"),
    _c("Refunded purchases by payment method",
       "SELECT payment_method, count() FROM demo.purchase_events WHERE status = 'refunded' "
       "GROUP BY payment_method", "filter"),
    _c("Average duration of clicks on tablet",
       "SELECT avg(duration_ms) FROM demo.user_activity WHERE event_type = 'click' AND device = 'tablet'",
       "filter"),
    _c("Purchases over 400", "SELECT count() FROM demo.purchase_events WHERE amount > 400", "filter"),
    _c("Users older than 60", "SELECT count() FROM demo.users WHERE age > 60", "filter"),
    _c("Purchases paid with paypal in euros",
       "SELECT count() FROM demo.purchase_events WHERE payment_method = 'paypal' AND currency = 'EUR'", "filter"),
    _c("Events excluding desktop by country",
       "SELECT country, count() FROM demo.user_activity WHERE device != 'desktop' GROUP BY country", "filter"),
    # ---- time windows and grains
    _c("Purchases per day in the last 7 days",
       "SELECT toDate(event_time) AS d, count() FROM demo.purchase_events "
       "WHERE event_time >= now() - INTERVAL 7 DAY GROUP BY d", "time"),
    _c("Logins per hour yesterday",
       "SELECT toStartOfHour(event_time) AS h, count() FROM demo.user_activity "
       "WHERE event_type = 'login' AND toDate(event_time) = yesterday() GROUP BY h", "time"),
    _c("Revenue per week",
       "SELECT toMonday(event_time) AS w, currency, sum(amount) FROM demo.purchase_events GROUP BY w, currency",
       "time"),
    _c("Signups per month",
       "SELECT toStartOfMonth(signup_date) AS m, count() FROM demo.users GROUP BY m", "time"),
    _c("How many purchases yesterday?",
       "SELECT count() FROM demo.purchase_events WHERE toDate(event_time) = yesterday()", "time"),
    _c("Daily active users",
       "SELECT toDate(event_time) AS d, count(DISTINCT user_id) FROM demo.user_activity GROUP BY d", "time"),
    _c("How many failed purchases in the last 3 days",
       "SELECT count() FROM demo.purchase_events WHERE status = 'failed' AND event_time >= now() - INTERVAL 3 DAY",
       "time"),
    _c("Events per day by device in the last 7 days",
       "SELECT toDate(event_time) AS d, device, count() FROM demo.user_activity "
       "WHERE event_time >= now() - INTERVAL 7 DAY GROUP BY d, device", "time"),
    _c("Monthly revenue in GBP",
       "SELECT toStartOfMonth(event_time) AS m, sum(amount) FROM demo.purchase_events WHERE currency = 'GBP' "
       "GROUP BY m", "time"),
    # ---- rates between two counts
    _c("Solve rate per site",
       "SELECT site_id, countIf(type = 'solve') / countIf(type = 'serve') FROM demo.captcha_events "
       "GROUP BY site_id", "rate"),
    _c("Overall solve rate",
       "SELECT countIf(type = 'solve') / countIf(type = 'serve') FROM demo.captcha_events", "rate"),
    _c("Refund rate by currency",
       "SELECT currency, countIf(status = 'refunded') / count() FROM demo.purchase_events GROUP BY currency",
       "rate"),
    _c("Number of captcha serves per site",
       "SELECT site_id, count() FROM demo.captcha_events WHERE type = 'serve' GROUP BY site_id", "rate"),
    # ---- two tables (purchases or activity joined with users by user_id)
    _c("Revenue by plan",
       "SELECT u.plan, p.currency, sum(p.amount) FROM demo.purchase_events AS p "
       "JOIN demo.users AS u ON u.user_id = p.user_id GROUP BY u.plan, p.currency", "join"),
    _c("Top 3 countries by revenue",
       "SELECT u.country, p.currency, sum(p.amount) AS r FROM demo.purchase_events AS p "
       "JOIN demo.users AS u ON u.user_id = p.user_id GROUP BY u.country, p.currency "
       "ORDER BY r DESC LIMIT 3 BY p.currency", "join"),
    _c("Average purchase amount by country",
       "SELECT u.country, p.currency, avg(p.amount) FROM demo.purchase_events AS p "
       "JOIN demo.users AS u ON u.user_id = p.user_id GROUP BY u.country, p.currency", "join"),
    _c("Revenue from pro users",
       "SELECT p.currency, sum(p.amount) FROM demo.purchase_events AS p "
       "JOIN demo.users AS u ON u.user_id = p.user_id WHERE u.plan = 'pro' GROUP BY p.currency", "join"),
    _c("How many logins by enterprise users?",
       "SELECT count() FROM demo.user_activity AS a JOIN demo.users AS u ON u.user_id = a.user_id "
       "WHERE a.event_type = 'login' AND u.plan = 'enterprise'", "join"),
    # ---- follow-ups that modify the previous query
    _c(["Logins on mobile in the last 7 days", "now by day"],
       "SELECT toDate(event_time) AS d, count() FROM demo.user_activity WHERE event_type = 'login' "
       "AND device = 'mobile' AND event_time >= now() - INTERVAL 7 DAY GROUP BY d", "follow-up"),
    _c(["Revenue by country", "top 5 instead"],
       "SELECT u.country, p.currency, sum(p.amount) AS r FROM demo.purchase_events AS p "
       "JOIN demo.users AS u ON u.user_id = p.user_id GROUP BY u.country, p.currency "
       "ORDER BY r DESC LIMIT 5 BY p.currency", "follow-up"),
    _c(["Revenue by country", "only EUR"],
       "SELECT u.country, sum(p.amount) FROM demo.purchase_events AS p "
       "JOIN demo.users AS u ON u.user_id = p.user_id WHERE p.currency = 'EUR' GROUP BY u.country", "follow-up"),
    _c(["Purchases by payment method", "only EUR"],
       "SELECT payment_method, count() FROM demo.purchase_events WHERE currency = 'EUR' GROUP BY payment_method",
       "follow-up"),
    _c(["Events by device", "as a bar chart"],
       "SELECT device, count() FROM demo.user_activity GROUP BY device", "follow-up", chart="bar"),
    _c(["Total revenue by currency", "average instead"],
       "SELECT currency, avg(amount) FROM demo.purchase_events GROUP BY currency", "follow-up"),
    _c(["How many purchases in EUR?", "what about GBP?"],
       "SELECT count() FROM demo.purchase_events WHERE currency = 'GBP'", "follow-up"),
    _c(["Events per day in the last 7 days", "only mobile"],
       "SELECT toDate(event_time) AS d, count() FROM demo.user_activity WHERE device = 'mobile' "
       "AND event_time >= now() - INTERVAL 7 DAY GROUP BY d", "follow-up"),
    _c(["Revenue by plan", "only completed"],
       "SELECT u.plan, p.currency, sum(p.amount) FROM demo.purchase_events AS p "
       "JOIN demo.users AS u ON u.user_id = p.user_id WHERE p.status = 'completed' GROUP BY u.plan, p.currency",
       "follow-up"),
    _c(["Logins by device", "now per week", "only tablet"],
       "SELECT toMonday(event_time) AS w, count() FROM demo.user_activity WHERE event_type = 'login' "
       "AND device = 'tablet' GROUP BY w", "follow-up"),
    _c(["Purchases by currency", "in the last 7 days"],
       "SELECT currency, count() FROM demo.purchase_events WHERE event_time >= now() - INTERVAL 7 DAY "
       "GROUP BY currency", "follow-up"),
    _c(["How many purchases in EUR?", "and for GBP?"],
       "SELECT count() FROM demo.purchase_events WHERE currency = 'GBP'", "follow-up"),
    _c(["Events by device", "how many of them are on mobile?"],
       "SELECT device, count() FROM demo.user_activity WHERE device = 'mobile' GROUP BY device", "follow-up"),
    _c(["Purchases by status", "top 2"],
       "SELECT status, count() AS n FROM demo.purchase_events GROUP BY status ORDER BY n DESC LIMIT 2", "follow-up"),
    # ---- a question of its own after another answer: answered fresh over the whole database
    _c(["How many users signed up per day?", "Top 5 countries by revenue"],
       "SELECT u.country, p.currency, sum(p.amount) AS r FROM demo.purchase_events AS p "
       "JOIN demo.users AS u ON u.user_id = p.user_id GROUP BY u.country, p.currency "
       "ORDER BY r DESC LIMIT 5 BY p.currency", "new-question"),
    _c(["Events by device", "Top 3 pages by page views"],
       "SELECT page, count() AS n FROM demo.user_activity WHERE event_type = 'page_view' "
       "GROUP BY page ORDER BY n DESC LIMIT 3", "new-question"),
    _c(["Revenue by plan", "How many users per country?"],
       "SELECT country, count() FROM demo.users GROUP BY country", "new-question"),
    # ---- rows rather than aggregates
    _c("The 10 largest purchases",
       "SELECT * FROM demo.purchase_events ORDER BY amount DESC LIMIT 10", "rows"),
    _c("Latest 5 logins",
       "SELECT * FROM demo.user_activity WHERE event_type = 'login' ORDER BY event_time DESC LIMIT 5", "rows"),
    # ---- questions it must decline, with suggestions, rather than answer another question (no expected SQL)
    _c("What will revenue be next year?", "", "unanswerable"),
    _c("Predict next month's signups", "", "unanswerable"),
    _c("How many employees does the company have?", "", "unanswerable"),
    _c(["How many purchases were made?", "how many employees does the company have"], "", "unanswerable"),
    _c(["Total revenue", "anything interesting?"], "", "unanswerable"),
    _c(["Revenue by plan", "what will it be next month?"], "", "unanswerable"),
    _c("Average age of purchases", "", "unanswerable"),      # not the average age of all users
    _c("Total duration of purchases", "", "unanswerable"),   # durations are activity's, not purchases'
]

# Questions the built-in assistant must decline (with suggestions) rather than guess.
UNANSWERABLE = [
    "What's the weather tomorrow?",
    "Write me a poem about databases",
    "How many unicorns are there?",
    "Why did people churn?",
    "What will revenue be next year?",
    "How many employees does the company have?",
    "Anything interesting?",
    "How many people bought something?",
]


# ---------------------------------------------------------------------------- comparing results


def _norm(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (pd.Timestamp, datetime)):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, (str, bytes, list, tuple)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return f"{float(value):.9g}"
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        items = value.tolist() if hasattr(value, "tolist") else value
        return tuple(_norm(v) for v in items)
    return str(value)


def row_set(frame: pd.DataFrame) -> Counter:
    return Counter(tuple(_norm(v) for v in row) for row in frame.itertuples(index=False, name=None))


def same_rows(actual: pd.DataFrame, expected: pd.DataFrame) -> bool:
    """The same multiset of rows, allowing any order of rows and of columns."""
    if actual.shape != expected.shape:
        return False
    want = row_set(expected)
    columns = list(actual.columns)
    if len(columns) > 6:
        return row_set(actual) == want
    for order in itertools.permutations(range(len(columns))):
        if row_set(actual.iloc[:, list(order)]) == want:
            return True
    return False


@dataclass
class CaseResult:
    case: Case
    ok: bool
    sql: str = ""
    reason: str = ""
    answer_ms: float = 0.0       # without the query itself
    query_ms: float = 0.0


def run_case(ch: Any, case: Case) -> CaseResult:
    """Ask the case's questions in one (in-memory) conversation; compare the last answer with the expected rows."""
    from helios_core.chat.assistant import Assistant
    from helios_core.chat.context import PreviousTurn, Subject

    assistant = Assistant(ch)
    subject = Subject(DATABASE)
    previous = None
    answer = None
    for i, q in enumerate(case.questions):
        answer = assistant.ask(q, subject=subject, previous=previous)
        if not case.expected_sql and i == len(case.questions) - 1:
            # must decline, and offer questions it can answer instead
            ok = not answer.ok and bool(answer.suggestions)
            return CaseResult(case, ok, answer.sql, "" if ok else f"answered instead of declining: {answer.text}",
                              answer.overhead_ms, answer.timings.get("query", 0.0))
        if not answer.ok:
            return CaseResult(case, False, answer.sql, f"not answered at {q!r}: {answer.text}",
                              answer.overhead_ms, answer.timings.get("query", 0.0))
        previous = PreviousTurn(q, answer.sql, answer.column_names, answer.column_types, answer.plan,
                                answer.chart.kind if answer.chart else "")
    assert answer is not None
    expected = ch.query(case.expected_sql, limit=1000).frame
    ok = answer.frame is not None and same_rows(answer.frame, expected)
    reason = "" if ok else (f"rows differ: got {len(answer.frame) if answer.frame is not None else 0} rows × "
                            f"{len(answer.column_names)} cols, expected {len(expected)} × {expected.shape[1]}")
    if ok and case.chart and (answer.chart is None or answer.chart.kind != case.chart):
        ok, reason = False, f"chart is {answer.chart.kind if answer.chart else 'missing'}, expected {case.chart}"
    return CaseResult(case, ok, answer.sql, reason, answer.overhead_ms, answer.timings.get("query", 0.0))


def run_all(ch: Any, cases: list[Case] | None = None) -> list[CaseResult]:
    results = []
    for case in cases or CASES:
        started = time.perf_counter()
        try:
            results.append(run_case(ch, case))
        except Exception as exc:  # a crash is a failed case, not a failed run
            results.append(CaseResult(case, False, reason=f"{type(exc).__name__}: {exc}",
                                      answer_ms=(time.perf_counter() - started) * 1000))
    return results
