"""Asking a question: context → provider → gate → query → an answer with table, chart and SQL.

:class:`Assistant` is what the Chat page and the CLI call. ``ask`` keeps the
question and the answer in the chat's history (when a store is given), so the
next question can follow up on this one, in this process or after a restart.

An answer is several messages of one turn: a sentence computed from the
result, the result table (capped rows with column types), a plotly chart when
the result suits one, and the SQL that ran (with what a follow-up needs).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from helios_core.charts import CHART_KINDS, ChartSpec, build_chart, suggest_chart
from helios_core.chat import gate, live
from helios_core.chat.builtin import suggestions
from helios_core.chat.context import PreviousTurn, Subject, SubjectContext, build_context
from helios_core.chat.providers import BuiltinProvider, GenerateRequest, Generation, Provider
from helios_core.chat.store import Chat, ChatStore, Message, NewMessage, safe_subject_label
from helios_core.chat.summary import summarize
from helios_core.chtypes import describe
from helios_core.clickhouse import ClickHouse, QueryResult, frame_records
from helios_core.errors import HeliosError

QUERY_ROW_LIMIT = 1000   # rows an answer's query may return
STORED_ROWS = 200        # rows of a result kept in the chat history
SHARED_ROWS = 20         # rows an LLM may see of the previous result, when allowed


@dataclass
class Answer:
    ok: bool
    text: str
    chat_id: str = ""
    sql: str = ""
    column_names: list[str] = field(default_factory=list)
    column_types: list[str] = field(default_factory=list)
    frame: pd.DataFrame | None = None
    row_count: int = 0
    truncated: bool = False
    chart: ChartSpec | None = None
    figure: dict[str, Any] | None = None
    suggestions: list[str] = field(default_factory=list)
    provider: str = "builtin"
    plan: dict[str, Any] | None = None
    description: str = ""
    error: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def overhead_ms(self) -> float:
        """Time spent answering, without the query itself."""
        return sum(v for k, v in self.timings.items() if k not in ("query", "total"))

    def rows(self) -> list[dict[str, Any]]:
        return frame_records(self.frame) if self.frame is not None else []

    def to_cli_json(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"answer": self.text, "sql": self.sql, "column_names": self.column_names,
                                   "rows": self.rows(), "chat_id": self.chat_id}
        if self.truncated:
            payload["truncated"] = True
        return payload


class Assistant:
    def __init__(self, ch: ClickHouse, store: ChatStore | None = None, provider: Provider | None = None) -> None:
        self.ch = ch
        self.store = store
        self.provider = provider or BuiltinProvider()

    # ---- asking ----------------------------------------------------------------------

    def ask(self, question: str, chat: Chat | None = None, *, subject: Subject | None = None,
            previous: PreviousTurn | None = None, allow_rows: bool = False) -> Answer:
        """Answer a question about a chat's subject (or a bare ``subject``), following up on its last turn."""
        timings: dict[str, float] = {}
        started = time.perf_counter()
        if chat is not None:
            live.ensure_ready(self.ch, chat)  # a live database chat: its password (memory only) and stand-ins
            subject = Subject(chat.database, chat.subject_sql, chat.subject_label)
            if previous is None and self.store is not None:
                previous = PreviousTurn.from_json(self.store.last_query(chat.id))
        if subject is None:
            raise HeliosError("Nothing to ask about.", "Pick a database or open a chat.")
        with _timed(timings, "context"):
            ctx = build_context(self.ch, subject, previous)
        if chat is not None and self.store is not None:
            with _timed(timings, "store"):
                self.store.add_turn(chat.id, [NewMessage("user", "text", question.strip())])
        answer = self._answer(question, ctx, allow_rows, timings, previous)
        answer.chat_id = chat.id if chat else ""
        if chat is not None and self.store is not None:
            with _timed(timings, "store"):
                self.store.add_turn(chat.id, self._messages(question, answer))
                self.store.touch(chat)
        timings["total"] = _ms(started)
        answer.timings = timings
        return answer

    def _answer(self, question: str, ctx: SubjectContext, allow_rows: bool, timings: dict[str, float],
                previous: PreviousTurn | None) -> Answer:
        provider = self.provider
        shared = None
        if allow_rows and previous is not None and provider.name != "builtin":
            shared = self._previous_rows(previous, ctx)
        request = GenerateRequest(question, ctx, allow_rows=allow_rows, shared_rows=shared)
        try:
            with _timed(timings, "generate"):
                generation = provider.generate(request)
        except HeliosError as exc:
            return Answer(False, f"The {provider.name} assistant failed: {exc}", provider=provider.name,
                          error=str(exc))
        if generation.sql is None:
            return self._cannot(generation, provider.name)
        result, checked_sql, error = self._run(generation.sql, ctx, timings)
        if error is not None and provider.can_repair:
            request.repair = (generation.sql, str(error))
            try:
                with _timed(timings, "generate"):
                    generation = provider.generate(request)
            except HeliosError as exc:
                return Answer(False, f"The {provider.name} assistant failed: {exc}", provider=provider.name,
                              error=str(exc), sql=request.repair[0])
            if generation.sql is None:
                return self._cannot(generation, provider.name)
            result, checked_sql, error = self._run(generation.sql, ctx, timings)
        if error is not None or result is None:
            return Answer(False, f"I could not answer that: {error}", sql=generation.sql or "",
                          provider=provider.name, error=str(error), suggestions=_suggest(ctx))
        with _timed(timings, "present"):
            return self.present(result, generation, checked_sql or generation.sql or "", provider.name)

    def _run(self, sql: str, ctx: SubjectContext,
             timings: dict[str, float]) -> tuple[QueryResult | None, str, HeliosError | None]:
        try:
            with _timed(timings, "gate"):
                checked = gate.check(self.ch, sql, ctx.policy())
        except HeliosError as exc:
            return None, "", exc
        try:
            with _timed(timings, "query"):
                result = self._query(ctx, checked.sql, QUERY_ROW_LIMIT)
        except HeliosError as exc:
            return None, checked.sql, exc
        return result, checked.sql, None

    def _previous_rows(self, previous: PreviousTurn, ctx: SubjectContext) -> list[dict[str, Any]] | None:
        try:
            checked = gate.check(self.ch, previous.sql, ctx.policy())
            return self._query(ctx, checked.sql, SHARED_ROWS).records()
        except HeliosError:
            return None

    def _query(self, ctx: SubjectContext, sql: str, limit: int) -> QueryResult:
        """A gate-checked statement: on a live database's server when the subject is one, else in ClickHouse."""
        if ctx.subject.database.startswith(live.STANDIN_PREFIX):  # never its empty stand-ins by mistake
            return live.run(self.ch, ctx.subject.database, sql, limit=limit)
        return self.ch.query(sql, limit=limit)

    @staticmethod
    def _cannot(generation: Generation, provider: str) -> Answer:
        if generation.refused:
            # "I can't forecast; … Here is what I can show: …": the message says why and leads the suggestions.
            text = generation.message
            if generation.suggestions:
                text += " " + " · ".join(generation.suggestions)
            return Answer(False, text, provider=provider, suggestions=generation.suggestions,
                          error=generation.message)
        text = f"I could not answer that. {generation.message}".strip()
        if generation.suggestions:
            text += " Questions I can answer here: " + " · ".join(generation.suggestions)
        return Answer(False, text, provider=provider, suggestions=generation.suggestions, error=generation.message)

    # ---- presenting ------------------------------------------------------------------

    def present(self, result: QueryResult, generation: Generation, sql: str, provider: str) -> Answer:
        frame = result.frame
        names, types = list(result.column_names), list(result.column_types)
        text = summarize(frame, names, types, generation.description, result.truncated)
        spec = suggest_chart(names, types) if len(frame) > 1 else None
        if spec is not None and generation.chart:
            if generation.chart == "table":
                spec = None
            elif generation.chart in CHART_KINDS:
                spec.kind = generation.chart
        figure = chart_figure(frame, spec) if spec is not None else None
        if figure is None:
            spec = None
        return Answer(True, text, sql=sql, column_names=names, column_types=types, frame=frame,
                      row_count=len(frame), truncated=result.truncated, chart=spec, figure=figure,
                      provider=provider, plan=generation.plan, description=generation.description)

    def _messages(self, question: str, answer: Answer) -> list[NewMessage]:
        messages = [NewMessage("assistant", "text", answer.text)]
        if not answer.ok:
            if answer.sql:
                messages.append(NewMessage("assistant", "query", {"sql": answer.sql, "failed": True,
                                                                  "question": question, "provider": answer.provider}))
            return messages
        messages.append(NewMessage("assistant", "table", table_content(answer)))
        if answer.chart is not None and answer.figure is not None:
            messages.append(NewMessage("assistant", "chart", {"spec": answer.chart.to_json(),
                                                              "figure": answer.figure}))
        messages.append(NewMessage("assistant", "query", {
            "sql": answer.sql, "question": question, "column_names": answer.column_names,
            "column_types": answer.column_types, "plan": answer.plan, "provider": answer.provider,
            "description": answer.description, "chart": answer.chart.kind if answer.chart else "",
            "row_count": answer.row_count}))
        return messages


def table_content(answer: Answer) -> dict[str, Any]:
    frame = answer.frame if answer.frame is not None else pd.DataFrame()
    return {"columns": answer.column_names, "types": answer.column_types,
            "rows": frame_records(frame.iloc[:STORED_ROWS]), "row_count": answer.row_count,
            "truncated": answer.truncated or answer.row_count > STORED_ROWS}


def chart_figure(frame: pd.DataFrame, spec: ChartSpec) -> dict[str, Any] | None:
    """The plotly figure as JSON (what the chat history keeps); None when plotly cannot draw it."""
    try:
        return json.loads(build_chart(frame, spec).to_json())
    except Exception:  # plotly refuses some column combinations; the table still answers
        return None


def frame_from_table(content: dict[str, Any]) -> pd.DataFrame:
    """A stored table message back as a DataFrame (time columns parsed), e.g. to redraw its chart."""
    frame = pd.DataFrame(content.get("rows") or [], columns=content.get("columns") or None)
    for name, ctype in zip(content.get("columns") or [], content.get("types") or [], strict=False):
        if name not in frame.columns:
            continue
        described = describe(ctype)
        if described.family == "time":
            frame[name] = pd.to_datetime(frame[name], errors="coerce", utc="'UTC'" in described.inner)
        elif described.family == "date":
            frame[name] = pd.to_datetime(frame[name], errors="coerce").dt.date  # a day, shown without a time
    return frame


def _suggest(ctx: SubjectContext) -> list[str]:
    try:
        return suggestions(ctx)
    except Exception:
        return []


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


@contextmanager
def _timed(timings: dict[str, float], key: str) -> Iterator[None]:
    """Add the block's time to ``timings[key]`` (a step may run twice: the repair round)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = timings.get(key, 0.0) + _ms(started)


def turns(messages: list[Message]) -> list[list[Message]]:
    """Messages grouped by turn, in order (for rendering a chat's history)."""
    grouped: dict[int, list[Message]] = {}
    for m in messages:
        grouped.setdefault(m.turn, []).append(m)
    return [grouped[k] for k in sorted(grouped)]


def new_chat_name(question_or_subject: str) -> str:
    words = " ".join(question_or_subject.split())
    return (words[:48] + "…") if len(words) > 49 else (words or "New chat")


def start_query_chat(ch: ClickHouse, store: ChatStore, sql: str, name: str = "") -> Chat:
    """A chat about a saved query's result ("Ask about this result"): the query must pass the gate."""
    checked = gate.check_subject_sql(ch, sql)
    databases = [t.split(".", 1)[0] for t in checked.tables if "." in t]
    label = safe_subject_label(sql)
    return store.create(name or f"About: {label}", databases[0] if databases else "default",
                        subject_sql=checked.sql, subject_label=label)
