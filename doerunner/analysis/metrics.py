"""metrics.csv files read back for analysis (FORMAT.md §3): as pandas DataFrames of strings,
with the few helpers every analysis uses. Only OK rows count in an analysis: the metrics of a
FAIL or TIMEOUT row describe the failure, not the configuration.

A whole file (``read_metrics``) is held as Python strings (row-wise access is fast), or with
``compact`` as Arrow-backed strings (a tenth of the memory: ``srd report`` of a million
rows). ``iter_metrics`` streams a file in pieces of about ``CHUNK_CELLS`` cells: what a
command whose memory must not grow with the file (``srd export``) reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from doerunner.errors import InputError

CHUNK_CELLS = 1 << 18
"""Cells ``iter_metrics`` holds at once (a quarter million: some ten MB of strings)."""

Columns = Callable[[str], bool] | None


def _checked(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: no such file" if not p.exists() else f"{path}: not a file")
    return p


def _read(path: str | Path, columns: Columns, **kwargs: Any) -> Any:
    """``pd.read_csv`` of a metrics.csv: every cell its text (missing = ``""``); its
    errors as ``InputError``. A ``chunksize`` gives a reader whose pieces are read later:
    ``_pieces`` translates their errors."""
    try:
        # object, not pandas 3's arrow strings: row-wise access is 5x faster at 100k rows.
        return pd.read_csv(_checked(path), dtype=object, keep_default_na=False,
                           na_filter=False, encoding="utf-8-sig",
                           usecols=None if columns is None else (
                               lambda c: c == "case_id" or columns(c)), **kwargs)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: empty file, not a metrics.csv") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as e:
        raise _unreadable(path, e) from None


def _unreadable(path: str | Path, e: Exception) -> InputError:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return InputError(f"{path}: cannot be read as CSV: {first}")


def _with_case_id(path: str | Path, df: pd.DataFrame) -> pd.DataFrame:
    if "case_id" not in df.columns:
        raise InputError(f"{path}: no case_id column, not a metrics.csv")
    return df


def metrics_header(path: str | Path) -> list[str]:
    """The column names of a metrics.csv, as ``read_metrics`` names them (a repeated name
    gets pandas' ``.1``). Raises ``InputError`` as ``read_metrics`` does."""
    return [str(c) for c in _with_case_id(path, _read(path, None, nrows=0)).columns]


def read_metrics(path: str | Path, columns: Columns = None, *, compact: bool = False,
                 rows: int | None = None) -> pd.DataFrame:
    """A metrics.csv as a DataFrame of strings (missing = ``""``), one row per case;
    ``columns``: which columns to keep besides ``case_id`` (default: all); ``compact``:
    Arrow-backed strings (pandas' ``str``), read piece by piece, instead of Python ones;
    ``rows``: the first rows only.

    Raises ``InputError`` when the file is missing, unreadable or has no ``case_id``.
    """
    if not compact:
        return _with_case_id(path, _read(path, columns, nrows=rows))
    parts = [part.astype("str") for part in iter_metrics(path, columns, rows=rows)]
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def iter_metrics(path: str | Path, columns: Columns = None, *, rows: int | None = None,
                 chunk_cells: int | None = None) -> Iterator[pd.DataFrame]:
    """``read_metrics(path, columns)`` in pieces of consecutive rows, about ``chunk_cells``
    (default ``CHUNK_CELLS``) cells each (at least one row; the index runs on across
    pieces); a file without a row gives one empty piece. Raises ``InputError`` as
    ``read_metrics`` does, a fault in the middle of the file when its piece is read."""
    width = len([c for c in metrics_header(path)
                 if columns is None or c == "case_id" or columns(c)])
    size = max(1, (chunk_cells or CHUNK_CELLS) // max(width, 1))
    if rows is not None:
        size = max(1, min(size, rows))
    reader = _read(path, columns, chunksize=size, nrows=rows)
    first = True
    with reader:
        while True:
            try:
                piece = next(reader)
            except StopIteration:
                break
            except (pd.errors.ParserError, UnicodeDecodeError, OSError) as e:
                raise _unreadable(path, e) from None
            first = False
            yield _with_case_id(path, piece)
    if first:
        yield _with_case_id(path, _read(path, columns, nrows=0))


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
