"""metrics.csv files read back for analysis (FORMAT.md §3): as pandas DataFrames of strings,
with the few helpers every analysis uses. Only OK rows count in an analysis: the metrics of a
FAIL or TIMEOUT row describe the failure, not the configuration."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from doerunner.errors import InputError


def read_metrics(path: str | Path,
                 columns: Callable[[str], bool] | None = None) -> pd.DataFrame:
    """A metrics.csv as a DataFrame of strings (missing = ``""``), one row per case;
    ``columns``: which columns to keep besides ``case_id`` (default: all).

    Raises ``InputError`` when the file is missing, unreadable or has no ``case_id``.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: no such file" if not p.exists() else f"{path}: not a file")
    try:
        # object, not pandas 3's arrow strings: row-wise access is 5x faster at 100k rows.
        df = pd.read_csv(p, dtype=object, keep_default_na=False, na_filter=False,
                         encoding="utf-8-sig", usecols=None if columns is None else (
                             lambda c: c == "case_id" or columns(c)))
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: empty file, not a metrics.csv") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"{path}: cannot be read as CSV: {first}") from None
    if "case_id" not in df.columns:
        raise InputError(f"{path}: no case_id column, not a metrics.csv")
    return df


def numeric(df: pd.DataFrame, column: str) -> pd.Series:
    """``df[column]`` as floats; empty, non-numeric and infinite cells are NaN."""
    v = pd.to_numeric(df[column], errors="coerce").astype(float)
    return v.where(np.isfinite(v))


def ok_rows(df: pd.DataFrame) -> pd.Series:
    if "status" not in df.columns:
        return pd.Series(True, index=df.index)
    return df["status"].astype(str) == "OK"


def has_values(df: pd.DataFrame, column: str) -> bool:
    return column in df.columns and bool(numeric(df, column).notna().any())


def spread_column(metric: str) -> str:
    """The column holding the spread over repetitions of ``metric``: ``run_seconds_std``
    for ``run_seconds``, else ``<metric>_std``."""
    return "run_seconds_std" if metric == "run_seconds" else f"{metric}_std"
