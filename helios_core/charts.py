"""Plotly charts for query results: a chart builder and a suggestion of what fits."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from helios_core.ddl import base_type

CHART_KINDS = ("line", "bar", "scatter", "area")
_TIME_PREFIXES = ("Date", "DateTime")
_NUMERIC_PREFIXES = ("Int", "UInt", "Float", "Decimal")


def is_time_type(t: str) -> bool:
    return base_type(t).startswith(_TIME_PREFIXES)


def is_numeric_type(t: str) -> bool:
    return base_type(t).startswith(_NUMERIC_PREFIXES)


@dataclass
class ChartSpec:
    kind: str
    x: str
    y: str
    color: str | None = None

    def to_json(self) -> dict:
        return {"kind": self.kind, "x": self.x, "y": self.y, "color": self.color}


def suggest_chart(column_names: list[str], column_types: list[str]) -> ChartSpec | None:
    """Time series → line, category + measure → bar, two measures → scatter; else none."""
    times = [n for n, t in zip(column_names, column_types) if is_time_type(t)]
    numbers = [n for n, t in zip(column_names, column_types) if is_numeric_type(t)]
    others = [n for n, t in zip(column_names, column_types) if n not in times and n not in numbers]
    if times and numbers:
        return ChartSpec("line", times[0], numbers[0], others[0] if others else None)
    if others and numbers:
        return ChartSpec("bar", others[0], numbers[0], others[1] if len(others) > 1 else None)
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
