"""Plotly charts for query results: a chart builder and a suggestion of what fits."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from helios_core.chtypes import base_name, is_numeric, is_temporal

CHART_KINDS = ("line", "bar", "scatter", "area")


def is_time_type(t: str) -> bool:
    return is_temporal(t)


def is_numeric_type(t: str) -> bool:
    return is_numeric(t)


@dataclass
class ChartSpec:
    kind: str
    x: str
    y: str
    color: str | None = None

    def to_json(self) -> dict:
        return {"kind": self.kind, "x": self.x, "y": self.y, "color": self.color}


MAX_COLOURS = 12  # more series than this is noise, not a legend
_ID_NAME = re.compile(r"(^|_)(id|uuid|guid|key|hash)$", re.IGNORECASE)
_CAMEL_ID = re.compile(r"[a-z](Id|ID|Uuid|UUID)$")


def is_id_column(name: str, type_text: str) -> bool:
    """A column that identifies rows (a UUID, ``id``, ``user_id``, ``orderId``…): one value per thing."""
    return base_name(type_text) == "UUID" or bool(_ID_NAME.search(name) or _CAMEL_ID.search(name))


def _colourable(name: str, type_text: str, frame: pd.DataFrame | None) -> bool:
    if is_id_column(name, type_text):
        return False
    if frame is not None and name in frame.columns:
        return int(frame[name].nunique(dropna=True)) <= MAX_COLOURS
    return True


def suggest_chart(column_names: list[str], column_types: list[str],
                  frame: pd.DataFrame | None = None) -> ChartSpec | None:
    """Time series → line, category + measure → bar, two measures → scatter; else none.

    Never coloured by an id column (a UUID, ``*_id``) nor, when ``frame`` is given, by a column with more
    than :data:`MAX_COLOURS` distinct values; measures that are ids are used only when nothing else is.
    """
    typed = list(zip(column_names, column_types, strict=False))
    times = [n for n, t in typed if is_time_type(t)]
    all_numbers = [n for n, t in typed if is_numeric_type(t)]
    numbers = [n for n, t in typed if is_numeric_type(t) and not is_id_column(n, t)] or all_numbers
    others = [n for n, t in typed if n not in times and n not in all_numbers]
    colours = [n for n, t in typed if n in others and _colourable(n, t, frame)]
    if times and numbers:
        return ChartSpec("line", times[0], numbers[0], colours[0] if colours else None)
    if others and numbers:
        x = next((n for n, t in typed if n in others and not is_id_column(n, t)), others[0])
        rest = [n for n in colours if n != x]
        return ChartSpec("bar", x, numbers[0], rest[0] if rest else None)
    if len(numbers) >= 2:
        return ChartSpec("scatter", numbers[0], numbers[1], None)
    return None


def build_chart(frame: pd.DataFrame, spec: ChartSpec, title: str | None = None) -> go.Figure:
    if spec.kind not in CHART_KINDS:
        raise ValueError(f"Unknown chart kind {spec.kind!r}")
    draw = {"line": px.line, "bar": px.bar, "scatter": px.scatter, "area": px.area}[spec.kind]
    data = frame
    if spec.kind in ("line", "area") and spec.x in frame.columns:
        data = frame.sort_values(spec.x)
    color = spec.color if spec.color and spec.color in frame.columns else None
    if color is not None:
        data = data.assign(**{color: data[color].astype(str)})
    figure = draw(data, x=spec.x, y=spec.y, color=color, title=title)
    figure.update_layout(margin=dict(l=10, r=10, t=40 if title else 10, b=10), height=380)
    return figure
