"""Which tables can be joined (a dimension table by its key) and how far a mention is from a table."""

from __future__ import annotations

from helios_core.chat.builtin.lexicon import Meaning, is_numeric
from helios_core.chat.builtin.reading import Item
from helios_core.chat.context import SubjectContext


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
            if numeric is not None and is_numeric(m, self.ctx) != numeric:
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
