"""metrics.csv: typed result rows → the file users' scripts parse (FORMAT.md §3).

The column rules (order, kinds, decimals, integers) come from ``doerunner.columns`` and the
cell text from ``doerunner.cells``; this module only turns rows into cells and cells into
lines (``MetricsCsv``, an ``OutputFormat``):

* the ``csv`` module writes every line: comma, ``"`` quoting only where a cell holds a
  comma, a quote, CR or LF, LF line endings, UTF-8 without BOM;
* the writer (``outputs.base``) replaces the file atomically: a crash or an exception never
  leaves a half-written file and never touches an existing one.

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
from dataclasses import dataclass
from datetime import tzinfo
from typing import IO, Any

from doerunner.cells import cell_formatter
from doerunner.columns import ColumnStats
from doerunner.outputs.base import OutputFormat, write_to

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


@dataclass(frozen=True, slots=True)
class MetricsTable:
    """What metrics.csv is written from: typed ``rows`` (may be a generator, consumed once),
    the ``stats`` that saw every row, the timezone of ``ts_start``/``ts_end``, and whether
    formula-like text is defused (``csv_safe``)."""

    rows: Iterable[Mapping[str, object]]
    stats: ColumnStats
    tz: tzinfo
    csv_safe: bool = False


class MetricsCsv(OutputFormat):
    """metrics.csv: the header, then one line per row, in row order."""

    NAME = "metrics.csv"

    def write(self, data: MetricsTable, stream: IO[str]) -> None:
        writer = csv_writer(stream.write)
        writer.writerow(data.stats.columns())
        writer.writerows(format_rows(data.rows, data.stats, data.tz, csv_safe=data.csv_safe))


# Text that cannot be encoded (lone surrogates) is written backslash-escaped, so the file is
# always valid UTF-8.
ENCODING_ERRORS = "backslashreplace"


def write_metrics_csv(
    path: str | os.PathLike[str], rows: Iterable[Mapping[str, object]], stats: ColumnStats,
    tz: tzinfo, *, csv_safe: bool = False,
) -> None:
    """Write metrics.csv atomically (``MetricsCsv`` through ``outputs.base.write_to``).

    ``rows`` may be a generator; it is consumed once, lazily. ``stats`` must have seen
    every row (see ``ColumnStats``). ``tz`` is the timezone of ``ts_start``/``ts_end``.
    Raises ``OSError`` when the file cannot be written; an exception raised by ``rows``
    itself propagates unchanged. Either way an existing file at ``path`` is left as it was.
    """
    write_to(MetricsCsv(), MetricsTable(rows, stats, tz, csv_safe), path,
             errors=ENCODING_ERRORS)
