"""The metrics.csv column rules (SPEC §3), declared once.

The writer (``exporters/metrics_csv.py``) and the validator (``validate.py``) both read
their rules from here: column order, which columns are text, booleans, integers or
numbers, how many decimals a number gets, how a value becomes a cell, and the timezone
of ``ts_start``/``ts_end``. Measuring code never formats; everything that turns a
typed value into text lives in this module.

Integer or decimals? SPEC says "a column whose values are all integers is written as
integers". We read that per column, over the whole file, so that a column never mixes
``3`` and ``3.50``:

* declared integer columns (``errors``, ``exit_code``, ``runs``, …) are always written as
  integers; a float there is rounded half away from zero to an integer;
* seconds-valued columns and the other 6-decimal columns (``energy_co2_g``,
  ``energy_cost_usd``) are always written with 6 decimals, integers included
  (``run_seconds`` 60 → ``60.000000``);
* every other numeric column (``throughput_rps`` included) is written as integers when
  every non-missing value in it is a Python ``int`` (not ``bool``), and otherwise with
  2 decimals for all its values, ints included. NaN and ±inf count as missing.

``ColumnStats`` sees every row before the file is written (the runner makes two passes
over its journal) and decides this per column.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_UP, Context, Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# --- order -----------------------------------------------------------------------------

CORE = ("case_id", "status", "run_seconds", "p95", "p99", "throughput_rps", "errors",
        "ts_start", "ts_end")
RUN_INFO = ("backend", "exit_code", "message", "violations")
ALWAYS = CORE + RUN_INFO

_ALWAYS_INDEX = {name: i for i, name in enumerate(ALWAYS)}
_PREFIX_GROUPS = (("param_", 4), ("threshold_", 5), ("ext_", 6), ("tag_", 7), ("note_", 8))


def group_of(name: str) -> int:
    """The order group of a column: 1 core, 2 run info, 3 other measured, 4 ``param_``,
    5 ``threshold_``, 6 ``ext_``, 7 ``tag_``, 8 ``note_``."""
    if name in CORE:
        return 1
    if name in RUN_INFO:
        return 2
    for prefix, group in _PREFIX_GROUPS:
        if name.startswith(prefix):
            return group
    return 3


def sort_key(name: str) -> tuple[int, int, str]:
    """The key columns are ordered by: the always-present ones by their fixed position,
    the rest by (group, name) with a plain code-point sort of the name."""
    return (group_of(name), _ALWAYS_INDEX.get(name, 0), name)


def order_columns(names: Iterable[str]) -> list[str]:
    """The header for a set of column names: ALWAYS first in their fixed order (present
    even when not in ``names``), then the rest by group, alphabetical within a group.
    Duplicates are dropped."""
    return sorted(set(names).union(ALWAYS), key=sort_key)


# --- kinds -----------------------------------------------------------------------------

TEXT = "text"
BOOL = "bool"
INT = "int"
NUMBER = "number"
TIMESTAMP = "timestamp"

INT_COLUMNS = frozenset({"errors", "exit_code", "runs", "attempts", "gpu_samples",
                         "warmup_runs", "tokens_in", "tokens_out"})
BOOL_COLUMNS = frozenset({"warmup_converged", "thermal_throttle_detected", "env_in_container"})
BOOL_PREFIXES = ("tag_",)
# ts_start/ts_end are text in the file, but they are written from epoch seconds.
TIMESTAMP_COLUMNS = frozenset({"ts_start", "ts_end"})
TEXT_COLUMNS = frozenset({
    "case_id", "status", "backend", "message", "violations",
    "energy_baseline_method", "energy_method", "thermal_throttle_reasons",
    "env_gpu_name", "env_driver_version", "env_cuda_version", "env_cpu_governor",
    "env_hostname", "env_summary", "env_cpu_model", "env_python_version", "env_mig_mode",
    "timeseries_path",
})
TEXT_PREFIXES = ("param_", "threshold_", "note_", "ext_")

STATUSES = ("OK", "FAIL", "TIMEOUT")


@lru_cache(maxsize=4096)
def kind_of(name: str) -> str:
    """``TIMESTAMP``, ``TEXT``, ``BOOL``, ``INT`` or ``NUMBER``. A column not declared
    here (a custom metric) is a ``NUMBER``."""
    if name in TIMESTAMP_COLUMNS:
        return TIMESTAMP
    if name in TEXT_COLUMNS or name.startswith(TEXT_PREFIXES):
        return TEXT
    if name in BOOL_COLUMNS or name.startswith(BOOL_PREFIXES):
        return BOOL
    if name in INT_COLUMNS:
        return INT
    return NUMBER


_SIX_DECIMALS = re.compile(
    r"run_seconds.*|p[0-9]+|(?:latency|ttft|tpot)_.*|.*_(?:s|sec|seconds)"
    r"|energy_co2_g|energy_cost_usd",
    re.DOTALL,
)


@lru_cache(maxsize=4096)
def decimals_for(name: str) -> int:
    """Decimal places of a non-integer numeric column: 6 for seconds-valued columns
    (``run_seconds*``, ``p<N>``, ``latency_*``, ``ttft_*``, ``tpot_*``, names ending
    ``_s``, ``_sec``, ``_seconds``) and for ``energy_co2_g``/``energy_cost_usd``; else 2."""
    return 6 if _SIX_DECIMALS.fullmatch(name) else 2


def may_be_int(name: str) -> bool:
    """True for a numeric column that is written as integers when all its values are."""
    return kind_of(name) == NUMBER and decimals_for(name) == 2


# --- cell shapes (what the validator accepts) -----------------------------------------

CASE_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")
INTEGER_RE = re.compile(r"-?(?:0|[1-9][0-9]*)")
TIMESTAMP_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[+-][0-9]{2}:[0-9]{2}(?::[0-9]{2})?"
)
VIOLATION_SEPARATOR = ";"
VIOLATION_OPERATORS = ("<=", ">=", "<", ">", "=")


@lru_cache(maxsize=16)
def decimals_re(places: int) -> re.Pattern[str]:
    """A cell written with exactly ``places`` decimals."""
    return re.compile(r"-?(?:0|[1-9][0-9]*)\.[0-9]{" + str(places) + "}")


# --- numbers ---------------------------------------------------------------------------

# Enough digits for any finite double (up to 309 integer digits) plus the decimals.
_DEC_CONTEXT = Context(prec=1000, rounding=ROUND_HALF_UP, Emax=999999, Emin=-999999)


@lru_cache(maxsize=64)
def _quantum(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


# Fast path: a value whose scaled form m = value * 10**places is far from a rounding
# midpoint (k + 0.5) rounds the same whether we round its exact binary value (what
# "%.Nf" does) or its shortest decimal form: the two differ from m by at most ~1.5 ulp(m),
# which below 2**36 is < 1.2e-5, well inside the 1e-4 margin. Only values near a midpoint
# (0.125 at 2 places) or too large take the exact path.
_FAST_LIMIT = float(2**36)


def round_half_away(value: float, places: int) -> str:
    """``value`` with exactly ``places`` decimals (none when 0), rounded half away from
    zero on its shortest decimal form: ``0.125`` → ``0.13``, ``2.675`` → ``2.68`` (though
    the double is 2.67499…), ``5e-7`` → ``0.000001`` at 6. Never exponent notation, and
    never ``-0.00``. Raises ``ValueError`` for NaN and ±inf.
    """
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"cannot format {value!r}: not a finite number")
    if 0 <= places < len(_ROUNDERS):
        return _ROUNDERS[places](value)
    return _round_shortest(value, places)


def _round_shortest(value: float, places: int) -> str:
    """The exact path: round the digits of ``repr(value)`` as text."""
    r = repr(value)
    if "e" in r or "n" in r:  # exponent form, inf, nan
        return _round_decimal(value, r, places)
    neg = r[0] == "-"
    if neg:
        r = r[1:]
    ip, _, fp = r.partition(".")
    n = len(fp)
    if n <= places:  # short enough: pad, no rounding
        out = ip + "." + fp + "0" * (places - n)
    elif places == 0:
        out = str(int(ip) + 1) if fp[0] >= "5" else ip
    else:
        # Only the first dropped digit decides: >= 5 rounds the magnitude up.
        digits = ip + fp[:places]
        if fp[places] >= "5":
            up = str(int(digits) + 1)
            digits = up.zfill(len(digits))
        out = digits[:-places] + "." + digits[-places:]
    if neg and out.strip("0."):
        return "-" + out
    return out


def _round_decimal(value: float, r: str, places: int) -> str:
    if not math.isfinite(value):
        raise ValueError(f"cannot format {value!r}: not a finite number")
    d = Decimal(r).quantize(_quantum(places), context=_DEC_CONTEXT)
    if d.is_zero():
        d = d.copy_abs()
    return format(d, "f")


# --- time ------------------------------------------------------------------------------

JST = timezone(timedelta(hours=9), "JST")
DEFAULT_TZ = "JST"

_OFFSET = re.compile(r"([+-])([0-9]{2}):?([0-9]{2})")


def parse_tz(text: str = DEFAULT_TZ) -> tzinfo:
    """The timezone named by ``--tz``: ``JST`` (the default, +09:00), ``UTC``, ``local``
    (this machine's current UTC offset, fixed for the run), a fixed offset such as
    ``+05:30``, ``-08:00`` or ``+0900``, or an IANA name such as ``Asia/Tokyo``.
    ``JST``/``UTC``/``local`` are case-insensitive. Raises ``ValueError`` otherwise."""
    s = text.strip()
    key = s.upper()
    if key == "JST":
        return JST
    if key == "UTC":
        return timezone.utc
    if key == "LOCAL":
        return datetime.now().astimezone().tzinfo or timezone.utc
    m = _OFFSET.fullmatch(s)
    if m:
        hours, minutes = int(m.group(2)), int(m.group(3))
        if hours <= 23 and minutes <= 59:
            delta = timedelta(hours=hours, minutes=minutes)
            return timezone(-delta if m.group(1) == "-" else delta)
    elif s and not s.startswith(("/", ".")) and ".." not in s:
        try:
            return ZoneInfo(s)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    raise ValueError(
        f"unknown timezone {text!r}: use JST, UTC, local, an offset like +05:30 "
        "or an IANA name like Asia/Tokyo"
    )


def format_timestamp(epoch_s: float, tz: tzinfo) -> str:
    """Epoch seconds as ISO 8601 at second precision with the offset, e.g.
    ``2025-08-25T10:30:00+09:00``. Sub-seconds are truncated (never rounded up)."""
    return datetime.fromtimestamp(math.floor(epoch_s), tz).isoformat(timespec="seconds")


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def timestamp_formatter(tz: tzinfo) -> Callable[[float], str]:
    """``format_timestamp`` bound to ``tz``. For a fixed offset (JST, UTC, ``+05:30``…) it
    does the arithmetic itself, several times faster than going through ``datetime``;
    other zones (IANA names, with DST) take the ``datetime`` road."""
    if not isinstance(tz, timezone):
        return lambda epoch_s: format_timestamp(epoch_s, tz)
    offset_s = round(tz.utcoffset(None).total_seconds())
    suffix = datetime.fromtimestamp(0, tz).isoformat(timespec="seconds")[19:]
    days_cache: dict[int, str] = {}

    def fmt(epoch_s: float) -> str:
        days, rem = divmod(math.floor(epoch_s) + offset_s, 86400)
        day = days_cache.get(days)
        if day is None:
            if len(days_cache) > 4096:
                days_cache.clear()
            day = days_cache[days] = date.fromordinal(_EPOCH_ORDINAL + days).isoformat()
        hours, rem = divmod(rem, 3600)
        minutes, seconds = divmod(rem, 60)
        return f"{day}T{hours:02d}:{minutes:02d}:{seconds:02d}{suffix}"

    return fmt


# --- which columns are integers ------------------------------------------------------


class ColumnStats:
    """What the writer must know about all rows before it writes the first one: the union
    of column names and, per numeric column, whether every value is an integer.

    Feed it every row with ``add(row)`` (or pass the rows to the constructor). Only a
    Python ``int`` keeps a column integral: a float (even ``3.0``), a bool or a str makes
    it a 2-decimal column. Writing a row it has not seen is refused (``format_rows``).
    """

    __slots__ = ("_candidates", "_header", "_names")

    def __init__(self, rows: Iterable[Mapping[str, object]] = ()) -> None:
        self._names: set[str] = set(ALWAYS)
        self._candidates: set[str] = {n for n in ALWAYS if may_be_int(n)}
        self._header: list[str] | None = None
        for row in rows:
            self.add(row)

    def add(self, row: Mapping[str, object]) -> None:
        """Take one row into account (names, and whether its numbers are integers)."""
        names = self._names
        candidates = self._candidates
        for name, value in row.items():
            if name not in names:
                names.add(name)
                self._header = None
                if may_be_int(name):
                    candidates.add(name)
            if name in candidates and value is not None and type(value) is not int:
                if isinstance(value, float) and not math.isfinite(value):
                    continue  # NaN/inf are written empty: they don't decide the column
                candidates.discard(name)

    def columns(self) -> list[str]:
        """The ordered header: ALWAYS, then every other column seen."""
        if self._header is None:
            self._header = order_columns(self._names)
        return list(self._header)

    @property
    def int_columns(self) -> frozenset[str]:
        """Numeric columns written as integers: the declared integer columns and the
        columns whose values were all integers."""
        return frozenset(n for n in self._names if kind_of(n) == INT) | self._candidates

    def is_int(self, name: str) -> bool:
        """True when the column ``name`` is written as integers."""
        return kind_of(name) == INT or name in self._candidates


# --- one value → one cell --------------------------------------------------------------


def cell_formatter(name: str, stats: ColumnStats | None, tz: tzinfo) -> Callable[[object], str]:
    """A function turning one typed value of column ``name`` into its cell text.

    ``None``, NaN and ±inf → ``''``; ``bool`` → ``'1'``/``''``; ``str`` → verbatim;
    numbers per the column's kind (see the module docstring); a number in a text column
    is written in its shortest form. Built once per column so that the per-cell work is
    one call: this is the hot path of writing metrics.csv.
    """
    kind = kind_of(name)
    if kind == NUMBER and not (stats is not None and stats.is_int(name)):
        return _decimal_cell(name, decimals_for(name))
    if kind == TIMESTAMP:
        number = timestamp_formatter(tz)
    elif kind == TEXT:
        number = str
    elif kind == BOOL:
        def number(v: float) -> str:
            return "1" if v else ""
    else:
        number = _integer(name, strict=kind != INT)

    def cell(v: object) -> str:
        if v is None:
            return ""
        t = type(v)
        if t is str:
            return v
        if t is float:
            return "" if v - v else number(v)  # v - v is NaN (truthy) for NaN and ±inf
        if t is int:
            return number(v)
        if t is bool:
            return "1" if v else ""
        return cell(_plain_type(name, v))

    return cell


def _decimal_cell(name: str, places: int) -> Callable[[object], str]:
    """The cell function of a column written with ``places`` decimals. The float branch
    is the fast path of ``round_half_away`` (see ``_FAST_LIMIT``), inlined: it runs for
    most cells of a file."""
    scale = 10.0**places
    spec = f".{places}f"
    lim = _FAST_LIMIT
    zeros = "." + "0" * places if places else ""

    def cell(v: object) -> str:
        t = type(v)
        if t is float:
            m = v * scale
            if -lim < m < lim and not 0.4999 < m % 1.0 < 0.5001:
                out = format(v, spec)
                if out[0] == "-" and not out.strip("-0."):
                    return out[1:]  # rounds to zero: no minus sign
                return out
            return "" if v - v else _round_shortest(v, places)  # v - v: NaN for NaN, ±inf
        if v is None:
            return ""
        if t is int:
            return str(v) + zeros
        if t is str:
            return v
        if t is bool:
            return "1" if v else ""
        return cell(_plain_type(name, v))

    return cell


_ROUNDERS = tuple(_decimal_cell("", p) for p in range(16))


def _integer(name: str, *, strict: bool) -> Callable[[float], str]:
    """Integers as they are; a float rounded half away from zero to an integer. ``strict``
    (a column inferred as all-integer) refuses a non-integral float: ColumnStats missed it."""
    def number(v: float) -> str:
        if type(v) is int:
            return str(v)
        if strict and v != math.floor(v):
            raise ValueError(
                f"column {name!r} was counted as integers but has {v!r}: "
                "ColumnStats must see every row before writing"
            )
        return _ROUNDERS[0](v)

    return number


def _plain_type(name: str, v: object) -> object:
    """Subclasses and foreign numbers (numpy scalars…) → str, bool, int or float."""
    if isinstance(v, str):
        return str(v)
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        return float(v)
    raise TypeError(f"column {name!r}: cannot write a {type(v).__name__} value")


def format_value(name: str, value: object, stats: ColumnStats | None, tz: tzinfo = JST) -> str:
    """The cell text of ``value`` in column ``name`` (see ``cell_formatter``)."""
    return cell_formatter(name, stats, tz)(value)
