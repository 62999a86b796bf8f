"""The types of an export's columns (``srd export --format json/parquet``; FORMAT.md §6),
decided once over every row exported, in one streaming pass whose state is a few flags a
column (``ColumnTypes``), then applied a piece at a time (``typed_piece``, ``json_value``).

* ``param_*`` columns by their values (``param_kind``): integers, numbers or text;
* the other columns by ``columns.kind_of``: numbers float64 (a column that should hold
  numbers but holds text somewhere stays text everywhere), declared integers Int64,
  booleans bool (empty = false), text string, ``ts_*`` timezone-aware (in their offset
  when every value shares one, else UTC).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta, timezone, tzinfo
from typing import Any

import numpy as np
import pandas as pd

from doerunner.columns import BOOL, INT, INTEGER_RE, NUMBER, TEXT, TIMESTAMP, kind_of
from doerunner.inputs.vocabulary import is_true

# A number as JSON writes one: 6, -0.5, 1e-3 (not 007, +1, .5, 1., nan, inf, 1_000).
NUMBER_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_INT64 = (-(2**63), 2**63 - 1)
_OFFSET = r"([+-]\d\d:\d\d|Z)$"


@dataclass
class _Param:
    """What the values of one ``param_*`` column seen so far allow."""

    seen: bool = False
    numbers: bool = True    # every value a number as JSON writes one
    integers: bool = True   # every value an integer
    fits: bool = True       # every integer within 64 bits
    finite: bool = True     # every value a finite float

    def see(self, values: pd.Series) -> None:
        self.seen = True
        if not self.numbers:
            return
        if not values.str.fullmatch(NUMBER_RE.pattern).all():
            self.numbers = False
            return
        ints = values.str.fullmatch(INTEGER_RE.pattern)
        self.integers = self.integers and bool(ints.all())
        # 20 characters at most (sign and 19 digits): int() of a huge cell is not even tried
        self.fits = self.fits and all(len(v) <= 20 and _INT64[0] <= int(v) <= _INT64[1]
                                      for v in values[ints] if len(v) > 18)
        self.finite = self.finite and all(math.isfinite(float(v)) for v in values)

    @property
    def kind(self) -> str:
        if not self.seen or not self.numbers:
            return TEXT
        if self.integers:
            return INT if self.fits else TEXT
        return NUMBER if self.finite else TEXT


def param_kind(values: Iterable[str]) -> str:
    """``INT``, ``NUMBER`` or ``TEXT`` for one ``param_*`` column's cells (see
    ``ColumnTypes``)."""
    state = _Param()
    have = pd.Series([v for v in values if v], dtype=object)
    if len(have):
        state.see(have)
    return state.kind


@dataclass
class ColumnTypes:
    """The type of each column over every row of an export, decided by ``see`` on every
    piece of it. A ``param_*`` column is ``INT`` when every non-empty value is an integer
    written as such (``6``, ``-2``) that fits 64 bits; ``NUMBER`` when every one is a
    finite number written as JSON writes one (``0.5``, ``1e-3``) and one is not an
    integer; else ``TEXT`` (any other value: ``fp16``, ``007``, ``+1``, ``nan``; a column
    with no value at all). ``text``: the numeric columns (``kind_of``) where a cell is not
    a number; ``offsets``: the UTC offsets each ``ts_*`` column's values carry."""

    params: dict[str, _Param] = field(default_factory=dict)
    text: set[str] = field(default_factory=set)
    offsets: dict[str, set[str]] = field(default_factory=dict)

    @staticmethod
    def needs(column: str, *, params_only: bool = False) -> bool:
        """Whether ``see`` looks at ``column`` (the JSON export types its parameters
        only)."""
        if column.startswith("param_"):
            return True
        return not params_only and kind_of(column) in (NUMBER, INT, TIMESTAMP)

    def see(self, df: pd.DataFrame) -> None:
        """Take in one piece of the export (strings, metrics.csv's cells)."""
        for c in df.columns:
            s = df[c]
            if c.startswith("param_"):
                have = s[s != ""]
                state = self.params.setdefault(c, _Param())
                if len(have):
                    state.see(have.astype(object))
            elif kind_of(c) in (NUMBER, INT) and c not in self.text:
                v = pd.to_numeric(s.replace("", np.nan), errors="coerce")
                if v.isna().sum() > (s == "").sum():  # text where a number was expected
                    self.text.add(c)
            elif kind_of(c) == TIMESTAMP:
                seen = self.offsets.setdefault(c, set())
                if len(seen) < 2:  # two offsets: UTC, whatever else comes
                    have = s[s != ""].astype(str)
                    seen.update(have.str.extract(_OFFSET)[0].dropna().unique())

    def param(self, column: str) -> str:
        """The kind of a ``param_*`` column (``TEXT`` for one never seen)."""
        state = self.params.get(column)
        return state.kind if state is not None else TEXT

    def tz(self, column: str) -> tzinfo:
        """The zone a ``ts_*`` column is shown in: its values' one offset, else UTC."""
        seen = self.offsets.get(column) or set()
        if len(seen) == 1 and (o := next(iter(seen))) != "Z":
            sign = 1 if o[0] == "+" else -1
            return timezone(sign * timedelta(hours=int(o[1:3]), minutes=int(o[4:6])))
        return timezone.utc

    def kind(self, column: str) -> str:
        """What ``typed_piece`` makes of ``column``: ``TEXT``, ``BOOL``, ``INT``,
        ``NUMBER`` or ``TIMESTAMP``."""
        if column in ("run_id", "case_id"):
            return TEXT
        if column.startswith("param_"):
            return self.param(column)
        kind = kind_of(column)
        return TEXT if kind in (NUMBER, INT) and column in self.text else kind


def _typed_param(s: pd.Series, kind: str) -> pd.Series:
    """A ``param_*`` column as ``kind`` says: Int64, float64 or string; empty cells
    missing."""
    text = s.astype(str).tolist()
    if kind == INT:
        return pd.Series(pd.array([int(v) if v else None for v in text], dtype="Int64"),
                         index=s.index)
    if kind == NUMBER:
        return pd.Series([float(v) if v else np.nan for v in text], dtype="float64",
                         index=s.index)
    return s.astype("string").replace("", pd.NA)


def _timestamps(s: pd.Series, tz: tzinfo) -> pd.Series:
    """ISO 8601 strings → tz-aware datetimes (microseconds) in ``tz``."""
    text = s.astype(str)
    ts = pd.to_datetime(text.where(text != "", None), utc=True, format="ISO8601")
    return ts.dt.as_unit("us").dt.tz_convert(tz)


def typed_piece(df: pd.DataFrame, types: ColumnTypes) -> pd.DataFrame:
    """``df`` (strings) with the dtypes ``types`` decided: ``NUMBER`` float64, ``INT``
    nullable Int64, ``BOOL`` bool (empty = false), ``TIMESTAMP`` tz-aware datetime,
    ``TEXT`` ``string`` (empty = missing, but ``run_id`` and ``case_id``)."""
    out = {}
    for c in df.columns:
        s, kind = df[c], types.kind(c)
        if c.startswith("param_"):
            out[c] = _typed_param(s, kind)
        elif kind in (NUMBER, INT):
            v = pd.to_numeric(s.replace("", np.nan), errors="coerce")
            out[c] = v.round().astype("Int64") if kind == INT else v.astype("float64")
        elif kind == BOOL:
            out[c] = s.map(is_true).astype(bool)
        elif kind == TIMESTAMP:
            out[c] = _timestamps(s, types.tz(c))
        elif c in ("run_id", "case_id"):
            out[c] = s.astype("string")
        else:
            out[c] = s.astype("string").replace("", pd.NA)
    return pd.DataFrame(out, index=df.index)


def json_value(column: str, text: str, types: ColumnTypes) -> Any:
    """One cell as its JSON value: ``null`` when empty (``false`` for a boolean), a
    ``param_*`` as ``types`` decided, a number where ``kind_of`` expects one and the cell
    is one (an integer when the column is integer, or the cell is written as one), else
    the text."""
    if text == "":
        return False if kind_of(column) == BOOL else None
    if column.startswith("param_"):
        kind = types.param(column)
        return int(text) if kind == INT else float(text) if kind == NUMBER else text
    kind = kind_of(column)
    if kind == BOOL:
        return is_true(text)
    if kind in (NUMBER, INT):
        try:
            v = float(text)
        except ValueError:
            return text
        if not math.isfinite(v):
            return None
        return int(v) if kind == INT or (v.is_integer() and "." not in text and "e" not in
                                         text.lower()) else v
    return text
