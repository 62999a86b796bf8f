"""Check a metrics.csv against the contract (FORMAT.md §3), with the rules of ``columns.py``.

Every problem is reported, each located as ``file:line:column: message`` with the 1-based
physical line (a row spanning several lines is reported at its first line) and the
1-based column index; 0 means "not tied to a line/column". Problems come in file order;
the cross-check against the cases comes last.

A regular file is read a line at a time: what is kept of it is the header's rules and,
per row, its case_id (duplicates; the cross-check against the cases), never the file.
"""

from __future__ import annotations

import csv
import itertools
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Protocol

from doerunner.columns import (
    ALWAYS,
    BOOL,
    INT,
    INTEGER_RE,
    NUMBER,
    STATUSES,
    TEXT,
    TIMESTAMP,
    TIMESTAMP_RE,
    VIOLATION_OPERATORS,
    VIOLATION_SEPARATOR,
    decimals_for,
    decimals_re,
    kind_of,
    sort_key,
)
from doerunner.errors import Problem
from doerunner.inputs.bounded import MAX_METRICS_BYTES, read_open
from doerunner.inputs.vocabulary import CASE_ID_RE, ECHOED_PREFIXES, METRIC_NAME_RE, NAME_RE
from doerunner.outputs.metrics_csv import format_line
from doerunner.outputs.row_rules import row_problems

_BOM = b"\xef\xbb\xbf"
_NEEDS_QUOTES = (",", '"', "\r", "\n")
_FORMS = ("an integer", "2 decimals")


class HasCaseId(Protocol):
    case_id: str  # and, where it has one, ``repeat`` (checked against ``runs``)


def validate_metrics_csv(
    path: str | os.PathLike[str], cases: Sequence[HasCaseId] | None = None
) -> list[Problem]:
    """Every way the file at ``path`` breaks the metrics.csv contract; ``[]`` when valid.

    With ``cases`` (objects with ``.case_id``, in input order) it also checks that each case
    has exactly one row, in the same order, and that there are no other rows, and, for
    cases with a ``.repeat``, each row's ``runs`` against it (``row_rules``). Never
    raises for a bad file: an unreadable one gives a single problem at line 0.
    """
    name = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        with open(fd, "rb") as f:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) and st.st_size <= MAX_METRICS_BYTES:
                return _Check(name).run(_bounded(f, MAX_METRICS_BYTES), cases)
            # anything else is read_open's to refuse (or a pipe's to read whole), from the
            # file already open: never /dev/zero read for good, never a FIFO opened twice
            data = read_open(f, MAX_METRICS_BYTES)
    except OSError as e:
        return [Problem(name, 0, 0, f"cannot read: {e.strerror or e}")]
    return _Check(name).run(_lines(data), cases)


def _bounded(f: Iterable[bytes], limit: int) -> Iterator[bytes]:
    """The lines of ``f`` (a file opened within the limit), no more than ``limit`` bytes
    of them: a file that grows as it is read is read as it was."""
    for line in f:
        limit -= len(line)
        if limit < 0:
            return
        yield line


def _lines(data: bytes) -> Iterator[bytes]:
    """The lines of ``data``, each with its LF (the last one may have none)."""
    start = 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end + 1
        yield data[start:end]
        start = end


class _Lines:
    """The physical lines handed to ``csv.reader``, counted and kept so that each record's
    raw text and first line are known."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._it = iter(lines)
        self.lineno = 0
        self.taken: list[str] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = next(self._it)
        self.lineno += 1
        self.taken.append(line)
        return line


class _Check:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.ids: list[tuple[str, int]] = []  # (case_id, line) of each row, in file order
        self.cross = False  # whether ``ids`` are kept (a cross-check against the cases)

    def add(self, line: int, column: int, message: str) -> None:
        self.problems.append(Problem(self.file, line, column, message))

    # --- the file ----------------------------------------------------------------------

    def run(self, raw_lines: Iterable[bytes], cases: Sequence[HasCaseId] | None
            ) -> list[Problem]:
        """Check the file given as its lines (bytes, each with its LF)."""
        self.repeats: dict[str, int] = {
            c.case_id: c.repeat for c in cases or () if isinstance(getattr(c, "repeat", None), int)}
        self.cross = cases is not None
        lines = self._decode(raw_lines)
        first = next(lines, None)
        if first is None:
            self.add(1, 0, "file is empty: no header row")
        else:
            self._records(itertools.chain([first], lines))
            for _ in lines:  # a header that cannot be parsed ends the rows, not the lines
                pass
        self.problems.sort(key=lambda p: p.line)  # file order (stable: columns stay in order)
        if cases is not None:
            self._cross_check([c.case_id for c in cases])
        return self.problems

    def _decode(self, raw_lines: Iterable[bytes]) -> Iterator[str]:
        """The file's lines as text, each with its LF (but a last line without one, which
        is reported), a BOM reported and left out. A LF byte never occurs inside a
        multi-byte UTF-8 sequence, so splitting before decoding is safe."""
        n = 0
        for n, raw in enumerate(raw_lines, 1):
            if n == 1 and raw.startswith(_BOM):
                self.add(1, 0, "file starts with a UTF-8 BOM; metrics.csv is UTF-8 without BOM")
                raw = raw[len(_BOM):]
                if not raw:
                    return
            end = "\n" if raw.endswith(b"\n") else ""
            raw = raw[:-1] if end else raw
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                self.add(n, 0, f"not valid UTF-8: byte {e.start + 1} of the line is "
                               f"0x{raw[e.start]:02x} ({e.reason})")
                text = raw.decode("utf-8", errors="replace")
            if not end:
                self.add(n, 0, "file does not end with a newline (LF)")
            yield text + end

    def _records(self, lines: Iterable[str]) -> None:
        feed = _Lines(lines)
        reader = csv.reader(feed, strict=True)
        limit = csv.field_size_limit()
        csv.field_size_limit(max(limit, 2**31 - 1))  # a long note is valid; don't trip on it
        header: _Header | None = None
        try:
            while True:
                start = feed.lineno + 1
                try:
                    cells = next(reader)
                except StopIteration:
                    break
                except csv.Error as e:
                    self.add(feed.lineno, 0, f"cannot parse CSV: {e}")
                    feed.taken.clear()
                    if header is None:
                        return  # without a header nothing else can be checked
                    continue
                raw = "".join(feed.taken)
                feed.taken.clear()
                if header is None:
                    self._line_end(raw, feed.lineno, cells, cells)
                    header = _Header(self, cells)
                elif not cells:
                    self.add(start, 0, "blank line")
                else:
                    self._line_end(raw, feed.lineno, cells, header.names, start)
                    header.check_row(start, cells)
        finally:
            csv.field_size_limit(limit)

    def _line_end(self, raw: str, last_line: int, cells: list[str], names: list[str],
                  start: int = 1) -> None:
        """CRLF endings and minimal quoting: the record must be exactly what the csv
        module writes for its cells with metrics.csv's settings."""
        if raw.endswith("\r\n"):
            self.add(last_line, 0, "line ends with CRLF; metrics.csv uses LF only")
            raw = raw[:-2] + "\n"
        elif not raw.endswith("\n"):
            raw += "\n"  # the last line without LF: reported already
        if format_line(cells) == raw:
            return
        pos = 0
        for i, cell in enumerate(cells):
            want = _render(cell)
            end = pos + len(want)
            if raw[pos:end] != want or raw[end:end + 1] not in (",", "\n"):
                name = names[i] if i < len(names) else f"cell {i + 1}"
                self.add(start, i + 1, f"{name} {cell!r} must be written as {want} "
                                       "(quotes only where needed)")
                return
            pos = end + 1
        self.add(start, 0, "line is not written as the csv module writes it")

    # --- cases ---------------------------------------------------------------------------

    def _cross_check(self, expected: list[str]) -> None:
        position: dict[str, int] = {}
        for i, case_id in enumerate(expected):
            position.setdefault(case_id, i)
        found: set[str] = set()
        previous: tuple[int, str] | None = None
        for case_id, line in self.ids:
            if case_id not in position:
                self.add(line, 1, f"case_id {case_id!r} is not one of the cases")
                continue
            if case_id in found:
                continue  # a duplicate: reported with the row
            found.add(case_id)
            index = position[case_id]
            if previous is not None and index < previous[0]:
                self.add(line, 1, f"case_id {case_id!r} is out of order: in the cases it "
                                  f"comes before {previous[1]!r}")
            previous = (index, case_id)
        for case_id in expected:
            if case_id not in found:
                self.add(0, 0, f"case {case_id!r} has no row")


def _render(cell: str) -> str:
    """A cell as QUOTE_MINIMAL writes it."""
    if any(c in cell for c in _NEEDS_QUOTES):
        return '"' + cell.replace('"', '""') + '"'
    return cell


class _Header:
    """The header's checks, and the per-column rules the rows are checked with."""

    def __init__(self, check: _Check, names: list[str]) -> None:
        self.check = check
        self.names = names
        first: dict[str, int] = {}
        for i, name in enumerate(names, 1):
            if not name:
                check.add(1, i, "empty column name")
            elif not _written_name(name):
                check.add(1, i, f"column {name!r} is no name srd writes: output keys are "
                                "a-z 0-9 _, copied cases.csv columns param_, threshold_, tag_, "
                                "note_ and a name of A-Z a-z 0-9 . _ -")
            if name in first:
                check.add(1, i, f"duplicate column {name!r} (also column {first[name]})")
            else:
                first[name] = i
        for name in ALWAYS:
            if name not in first:
                check.add(1, 0, f"missing column {name!r}")
        previous = None
        for i, name in enumerate(names, 1):
            if first[name] != i:
                continue
            if previous is not None and sort_key(name) < sort_key(previous):
                check.add(1, i, f"column {name!r} is out of order: it must come before "
                                f"{previous!r}")
            previous = name
        self.index = {name: i - 1 for name, i in first.items()}
        self.kinds = [kind_of(n) for n in names]
        self.places = [decimals_for(n) for n in names]
        # Free-text columns need no check: skip them in the row loop.
        self.checked = [i for i, n in enumerate(names)
                        if self.kinds[i] != TEXT or n in ("status", "violations")]
        self.form: dict[int, tuple[int, int]] = {}  # column → (form, first line) if 2-or-int
        self.seen_ids: dict[str, int] = {}

    def check_row(self, line: int, cells: list[str]) -> None:
        check = self.check
        index = self.index
        if "case_id" in index and len(cells) > index["case_id"]:
            self._case_id(line, cells[index["case_id"]], index["case_id"] + 1)
        elif cells and check.cross:
            check.ids.append((cells[0], line))
        if len(cells) != len(self.names):
            check.add(line, 0, f"row has {len(cells)} cells, the header has {len(self.names)}")
            return
        status = cells[index["status"]] if "status" in index else ""
        names = self.names
        bad = set()
        for i in self.checked:
            message = self._cell(line, i, names[i], cells[i], status)
            if message:
                check.add(line, i + 1, message)
                bad.add(names[i])
        row = dict(zip(names, cells, strict=True))
        repeat = check.repeats.get(row.get("case_id", ""))
        for name, message in row_problems(row, lambda n: n not in bad, repeat):
            check.add(line, index[name] + 1, message)
        if "ts_start" in index and "ts_end" in index:
            start, end = cells[index["ts_start"]], cells[index["ts_end"]]
            t0, t1 = _parse_ts(start), _parse_ts(end)
            if t0 is not None and t1 is not None and t1 < t0:
                check.add(line, index["ts_end"] + 1,
                          f"ts_end {end!r} is before ts_start {start!r}")

    def _case_id(self, line: int, case_id: str, column: int) -> None:
        if self.check.cross:  # kept for the cross-check against the cases only
            self.check.ids.append((case_id, line))
        if not CASE_ID_RE.fullmatch(case_id):
            self.check.add(line, column,
                           f"case_id {case_id!r} must be 1-128 characters of [A-Za-z0-9._-]")
        if case_id in self.seen_ids:
            self.check.add(line, column, f"case_id {case_id!r} is a duplicate of line "
                                         f"{self.seen_ids[case_id]}")
        else:
            self.seen_ids[case_id] = line

    def _cell(self, line: int, i: int, name: str, cell: str, status: str) -> str | None:
        """The problem with one cell, or None. ``case_id`` is checked apart."""
        kind = self.kinds[i]
        if name == "status":
            if cell not in STATUSES:
                return f"status {cell!r} must be OK, FAIL or TIMEOUT"
        elif name == "errors":
            if not INTEGER_RE.fullmatch(cell):
                return f"errors {cell!r} must be an integer"
            if status in ("FAIL", "TIMEOUT") and int(cell) < 1:
                return f"errors {cell!r} must be at least 1 on a {status} row"
        elif name == "violations":
            if cell and not all(_is_violation(item) for item in cell.split(VIOLATION_SEPARATOR)):
                return (f"violations {cell!r} must be empty or {VIOLATION_SEPARATOR!r}-separated "
                        "items like p95>0.1")
        elif kind == TIMESTAMP:
            if _parse_ts(cell) is None:
                return (f"{name} {cell!r} must be ISO 8601 at second precision with an offset, "
                        "like 2025-08-25T10:30:00+09:00")
        elif kind == TEXT or not cell:
            return None
        elif kind == BOOL:
            if cell != "1":
                return f"{name} {cell!r} must be 1 or empty"
        elif kind == INT:
            if not INTEGER_RE.fullmatch(cell):
                return f"{name} {cell!r} must be an integer"
        elif kind == NUMBER:
            places = self.places[i]
            if places != 2:
                if not decimals_re(places).fullmatch(cell):
                    return f"{name} {cell!r} must have {places} decimals"
                return None
            if INTEGER_RE.fullmatch(cell):
                form = 0
            elif decimals_re(2).fullmatch(cell):
                form = 1
            else:
                return f"{name} {cell!r} must be an integer or have 2 decimals"
            first = self.form.setdefault(i, (form, line))
            if first[0] != form:
                return (f"{name} {cell!r} is written as {_FORMS[form]} but line {first[1]} as "
                        f"{_FORMS[first[0]]} (a column is all integers or all 2 decimals)")
        return None


def _written_name(name: str) -> bool:
    """Whether srd could have written a column of this name: an output key or srd's own
    (``a-z 0-9 _``: keys are normalised so), or a column copied from cases.csv (an echoed
    prefix and a name of ``NAME_RE``)."""
    if METRIC_NAME_RE.fullmatch(name):
        return True
    prefix, sep, rest = name.partition("_")
    return bool(sep) and f"{prefix}_" in ECHOED_PREFIXES and bool(NAME_RE.fullmatch(rest))


def _is_violation(item: str) -> bool:
    return bool(item) and item == item.strip() and any(op in item for op in VIOLATION_OPERATORS)


def _parse_ts(cell: str) -> datetime | None:
    if not TIMESTAMP_RE.fullmatch(cell):
        return None
    try:
        return datetime.fromisoformat(cell)
    except ValueError:
        return None
