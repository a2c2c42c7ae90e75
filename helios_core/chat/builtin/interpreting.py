"""A reading tied to roles: what is measured, grouped by and filtered on (tables still open)."""

from __future__ import annotations

from dataclasses import dataclass, field

from helios_core.chat.builtin.lexicon import column_kind_of, is_numeric
from helios_core.chat.builtin.reading import Item, Reading, has_meaning
from helios_core.chat.context import SubjectContext


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
        has_value = any(has_meaning(m, "value") for m in group)
        if after_rate:
            # "share of purchases that are refunded": the first value after "share of" is the numerator
            values = [m for m in group if has_meaning(m, "value")]
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
                    parts.head = next(m for m in group if has_meaning(m, "value"))
                _narrow(group, parts)
                return
            for m in group:
                if any(is_numeric(x, ctx) for x in m.meanings) or any(x.agg for x in m.meanings):
                    parts.aggs.append(("", m, None))
                elif has_meaning(m, "column"):
                    parts.dims.append(m)
                else:
                    parts.evidence.append(m)
            return
        if segment in ("top", "which"):
            for m in group:
                if has_meaning(m, "value") and not (has_meaning(m, "column") or has_meaning(m, "table")):
                    parts.filters.append((m, m.data == "neg"))
                elif has_meaning(m, "column") and not has_meaning(m, "table") \
                        and not any(is_numeric(x, ctx) for x in m.meanings):
                    parts.dims.append(m)
                elif has_meaning(m, "column") and has_meaning(m, "table") and any(x.entity for x in m.meanings):
                    parts.dims.append(m)
                else:
                    parts.evidence.append(m)
                    if parts.head is None and (has_meaning(m, "table") or has_meaning(m, "rows")):
                        parts.head = m
            return
        # main segment
        numeric = [m for m in group if any(is_numeric(x, ctx) or x.agg for x in m.meanings)]
        if numeric and not saw_measure_np:
            parts.aggs.append(("", numeric[0], None))
            saw_measure_np = True
            _narrow(group, parts, skip=numeric[0])
            return
        if not saw_measure_np and parts.head is None:
            head = group[-1]
            # "enterprise users": the last word is the noun, the others narrow it down.
            if has_meaning(head, "value") and not (has_meaning(head, "table") or has_meaning(head, "rows")
                                                   or has_meaning(head, "column")):
                parts.head = head
                parts.filters.append((head, head.data == "neg"))
            elif has_meaning(head, "column") and not has_meaning(head, "table") and not has_meaning(head, "rows") \
                    and not any(x.entity for x in head.meanings) \
                    and column_kind_of(next(x for x in head.meanings if x.kind == "column"), ctx) \
                    in ("category", "text"):
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
        if kind == "and" and np_items and all(has_meaning(m, "value") for m in np_items):
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
            if before is None or not any(is_numeric(x, ctx) for x in before.meanings):
                before = None
                # "more than 3 items": the number's column may follow it
                for nxt in items[idx + 1:idx + 3]:
                    if nxt.kind == "mention" and any(is_numeric(x, ctx) for x in nxt.meanings):
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
            if prev_mention is not None and has_meaning(prev_mention, "value"):
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
            following = items[idx + 1] if idx + 1 < len(items) else None
            if following is not None and following.kind == "mention" and has_meaning(following, "column"):
                parts.clear_columns.append(following)
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
        if has_meaning(m, "value"):
            parts.filters.append((m, m.data == "neg"))
        else:
            parts.evidence.append(m)


def _assign_agg(funcs: list[str], group: list[Item], parts: Parts, ctx: SubjectContext) -> None:
    """The noun phrase after "average", "how many", "unique" …: pick what is aggregated."""
    func = _combine_funcs(funcs)
    if func in ("sum", "avg", "median", "min", "max"):
        numeric = [m for m in group if any(is_numeric(x, ctx) for x in m.meanings)]
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
    if func == "count" and (_only_time_columns(head, ctx) or head.text.lower().endswith("ed")):
        # "how many users signed up per day", "customers purchased": the users are counted; "signed up" names
        # the time axis and "purchased" the table they are counted in
        nouns = [m for m in group[:-1] if has_meaning(m, "table")]
        if nouns:
            head = nouns[-1]
    if func == "uniq":
        # "distinct pages visited": what is distinct is the column, not the verb after it
        columns = [m for m in group if has_meaning(m, "column")]
        if columns:
            head = columns[-1]
    _narrow(group, parts, skip=head)
    if has_meaning(head, "value") and not (has_meaning(head, "table") or has_meaning(head, "column")
                                           or has_meaning(head, "rows")):
        parts.filters.append((head, head.data == "neg"))
    parts.aggs.append((func, head, head))


def _only_time_columns(item: Item, ctx: SubjectContext) -> bool:
    return bool(item.meanings) and all(m.kind == "column" and column_kind_of(m, ctx) == "time" for m in item.meanings)


def _combine_funcs(funcs: list[str]) -> str:
    if "uniq" in funcs:
        return "uniq"
    for f in ("median", "avg", "min", "max"):
        if f in funcs:
            return f
    if "sum" in funcs and "count" not in funcs:
        return "sum"
    return "count"
