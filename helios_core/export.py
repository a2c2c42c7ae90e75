"""Result downloads: CSV and Parquet bytes from a DataFrame."""

from __future__ import annotations

import io
from datetime import date, datetime

import pandas as pd
import pyarrow as pa


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode("utf-8")


def to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    # Columns of Python objects (UUIDs, IPs, arrays of mixed things) are written as text.
    safe = frame.copy()
    for name in safe.columns:
        if safe[name].dtype == object:
            sample = safe[name].dropna().head(1).tolist()
            if sample and not isinstance(sample[0], (str, bytes, list, dict)) and not _is_time_column(safe[name]):
                safe[name] = safe[name].map(lambda v: None if v is None else str(v))
    safe.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _is_time_column(column: pd.Series) -> bool:
    """Whether an object column holds only dates, or only datetimes, that Arrow can store as such.

    pyarrow then writes dates as Parquet date32 and datetimes as timestamps. A column mixing the two, or naive
    datetimes beside zoned ones (Arrow would drop the zones without a word), stays text.
    """
    values = column.dropna()
    if values.map(lambda v: isinstance(v, datetime)).all():
        if values.map(lambda v: v.tzinfo is None).nunique() > 1:
            return False
        wanted = pa.types.is_timestamp
    elif values.map(lambda v: isinstance(v, date) and not isinstance(v, datetime)).all():
        wanted = pa.types.is_date32
    else:
        return False
    try:
        return bool(wanted(pa.array(column, from_pandas=True).type))
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        return False
