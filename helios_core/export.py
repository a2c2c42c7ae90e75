"""Result downloads: CSV and Parquet bytes from a DataFrame."""

from __future__ import annotations

import io

import pandas as pd


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode("utf-8")


def to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    # Columns of Python objects (UUIDs, IPs, arrays of mixed things) are written as text.
    safe = frame.copy()
    for name in safe.columns:
        if safe[name].dtype == object:
            sample = safe[name].dropna().head(1).tolist()
            if sample and not isinstance(sample[0], (str, bytes, list, dict)):
                safe[name] = safe[name].map(lambda v: None if v is None else str(v))
    safe.to_parquet(buffer, index=False)
    return buffer.getvalue()
