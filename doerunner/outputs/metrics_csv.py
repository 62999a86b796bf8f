"""metrics.csv: typed result rows → the file users' scripts parse (SPEC §3).

The column rules (order, kinds, decimals, integers) come from ``doerunner.columns``; this
module only turns rows into cells and cells into bytes, and does the file I/O:

* the ``csv`` module writes every line: comma, ``"`` quoting only where a cell holds a
  comma, a quote, CR or LF, LF line endings, UTF-8 without BOM;
* the file is replaced atomically (``atomic.atomic_open``: temporary file in the same
  folder, fsync, rename, fsync of the folder): a crash or an exception never leaves a
  half-written file and never touches an existing one.

CSV injection (``csv_safe=True``, OWASP guidance): a *text* cell — a value that was a
``str`` in the row, never a number we formatted — starting with ``=``, ``+``, ``-``,
``@``, TAB or CR gets a leading ``'``. Exceptions: a text cell that is a plain decimal
number (``-5``, ``+1.5``, ``-2e3``) is kept intact, since a spreadsheet reads it as that
number, and ``case_id`` is never touched (its characters ``[A-Za-z0-9._-]`` cannot form a
function call, and it must stay equal to the input's case_id).
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import tzinfo
from typing import Any

from doerunner.columns import ColumnStats, cell_formatter
from doerunner.outputs.atomic import atomic_open

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_UNDEFUSED = frozenset({"case_id"})


def defuse(text: str) -> str:
    """``text`` made safe to open in a spreadsheet (see the module docstring)."""
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def format_rows(
    rows: Iterable[Mapping[str, object]], stats: ColumnStats, tz: tzinfo, *,
    csv_safe: bool = False,
) -> Iterator[list[str]]:
    """The cells of each row, in ``stats.columns()`` order (the header is not included).

    ``rows`` is consumed lazily. ``stats`` must have seen every row: a row holding a column
    that ``stats`` does not know raises ``ValueError``.
    """
    header = stats.columns()
    known = frozenset(header)
    plan = []
    for name in header:
        fmt = cell_formatter(name, stats, tz)
        if csv_safe and name not in _UNDEFUSED:
            fmt = _defusing(fmt)
        plan.append((name, fmt))
    for row in rows:
        if not known.issuperset(row):
            unknown = sorted(set(row) - known)
            raise ValueError(
                f"row {row.get('case_id')!r} has columns {unknown} that ColumnStats has not seen"
            )
        get = row.get
        yield [fmt(get(name)) for name, fmt in plan]


def _defusing(fmt):
    def cell(v: object) -> str:
        text = fmt(v)
        return defuse(text) if isinstance(v, str) else text
    return cell


class _LfSink:
    """Where the csv writer writes. The writer ends records with CRLF, which makes it quote
    every cell holding CR or LF (with ``lineterminator='\\n'`` it would leave a lone CR
    unquoted); the sink swaps that CRLF for LF. ``writerow`` writes one whole record per
    call, so each ``write`` ends with the terminator."""

    __slots__ = ("write",)

    def __init__(self, write) -> None:
        def lf_write(record: str) -> object:
            return write(record[:-2] + "\n")
        self.write = lf_write


def csv_writer(write: Callable[[str], object]) -> Any:
    """A csv writer with metrics.csv's settings that passes each line (LF-terminated) to
    ``write``. The validator uses the same settings to check minimal quoting."""
    return csv.writer(_LfSink(write), lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)


def format_line(cells: list[str]) -> str:
    """One metrics.csv line (with its LF) for ``cells``."""
    out: list[str] = []
    csv_writer(out.append).writerow(cells)
    return out[0]


def write_metrics_csv(
    path: str | os.PathLike[str], rows: Iterable[Mapping[str, object]], stats: ColumnStats,
    tz: tzinfo, *, csv_safe: bool = False,
) -> None:
    """Write metrics.csv atomically: header, then one line per row, in ``rows`` order.

    ``rows`` may be a generator; it is consumed once, lazily. ``stats`` must have seen
    every row (see ``ColumnStats``). ``tz`` is the timezone of ``ts_start``/``ts_end``.
    Text that cannot be encoded (lone surrogates) is written backslash-escaped, so the
    file is always valid UTF-8.

    Raises ``OSError`` when the file cannot be written; an exception raised by ``rows``
    itself propagates unchanged. Either way the temporary file is removed and an existing
    file at ``path`` is left as it was (``atomic_open``).
    """
    with atomic_open(path, "w", encoding="utf-8", errors="backslashreplace", newline="") as f:
        writer = csv_writer(f.write)
        writer.writerow(stats.columns())
        writer.writerows(format_rows(rows, stats, tz, csv_safe=csv_safe))
