"""Serialize tables as CSV, JSON or Parquet (written with gansweep.atomic)."""

from __future__ import annotations

import importlib.util
import io

import pandas as pd

from gansweep.errors import ReportError

FORMATS = ("csv", "json", "parquet")


def table_bytes(table: pd.DataFrame, fmt: str) -> bytes:
    """Serialize ``table`` as csv, json (a list of records, NaN as null) or parquet."""
    if fmt == "csv":
        return table.to_csv(index=False).encode("utf-8")
    if fmt == "json":
        return table.to_json(orient="records", indent=2, force_ascii=False).encode("utf-8")
    if fmt == "parquet":
        if not has_pyarrow():
            raise ReportError("--parquet needs pyarrow: pip install pyarrow")
        buffer = io.BytesIO()
        _parquet_safe(table).to_parquet(buffer, index=False)
        return buffer.getvalue()
    raise ValueError(f"unknown table format {fmt!r}")


def has_pyarrow() -> bool:
    """True when pyarrow is installed (pandas writes Parquet with it)."""
    return importlib.util.find_spec("pyarrow") is not None


def _parquet_safe(table: pd.DataFrame) -> pd.DataFrame:
    """Parquet columns need one type: object columns mixing types (a config key that is
    an int in one run and a string in another) are stored as text."""
    mixed = {
        column: table[column].map(lambda v: None if pd.isna(v) else str(v))
        for column in table.columns
        if table[column].dtype == object and table[column].dropna().map(type).nunique() > 1
    }
    return table.assign(**mixed)


