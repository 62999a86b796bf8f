"""What ``srd validate`` checks across the cells of one metrics.csv row, beyond each cell's
own shape (``outputs.validate``): srd's own columns agree with each other and with the case
(FORMAT.md §3, "Columns a command cannot set").

* counts and measures srd writes are never negative (``columns.NON_NEGATIVE``);
* integers fit 64 bits (srd writes a larger number as a decimal);
* ``runs`` is written for a case measured more than once: at least 2 on an OK row, and with
  the cases at hand equal to the case's ``repeat`` there (empty for ``repeat`` 1), at most
  ``repeat`` on any row; ``attempts`` is at least 1;
* an OK row has ``exit_code`` 0 or empty and no ``message``; only an OK row has
  ``violations``;
* ``energy_adjusted_j`` is at most ``energy_raw_j``; ``run_seconds`` and
  ``run_seconds_median`` lie between ``run_seconds_min`` and ``run_seconds_max``, and on an
  OK row with those statistics ``run_seconds`` and ``runs`` are not empty;
* ``timeseries_path`` is relative, with ``..`` only at its start (as ``os.path.relpath``
  writes it);
* no text cell but those copied from cases.csv holds a control character (srd removes
  them from what a case printed).

Each rule reads cells that already passed their own check; a rule whose cells did not is
skipped (one problem per mistake).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal

from doerunner.cells import INT64_MAX, INT64_MIN, control_character
from doerunner.columns import (
    INT,
    INTEGER_RE,
    NON_NEGATIVE,
    NON_NEGATIVE_PREFIXES,
    NUMBER,
    TEXT,
    copied_from_input,
    kind_of,
)


def row_problems(cells: Mapping[str, str], good: Callable[[str], bool],
                 repeat: int | None) -> Iterator[tuple[str, str]]:
    """``(column, message)`` for each cross-cell rule the row breaks. ``cells``: the row by
    column name; ``good(name)``: whether that cell passed its own check; ``repeat``: the
    case's ``repeat`` when the cases are known, else None."""
    status = cells.get("status", "")
    for name, cell in cells.items():
        if not cell:
            continue
        kind = kind_of(name)
        if kind == TEXT:
            if not copied_from_input(name):
                bad = control_character(cell)
                if bad is not None:
                    yield name, (f"{name} {cell!r} holds a control character ({bad}); srd "
                                 "removes them from what it writes")
            continue
        if not good(name) or kind not in (INT, NUMBER):
            continue
        if INTEGER_RE.fullmatch(cell) and len(cell) > 18 and \
                not INT64_MIN <= int(cell) <= INT64_MAX:
            yield name, f"{name} {cell!r} does not fit a 64-bit integer"
        elif cell.startswith("-") and (name in NON_NEGATIVE
                                       or name.startswith(NON_NEGATIVE_PREFIXES)):
            yield name, f"{name} {cell!r} must not be negative"
    yield from _runs(cells, good, status, repeat)
    if status == "OK":
        code = cells.get("exit_code", "")
        if code not in ("", "0") and good("exit_code"):
            yield "exit_code", f"exit_code {code!r} must be 0 or empty on an OK row"
        if cells.get("message"):
            yield "message", f"message {cells['message']!r} must be empty on an OK row"
    elif cells.get("violations") and status in ("FAIL", "TIMEOUT"):
        yield "violations", (f"violations {cells['violations']!r} must be empty on a {status} "
                             "row (thresholds are checked on OK rows)")
    adjusted, raw = _number(cells, good, "energy_adjusted_j"), _number(cells, good,
                                                                       "energy_raw_j")
    if adjusted is not None and raw is not None and adjusted > raw:
        yield "energy_adjusted_j", (f"energy_adjusted_j {cells['energy_adjusted_j']!r} is more "
                                    f"than energy_raw_j {cells['energy_raw_j']!r}")
    yield from _spread(cells, good, status)
    path = cells.get("timeseries_path", "")
    if path and (path.startswith("/") or ".." in path.split("/")[_leading_up(path):]):
        yield "timeseries_path", (f"timeseries_path {path!r} must be a relative path without "
                                  "'..' after its start (srd writes it relative to the "
                                  "metrics file)")


def _leading_up(path: str) -> int:
    """How many ``..`` components ``path`` starts with."""
    n = 0
    for part in path.split("/"):
        if part != "..":
            break
        n += 1
    return n


def _spread(cells: Mapping[str, str], good: Callable[[str], bool], status: str
            ) -> Iterator[tuple[str, str]]:
    """run_seconds and its statistics agree: the mean and the median between the minimum
    and the maximum; statistics only beside run_seconds and runs."""
    spread = [n for n in ("run_seconds_min", "run_seconds_max", "run_seconds_median")
              if cells.get(n)]
    if status == "OK" and spread:
        for name in ("run_seconds", "runs"):
            if name in cells and not cells[name]:
                yield name, (f"{name} must not be empty beside {spread[0]} "
                             f"{cells[spread[0]]!r}")
    low, high = (_number(cells, good, "run_seconds_min"),
                 _number(cells, good, "run_seconds_max"))
    if status != "OK" or low is None or high is None:
        return
    for name in ("run_seconds", "run_seconds_median"):
        value = _number(cells, good, name)
        if value is not None and not low <= value <= high:
            yield name, (f"{name} {cells[name]!r} is not between run_seconds_min "
                         f"{cells['run_seconds_min']!r} and run_seconds_max "
                         f"{cells['run_seconds_max']!r}")


def _runs(cells: Mapping[str, str], good: Callable[[str], bool], status: str,
          repeat: int | None) -> Iterator[tuple[str, str]]:
    attempts = cells.get("attempts", "")
    if attempts and good("attempts") and INTEGER_RE.fullmatch(attempts) and int(attempts) < 1:
        yield "attempts", f"attempts {attempts!r} must be at least 1"
    runs = cells.get("runs", "")
    if not good("runs") or not INTEGER_RE.fullmatch(runs or "0"):
        return
    n = int(runs) if runs else None
    if status == "OK" and repeat is not None:
        if repeat > 1 and n is not None and n != repeat:
            yield "runs", f"runs {runs!r} must equal the case's repeat ({repeat}) on an OK row"
        elif repeat == 1 and n is not None:
            yield "runs", "runs " + repr(runs) + " must be empty: the case's repeat is 1"
    elif n is not None and repeat is not None and n > repeat:
        yield "runs", f"runs {runs!r} must be at most the case's repeat ({repeat})"
    elif status == "OK" and n is not None and n < 2:
        yield "runs", (f"runs {runs!r} must be at least 2 on an OK row (it is written for a "
                       "case measured more than once)")


def _number(cells: Mapping[str, str], good: Callable[[str], bool], name: str) -> Decimal | None:
    cell = cells.get(name, "")
    if not cell or not good(name):
        return None
    try:
        return Decimal(cell)
    except ArithmeticError:
        return None
