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

Modules, in the order a question goes through them: ``vocabulary`` (fixed words),
``lexicon`` (the schema's words), ``reading``, ``interpreting``, ``joins``,
``planning`` (with currencies), ``follow_ups``, ``sql``, ``describing``,
``suggesting``, and ``answering`` (the entry point, :func:`answer`).
"""

from helios_core.chat.builtin.answering import FORECAST_MESSAGE, answer, suggestions
from helios_core.chat.builtin.describing import describe
from helios_core.chat.builtin.follow_ups import is_follow_up, merge_follow_up
from helios_core.chat.builtin.interpreting import Parts, interpret
from helios_core.chat.builtin.lexicon import Lexicon, Meaning, lexicon_for
from helios_core.chat.builtin.plan import BuiltinAnswer, Cond, Dim, NotUnderstood, Plan, PlanMeasure, Window
from helios_core.chat.builtin.planning import Builder, currency_column, split_by_currency
from helios_core.chat.builtin.reading import Item, Reading, read_question
from helios_core.chat.builtin.sql import Compiler
from helios_core.chat.builtin.vocabulary import quote_literal, stem

__all__ = ["FORECAST_MESSAGE", "Builder", "BuiltinAnswer", "Compiler", "Cond", "Dim", "Item", "Lexicon", "Meaning",
           "PlanMeasure", "NotUnderstood", "Parts", "Plan", "Reading", "Window", "answer", "currency_column",
           "describe",
           "interpret", "is_follow_up", "lexicon_for", "merge_follow_up", "quote_literal", "read_question",
           "split_by_currency", "stem", "suggestions"]
