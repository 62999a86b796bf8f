"""cases.csv → validated cases (FORMAT.md §2).

``read_cases`` reads a whole file and reports every problem in it at once, each located by
line and column; a ``Case`` (``inputs.case``) is one validated row.
"""

from __future__ import annotations

import csv
import gc
import math
import os
import re
import sys
from collections.abc import Mapping
from typing import Any

from doerunner.backends import BACKENDS, Backend
from doerunner.errors import InputError, Problem
from doerunner.inputs import csvtext
from doerunner.inputs.bounded import MAX_CASES_BYTES, read_bounded
from doerunner.inputs.case import Case
from doerunner.inputs.commands import CommandCells
from doerunner.inputs.layout import Layout, quoted
from doerunner.inputs.patterns import PatternCells
from doerunner.inputs.thresholds import Threshold, parse_threshold
from doerunner.inputs.vocabulary import (
    CASE_ID_RE,
    CASE_ID_RULE,
    DEFAULT_BACKEND,
    DEFAULT_SHELL,
    DEFAULT_TIMEOUT_S,
    FALSE_WORDS,
    NAME_RE,
    NAME_RULE,
    TRUE_WORDS,
    valid_timeout,
)

__all__ = ["DEFAULT_TIMEOUT_S", "Case", "read_cases"]

_BAD_BYTE = re.compile("[\udc80-\udcff]")  # what surrogateescape turns undecodable bytes into


# --- reading cases.csv ------------------------------------------------------------------------

def read_cases(
    path: str | os.PathLike[str],
    *,
    default_backend: str = DEFAULT_BACKEND,
    default_timeout_s: float = DEFAULT_TIMEOUT_S,
    default_repeat: int = 1,
    default_warmup: int | str | None = None,
    default_hooks: Mapping[str, str | None] | None = None,
    default_shell: bool = DEFAULT_SHELL,
    check_backends: bool = True,
    notices: list[str] | None = None,
    data: bytes | None = None,
) -> list[Case]:
    """Read and validate cases.csv (FORMAT.md §2); return its cases in file order.

    ``default_backend`` applies to rows with an empty or absent ``backend`` cell and
    ``default_timeout_s`` (seconds) to rows without ``timeout_s``, ``default_repeat`` and
    ``default_warmup`` (int or ``"auto"``; None: the backend's) likewise; ``default_hooks`` (hook
    name → command template, e.g. ``{"setup": "make"}``; None or empty: none) and
    ``default_shell`` to rows whose hook or ``shell`` cell is empty. With ``check_backends``
    each case is also given to its backend's ``check()``. What was read other than it is
    written — empty columns left out, a ``;`` or tab separator — is told as one line each,
    appended to ``notices`` (when given) even when the read then fails. ``data``: the file's
    bytes, when they are in memory (generated cases: ``path`` then only names them).

    Raises ``InputError`` holding every problem found in the file (never just the first),
    and nothing else whatever the file's bytes. Cases of one read may share their ``tags``,
    ``notes`` and ``thresholds`` objects: treat them as read-only.
    """
    known = {sys.intern(name): sys.intern(name) for name in BACKENDS}
    if default_backend not in known:
        raise InputError(_unknown_backend(default_backend, known))
    if not valid_timeout(default_timeout_s):
        raise InputError(
            f"timeout must be a positive number of seconds, got {quoted(str(default_timeout_s))}")
    file = os.fsdecode(path)
    reader = _Reader(file, known[default_backend], float(default_timeout_s), known,
                     BACKENDS, check_backends, [] if notices is None else notices)
    if not (type(default_repeat) is int and default_repeat >= 1) or (default_warmup not in (
            None, "auto") and not (type(default_warmup) is int and default_warmup >= 0)):
        raise InputError(f"bad default repeat {default_repeat!r} or warmup {default_warmup!r}")
    reader.default_repeat = default_repeat
    if default_warmup is not None:
        reader.default_warmup = dict.fromkeys(known, default_warmup)
    reader.commands = CommandCells(default_hooks, default_shell, reader.problems)
    if data is None:
        data = read_bounded(path, file, MAX_CASES_BYTES)
    return reader.read(csvtext.decode(file, data))


def _unknown_backend(name: str, known: Mapping[str, str]) -> str:
    return f"unknown backend {quoted(name)} (known: {', '.join(sorted(known))})"


class _Reader(Layout):
    """One read of one file: the header's layout, the problems found, what rows have shown."""

    def __init__(self, file: str, default_backend: str, default_timeout_s: float,
                 known: dict[str, str], installed: Mapping[str, type[Backend]],
                 check: bool, notices: list[str]) -> None:
        self.file = file
        self.notices = notices
        self.default_backend = default_backend
        self.default_timeout_s = default_timeout_s
        self.known = known
        self.installed = installed
        # A backend's own default warm-up (hf: auto) for rows without a warmup cell.
        self.default_warmup = {name: installed[name].DEFAULT_WARMUP for name in known}
        self.default_repeat = 1
        self.check = check
        self.problems: list[Problem] = []
        self.nul_seen = False
        self.ids: dict[str, int] = {}  # lower-cased case id -> its line
        self.spelled: dict[str, str] = {}  # lower-cased case id -> the id, where they differ
        self.all_tags: set[str] = set()
        self.strings = _Pool()  # one object for each repeated value
        self.tag_maps: dict[frozenset[str], dict[str, bool]] = {}
        # tag cells -> the tag map they give, or the problems they hold as (column, message)
        self.tag_memo: dict[tuple[str, ...], dict[str, bool] | list[tuple[int, str]]] = {}
        self.no_tags = self.tag_maps[frozenset()] = {}
        self.no_notes: dict[str, str] = {}
        self.threshold_memo: dict[tuple[int, str], tuple[Threshold, ...]] = {}
        self.metric_cells = PatternCells(n for n in known if installed[n].PARSES_OUTPUT)
        self.commands = CommandCells(None, DEFAULT_SHELL, self.problems)

    def add(self, line: int, column: int, message: str) -> None:
        self.problems.append(Problem(self.file, line, column, message))

    # -- the whole file -----------------------------------------------------------------------

    def read(self, decoded: tuple[str, bool]) -> list[Case]:
        text, bad_bytes = decoded
        self.text = text
        self.bad_bytes = bad_bytes
        self.has_nul = "\0" in text
        cases: list[Case] = []
        old_limit = csv.field_size_limit(csvtext.MAX_FIELD_CHARS)
        # Every row makes a few containers and none is garbage, so the cyclic collector would
        # only walk the growing list again and again (a third of the time for 100,000 rows).
        gc_was_on = gc.isenabled()
        gc.disable()
        try:
            self._rows(cases)
        finally:
            if gc_was_on:
                gc.enable()
            csv.field_size_limit(old_limit)
        self.end_of_rows()
        if cases:
            self._finish(cases)
            for name in csvtext.decimal_comma_params(c.params for c in cases):
                self.notices.append(f"{self.file}: parameter {name!r} holds numbers with a "
                                    "decimal comma (0,5): commands get them as written; "
                                    "write 0.5 where a command expects a point")
        if self.problems:
            self.problems.sort(key=lambda p: (p.line, p.column))
            raise InputError(self.problems)
        return cases

    def _rows(self, cases: list[Case]) -> None:
        text = self.text
        lines = csvtext.lines(text)
        sep = csvtext.separator(text)
        if sep != ",":
            self.notices.append(f"{self.file}: read as {csvtext.SEPARATORS[sep]}-separated")
        self.locator = csvtext.Locator(text, sep)
        reader = csv.reader(lines, strict=True, delimiter=sep)
        base = 0  # lines consumed outside the csv reader (skipped after a csv error)
        end = 0  # last line of the previous row
        header_seen = False
        rows_seen = False
        only_comments = False
        check_cells = self.bad_bytes or self.has_nul
        read_row = self._row
        append = cases.append
        while True:
            try:
                for row in reader:
                    start = end + 1
                    end = reader.line_num + base
                    bad = self._bad_cells(row, start) if check_cells else ()
                    first = row[0].lstrip() if row else ""
                    if first.startswith("#"):
                        only_comments = True
                        continue
                    if not first and all(not c or c.isspace() for c in row):
                        continue
                    if not header_seen:
                        header_seen = True
                        before = len(self.problems)
                        self.read_header(row, start, bad)
                        # Backends judge a case by its columns: not when they are in doubt.
                        self.check = self.check and not bad and len(self.problems) == before
                    elif bad:
                        rows_seen = True
                    else:
                        rows_seen = True
                        case = read_row(row, start)
                        if case is not None:
                            append(case)
                break
            except csv.Error as e:
                start = end + 1
                end = reader.line_num + base
                row_end = self._csv_error(str(e), start, end)
                if not header_seen:
                    return
                rows_seen = True
                if row_end > end:  # a field ran over several lines: go on after its row
                    for _ in range(row_end - end):
                        next(lines, None)
                    base += row_end - end
                    end = row_end
        if not header_seen:
            self.add(0, 0, "no header row: the file holds only comments" if only_comments
                     else "file is empty")
        elif not rows_seen:
            self.add(0, 0, "no cases: the file has a header but no rows")

    def _bad_cells(self, row: list[str], start: int) -> set[int]:
        """Report undecodable bytes and NULs; return the 0-based columns that hold any."""
        bad = set()
        line = start
        for col, cell in enumerate(row, 1):
            if self.bad_bytes and (m := _BAD_BYTE.search(cell)):
                byte = ord(m.group()) - 0xDC00
                self.add(line + cell.count("\n", 0, m.start()), col,
                         f"not valid UTF-8 (byte 0x{byte:02x})")
                bad.add(col - 1)
            if self.has_nul and (i := cell.find("\0")) >= 0:
                if not self.nul_seen:
                    self.nul_seen = True
                    self.add(line + cell.count("\n", 0, i), col, "NUL byte in file")
                bad.add(col - 1)
            line += cell.count("\n")
        return bad

    # -- csv errors ---------------------------------------------------------------------------

    def _csv_error(self, message: str, start: int, at: int) -> int:
        """Report the csv module's error on the row that begins at line ``start`` (found at
        line ``at``); return the row's last line as csv would read it without the error."""
        found = self.locator.locate(self.locator.offset_of(start), start)
        if found is None:
            self.add(at, 0, f"malformed CSV: {message}")
            return at
        line, col, problem, row_end = found
        self.add(line, col, problem)
        return row_end

    # -- one row ------------------------------------------------------------------------------

    def _row(self, row: list[str], line: int) -> Case | None:
        if (len(row) != self.ncols or self.width != self.ncols) and not self.fits(row, line):
            return None
        problems = self.problems
        before = len(problems)
        add = self.add
        pooled = self.strings.__getitem__
        # Locals, not dict look-ups: this runs once per row and rows may be many.
        i_id, i_backend, i_cmd, i_timeout, i_repeat, i_warmup = self.reserved_at

        case_id = row[i_id].strip() if i_id >= 0 else ""
        if i_id < 0:
            pass  # reported once, with the header
        elif not case_id:
            add(line, i_id + 1, "case_id: missing value")
        elif not CASE_ID_RE.fullmatch(case_id):
            add(line, i_id + 1, f"case_id {quoted(case_id)} is not allowed: {CASE_ID_RULE}")
        elif case_id == "." or case_id == "..":
            add(line, i_id + 1,
                f"case_id {quoted(case_id)} is not allowed: '.' and '..' name folders")
        else:
            key = case_id.lower()
            if key == case_id:
                key = case_id  # keep only the string the case holds anyway
            first = self.ids.setdefault(key, line)
            if first == line:  # new: lines only grow
                if key is not case_id:
                    self.spelled[key] = case_id
            else:
                spelled = self.spelled.get(key, key)
                if spelled == case_id:
                    add(line, i_id + 1, f"case_id {quoted(case_id)} duplicates line {first}")
                else:
                    add(line, i_id + 1, f"case_id {quoted(case_id)} duplicates "
                                        f"{quoted(spelled)} on "
                                        f"line {first} (case ids name files; case is ignored)")

        value = row[i_backend].strip() if i_backend >= 0 else ""
        backend = self.known.get(value) if value else self.default_backend
        if backend is None:
            add(line, i_backend + 1, _unknown_backend(value, self.known))

        cmd = row[i_cmd] if i_cmd >= 0 else ""
        cmd = pooled(cmd) if cmd and not cmd.isspace() else None

        timeout_s = self.default_timeout_s
        if i_timeout >= 0 and (value := row[i_timeout].strip()):
            try:
                timeout_s = float(value)
            except ValueError:
                timeout_s = math.nan
            if not valid_timeout(timeout_s):
                add(line, i_timeout + 1, "timeout_s must be a positive number of seconds, "
                    f"got {quoted(value)}{csvtext.decimal_comma_hint(value)}")

        repeat = self.default_repeat
        if i_repeat >= 0 and (value := row[i_repeat].strip()):
            repeat = _digits(value)
            if repeat < 1:
                add(line, i_repeat + 1, f"repeat must be an integer >= 1, got {quoted(value)}")

        warmup = self.default_warmup[backend] if backend is not None else 0
        if i_warmup >= 0 and (value := row[i_warmup].strip()):
            if value.lower() == "auto":
                warmup = "auto"
            elif (warmup := _digits(value)) < 0:
                add(line, i_warmup + 1,
                    f"warmup must be an integer >= 0 or 'auto', got {quoted(value)}")

        params = dict(zip(self.param_names, map(pooled, self.param_cells(row)), strict=True))
        tags = self.no_tags
        if self.tag_at:
            cells = self.tag_cells(row)
            tags = self.tag_memo.get(cells)
            if tags is None:
                tags = self._tags(cells)
            if type(tags) is list:
                for col, message in tags:
                    add(line, col, message)
        notes = {name: pooled(row[i]) for i, name in self.note_cols} if self.note_cols \
            else self.no_notes
        thresholds = self._thresholds(row, line) if self.threshold_cols else ()
        patterns = self.metric_cells.read(self.metric_cols, row, line, backend, add) \
            if self.metric_cols else ()
        commands = self.commands.read(row, line, params, self.shell_at, self.hooks_at, add) \
            if self.commands.defaults or self.shell_at >= 0 or self.hooks_at \
            else self.commands.plain  # shell, setup, prepare, cleanup

        if len(problems) != before or i_id < 0 or backend is None:
            return None
        return Case(case_id, backend, cmd, timeout_s, repeat, warmup, params, tags, notes,
                    thresholds, line, patterns, *commands)  # type: ignore[arg-type]

    def _tags(self, cells: tuple[str, ...]) -> dict[str, bool] | list[tuple[int, str]]:
        """The tag map for these cells of the ``tag_at`` columns, or their problems as
        (column, message). Rows mostly repeat a few tag cells, so each is parsed once, and
        rows marking the same tags share one map (``_finish`` fills it)."""
        marked, faults = self._parse_tags(cells)
        found: dict[str, bool] | list[tuple[int, str]] = faults
        if not faults:
            found = self.tag_maps.setdefault(marked, {})
        self.tag_memo[cells] = found
        return found

    def _parse_tags(self, cells: tuple[str, ...]) -> tuple[frozenset[str], list[tuple[int, str]]]:
        """(tags marked, [(column, problem)]) for the cells of the columns in ``tag_at``."""
        marked: list[str] = []
        faults: list[tuple[int, str]] = []
        i_tags = self.reserved.get("tags", -1)
        for i, cell in zip(self.tag_at, cells, strict=True):
            if i == i_tags:
                for name in cell.replace(";", " ").split():
                    if NAME_RE.fullmatch(name):
                        name = self.strings[name]
                        marked.append(name)
                        self.all_tags.add(name)
                    else:
                        faults.append((i + 1, f"tag name {quoted(name)} is not allowed: "
                                              f"{NAME_RULE}"))
                continue
            name = self.tag_names[i]
            value = cell.strip().lower()
            if value in TRUE_WORDS:
                marked.append(name)
            elif value not in FALSE_WORDS:
                faults.append((i + 1, f"tag_{name} must be 1, true, yes or x to mark the tag "
                                      "(empty, 0, false or no not to), got "
                                      f"{quoted(cell.strip())}"))
        return frozenset(marked), faults

    def _thresholds(self, row: list[str], line: int) -> tuple[Threshold, ...] | None:
        """The row's thresholds, parsed once per distinct cell; None when one does not parse."""
        out: tuple[Threshold, ...] = ()
        for i, metric in self.threshold_cols:
            cell = row[i]
            if not cell.strip():
                continue
            found = self.threshold_memo.get((i, cell))
            if found is None:
                try:
                    found = (parse_threshold(metric, cell),)
                except ValueError as e:
                    self.add(line, i + 1, str(e).replace(repr(cell), quoted(cell)))
                    return None
                self.threshold_memo[(i, cell)] = found
            out += found
        return out

    # -- after the last row -------------------------------------------------------------------

    def _finish(self, cases: list[Case]) -> None:
        """Fill the shared tag maps now that every tag name is known, then ask the backends."""
        names = sorted(self.all_tags)
        for marked, tags in self.tag_maps.items():
            tags.update({name: name in marked for name in names})
        if not self.check:
            return
        checkers: dict[str, Any] = {}
        for case in cases:
            cls = self.installed.get(case.backend)
            if cls is None:
                continue
            checker = checkers.get(case.backend)
            if checker is None:
                checker = checkers[case.backend] = cls()
            for column, message in checker.check(case):
                # A backend may name a parameter ("sleep_s") given as "param_sleep_s".
                col = self.columns.get(column) or self.param_columns.get(column, 0)
                self.add(case.line, col, message)


def _digits(text: str) -> int:
    """``text`` as a non-negative decimal integer, or -1 when it is not one."""
    if not (text.isascii() and text.isdigit()):
        return -1
    try:
        return int(text)
    except ValueError:  # more digits than int() converts
        return -1


class _Pool(dict):  # type: ignore[type-arg]
    """``pool[s]`` is the first string equal to ``s`` seen: repeated cells share one object.
    (Not ``sys.intern``: interned strings may outlive the read.)"""

    def __missing__(self, key: str) -> str:
        self[key] = key
        return key
