"""Typed values → metrics.csv cell text (FORMAT.md §3): rounding, timestamps, one formatter per
column. Everything that turns a measured value into text lives here; which columns exist, in
which order and of which kind is ``columns``.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_UP, Context, Decimal
from functools import lru_cache

from doerunner.columns import (
    BOOL,
    INT,
    NUMBER,
    TEXT,
    TIMESTAMP,
    ColumnStats,
    copied_from_input,
    decimals_for,
    kind_of,
)

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
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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


# --- one value → one cell --------------------------------------------------------------


def cell_formatter(name: str, stats: ColumnStats | None, tz: tzinfo) -> Callable[[object], str]:
    """A function turning one typed value of column ``name`` into its cell text.

    ``None``, NaN and ±inf → ``''``; ``bool`` → ``'1'``/``''``; ``str`` → verbatim (in a
    text column that is not srd's own nor copied from cases.csv — ``message``, ``ext_*`` —
    without control characters: ``storable_text``); numbers per the column's kind (see the
    module docstring); a number in a text column is written in its shortest form. Built
    once per column so that the per-cell work is one call: this is the hot path of writing
    metrics.csv.
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

    if kind == TEXT and name not in _SRD_TEXT and not copied_from_input(name):
        def text_cell(v: object) -> str:
            out = cell(v)
            return _CONTROL.sub("", out) if _CONTROL.search(out) else out

        return text_cell
    return cell


# Text columns whose values srd itself decides (and the validator checks otherwise).
_SRD_TEXT = frozenset({"case_id", "status", "backend", "violations"})


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


# --- what srd can store ----------------------------------------------------------------
#
# A value travels from a case's output into the journal (JSON through orjson), the row,
# metrics.csv, repetitions.csv, run.json, the exports and the JUnit report. These rules make
# it storable exactly once, at the source (FORMAT.md §3, "Values srd cannot store").

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# C0 controls but TAB, LF and CR: NUL ends a C string (many CSV readers, spreadsheets), and
# the others (form feed, vertical tab, ESC sequences...) are never text a reader wants.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_NEEDS_CLEANING = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def control_character(text: str) -> str | None:
    """The first character of ``text`` srd never writes (``storable_text`` removes it), as
    ``U+0000``; None when there is none."""
    m = _CONTROL.search(text)
    return None if m is None else f"U+{ord(m.group()):04X}"


def storable_text(text: str) -> str:
    """``text`` as srd stores it: lone surrogates (invalid Unicode, such as a JSON
    ``"\\ud83d"`` cut from an emoji) become U+FFFD, C0 control characters but TAB, LF and CR
    are removed."""
    if not _NEEDS_CLEANING.search(text):
        return text
    return _CONTROL.sub("", _SURROGATE.sub("\ufffd", text))


def storable_int(value: int) -> int | float | None:
    """An integer as srd stores it: itself within 64 bits (signed), else the nearest float
    (None when even a float cannot hold it)."""
    if INT64_MIN <= value <= INT64_MAX:
        return value
    try:
        return float(value)
    except OverflowError:
        return None


def storable(value: object) -> object:
    """``value`` as srd stores it: None, a bool, a finite or non-finite float, an integer
    (``storable_int``) or text (``storable_text``); a subclass or a foreign number (numpy)
    becomes the plain type. Raises ``TypeError`` for any other value (a list, a dict...)."""
    t = type(value)
    if value is None or t is float or t is bool:
        return value
    if t is str:
        return storable_text(value)  # type: ignore[arg-type]
    if t is int:
        return storable_int(value)  # type: ignore[arg-type]
    try:
        plain = _plain_type("", value)
    except TypeError:
        raise TypeError(f"a {t.__name__} value, not a number or text") from None
    return plain if type(plain) in (float, bool) else storable(plain)
