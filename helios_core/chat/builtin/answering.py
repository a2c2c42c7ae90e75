"""The entry point: a question (and the previous turn's plan) into SQL, or why not."""

from __future__ import annotations

import re

from helios_core.chat.builtin import suggesting
from helios_core.chat.builtin.describing import describe
from helios_core.chat.builtin.follow_ups import is_follow_up, merge_follow_up
from helios_core.chat.builtin.interpreting import Parts, interpret
from helios_core.chat.builtin.lexicon import lexicon_for
from helios_core.chat.builtin.plan import BuiltinAnswer, NotUnderstood, Plan
from helios_core.chat.builtin.planning import Builder, split_by_currency
from helios_core.chat.builtin.reading import Reading, has_meaning, read_question
from helios_core.chat.builtin.sql import Compiler
from helios_core.chat.builtin.vocabulary import FILLER_WORDS, PRONOUNS
from helios_core.chat.context import SubjectContext


def suggestions(ctx: SubjectContext, n: int = 3) -> list[str]:
    """Questions the built-in assistant can answer about this subject (each checked by reading it)."""
    return suggesting.suggestions(ctx, lambda q: answers(ctx, q), n)


def answers(ctx: SubjectContext, question: str) -> bool:
    try:
        return answer(question, ctx.with_previous(None), with_suggestions=False).ok
    except Exception:
        return False


def answer(question: str, ctx: SubjectContext, with_suggestions: bool = True) -> BuiltinAnswer:
    """Read a question (and the previous turn's plan) into SQL, or say what was not understood."""
    if not question or not question.strip():
        return BuiltinAnswer(False, message="The question is empty.",
                             suggestions=suggestions(ctx) if with_suggestions else [])
    lex = lexicon_for(ctx)
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
        if prev_plan is not None and is_follow_up(reading, parts, prev_plan, builder):
            plan = merge_follow_up(prev_plan, reading, parts, builder)
        else:
            if _WHY.match(question):
                raise NotUnderstood("I can count, sum and compare what is in the data, but not explain causes.")
            if not _has_subject(parts, reading, ctx) or _only_a_noun(parts, reading):
                raise NotUnderstood(_not_understood_message(reading.unknown, ctx))
            plan = builder.build(reading, parts)
            _check_covered(plan, parts)
        split_by_currency(plan, ctx)
        sql = Compiler(ctx).compile(plan)
    except NotUnderstood as exc:
        return BuiltinAnswer(False, message=str(exc), suggestions=suggestions(ctx) if with_suggestions else [])
    return BuiltinAnswer(True, sql=sql, plan=plan, description=describe(plan), chart=plan.chart)


def _check_covered(plan: Plan, parts: Parts) -> None:
    """Every table or column the question names is used by the plan: "average age of purchases" is not the
    average age of all users."""
    used = {plan.table, plan.time_table} | {d.table for d in plan.dims} | {f.table for f in plan.filters} \
        | {m.table for m in plan.measures if m.table}
    named = parts.evidence + ([parts.head] if parts.head is not None else [])
    left_out = [item.text for item in named
                if item.meanings and not any(m.table in used for m in item.meanings)]
    if left_out:
        words = ", ".join(repr(w) for w in dict.fromkeys(left_out))
        raise NotUnderstood(f"I recognised {words}, but could not use it with the rest of the question "
                            f"(which I read as about {plan.table}).")


def _has_subject(parts: Parts, reading: Reading, ctx: SubjectContext) -> bool:
    if parts.head is not None or parts.rate is not None:
        return True
    if len(ctx.tables) == 1 and any(f in ("count", "") for f, _t, _h in parts.aggs):
        return True  # "how many rows?" about a single table (a saved query's result)
    if any(t is not None for _f, t, _h in parts.aggs):
        return True
    if parts.dims or any(has_meaning(e, "table") for e in parts.evidence):
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
    reading = read_question(_FORECAST.sub(" ", question), lexicon_for(ctx))
    try:
        parts = interpret(reading, ctx)
    except NotUnderstood:
        parts = Parts()
    for item in [t for _f, t, _h in parts.aggs if t] + ([parts.head] if parts.head else []):
        q = f"{item.text[:1].upper()}{item.text[1:]} per month"
        if q not in out and answers(ctx, q):
            out.append(q)
    return (out + [s for s in suggestions(ctx) if s not in out])[:3]
