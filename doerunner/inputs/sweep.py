"""Sweeps without a file: ``srd run -L NAME V1,V2 -P NAME LO HI -- COMMAND`` → cases.

Several commands are compared, as hyperfine compares them (each a case, or a sweep), with
hyperfine's ``-L``/``--parameter-list`` and ``-P``/``--parameter-scan`` (with ``--step``,
hyperfine's ``-D``), several of each, combined as a full factorial nested in the order
written: the first is the outer loop, the last varies fastest. ``build_sweep`` checks
everything at once (``InputError``, one line per problem, nothing created);
``Sweep.table`` is the cases.csv they make (``inputs.sources`` reads it with the one
cases.csv reader, and keeps it in the run directory).

Range values are computed in decimal arithmetic, so ``0.1 0.3 --step 0.1`` gives ``0.1``,
``0.2``, ``0.3`` (never ``0.30000000000000004``), each in its shortest form (``2``, not
``2.0``). Case ids are made from the values (``case_ids``, FORMAT.md §2).
"""

from __future__ import annotations

import itertools
import math
import re
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, DivisionImpossible, InvalidOperation, localcontext

from doerunner.errors import InputError, Problem
from doerunner.inputs.csvtext import decimal_comma_hint
from doerunner.inputs.template import unknown_message, unknown_placeholders
from doerunner.inputs.vocabulary import (
    CASE_ID_RE,
    NAME_RE,
    NAME_RULE,
    RESERVED,
    classify_column,
    id_word,
    near_miss,
    param_env_name,
)

MAX_CASES = 100_000  # hyperfine's limit for one -P; here for the whole sweep
DEFAULT_STEP = "1"
MAX_ID = 128  # CASE_ID_RE's length

# The option that sets what a reserved column would: named when -L/-P uses that name.
_SETTING = {"repeat": "-r", "warmup": "-w", "timeout_s": "--timeout", "backend": "--backend",
            "shell": "--no-shell", "setup": "--setup", "prepare": "--prepare",
            "cleanup": "--cleanup"}
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")


@dataclass(frozen=True, slots=True)
class ListAxis:
    """``-L NAME V1,V2,...``: the values, comma-separated, as written."""

    name: str
    values: str


@dataclass(frozen=True, slots=True)
class RangeAxis:
    """``-P NAME LO HI``: LO to HI inclusive, in steps of the ``--step`` that goes with it."""

    name: str
    low: str
    high: str


Axis = ListAxis | RangeAxis


@dataclass(frozen=True, slots=True)
class Sweep:
    """A validated sweep: the command templates (several are compared, as hyperfine compares
    them) and each parameter's values, in the order written. Without parameters it is one
    case per command."""

    commands: tuple[str, ...]
    names: tuple[str, ...]
    values: tuple[tuple[str, ...], ...]

    @property
    def size(self) -> int:
        """How many cases: the commands times the product of the numbers of values."""
        return len(self.commands) * math.prod(len(v) for v in self.values)

    def points(self) -> Iterator[tuple[str, ...]]:
        """Every combination of values, the last parameter varying fastest."""
        return itertools.product(*self.values)

    def table(self) -> tuple[list[str], list[list[str]]]:
        """The cases.csv this sweep makes: ``case_id``, ``cmd``, then one column per
        parameter (``param_<name>`` where the bare name would be read as something else);
        command after command, each over every point."""
        header = ["case_id", "cmd", *(_param_header(n) for n in self.names)]
        points = list(self.points())
        rows = [(c, p) for c in self.commands for p in points]
        return header, [[i, c, *p] for i, (c, p) in zip(case_ids(self, rows), rows,
                                                         strict=True)]


def build_sweep(commands: Sequence[str], axes: Sequence[Axis],
                steps: Sequence[str] = ()) -> Sweep:
    """The sweep of each of ``commands`` over ``axes`` (in the order written). ``steps``:
    the ``--step`` values, none (1), one (for every ``-P``) or one per ``-P`` in order.

    Raises ``InputError`` with every problem, one line each: a bad or repeated name, an
    empty list or a value listed twice, a range that is not numeric or is empty, a step
    that is not above 0, more than ``MAX_CASES`` cases, a ``{name}`` naming no parameter.
    """
    problems: list[str] = []
    for command in commands:
        if not command.strip():
            problems.append("a command after -- is empty")
    if len(set(commands)) < len(commands):
        problems.append("a command is given twice after --")
    step_for = iter(_steps(steps, sum(isinstance(a, RangeAxis) for a in axes), problems))
    names: list[str] = []
    values: list[tuple[str, ...]] = []
    envs: dict[str, str] = {}
    for axis in axes:
        option = "-L" if isinstance(axis, ListAxis) else "-P"
        where = f"{option} {shlex.quote(axis.name)}"
        bad = _name_problem(axis.name)
        if bad is None and axis.name in names:
            bad = f"parameter {axis.name!r} is given twice"
        if bad is None:
            env = param_env_name(axis.name)
            if env in envs:
                bad = f"parameters {envs[env]!r} and {axis.name!r} both become {env}"
            else:
                envs[env] = axis.name
        if bad is not None:
            problems.append(f"{where}: {bad}")
        if isinstance(axis, ListAxis):
            found = _list_values(axis.values, where, problems)
        else:
            found = _range_values(axis, next(step_for, None), where, problems)
        if bad is None:
            names.append(axis.name)
            values.append(found or ("",))
    count = len(commands) * math.prod(len(v) for v in values)
    if count > MAX_CASES:
        sizes = " x ".join(str(len(v)) for v in ([commands] if len(commands) > 1 else [])
                           + values)
        problems.append(f"-L/-P make {sizes} = {count} cases (at most {MAX_CASES})")
    for command in commands:
        for name in unknown_placeholders(command, [a.name for a in axes]):
            problems.append(unknown_message(name, names))
    if problems:
        raise InputError([Problem("", 0, 0, p) for p in problems])
    return Sweep(tuple(commands), tuple(names), tuple(values))


def _name_problem(name: str) -> str | None:
    if not NAME_RE.fullmatch(name):
        return f"a parameter name must {NAME_RULE}"
    if name in RESERVED:
        setting = _SETTING.get(name)
        hint = f"set it with {setting}" if setting else "name the parameter otherwise"
        return f"{name!r} is a reserved column of cases.csv, not a parameter ({hint})"
    return None


def _param_header(name: str) -> str:
    """The cases.csv column of parameter ``name``: the bare name when the reader takes it
    for that parameter, else ``param_<name>`` (``timeout``, ``tag_x``)."""
    column = classify_column(name)
    if column.kind == "param" and not column.prefix and near_miss(name) is None:
        return name
    return f"param_{name}"


def _steps(steps: Sequence[str], ranges: int, problems: list[str]) -> list[Decimal | None]:
    """One step per ``-P``, in order (None where the step is bad: reported)."""
    if not steps:
        return [Decimal(DEFAULT_STEP)] * ranges
    if not ranges:
        problems.append("--step needs -P (a range)")
        return []
    if len(steps) not in (1, ranges):
        problems.append(f"--step is given {len(steps)} times for {ranges} -P ranges: give it "
                        "once (for every -P) or once per -P, in order")
        return [None] * ranges
    parsed: list[Decimal | None] = []
    for text in steps:
        step = _number(text)
        if step is None or step <= 0:
            problems.append(f"--step {text!r}: the step must be a number above 0"
                            + decimal_comma_hint(text))
            step = None
        parsed.append(step)
    return parsed * ranges if len(parsed) == 1 else parsed


def _list_values(text: str, where: str, problems: list[str]) -> tuple[str, ...]:
    """``-L`` values: cut at commas, surrounding spaces dropped (hyperfine's rule, with
    the spaces people type after a comma forgiven)."""
    if not text.strip():
        problems.append(f"{where}: the list of values is empty")
        return ()
    values = [v.strip() for v in text.split(",")]
    seen: set[str] = set()
    for v in values:
        if v in seen:
            problems.append(f"{where}: value {v!r} is listed twice")
            return ()
        seen.add(v)
    return tuple(values)


def _range_values(axis: RangeAxis, step: Decimal | None, where: str,
                  problems: list[str]) -> tuple[str, ...]:
    """``-P`` values: LO, LO + step, ... up to HI inclusive, in exact decimal arithmetic."""
    low, high = _number(axis.low), _number(axis.high)
    for which, text, value in (("LO", axis.low, low), ("HI", axis.high, high)):
        if value is None:
            problems.append(f"{where}: {which} {text!r} is not a decimal number (like 8, -2 "
                            "or 0.5)" + decimal_comma_hint(text))
    if low is None or high is None:
        return ()
    if low > high:
        problems.append(f"{where}: LO {axis.low} is above HI {axis.high} (an empty range)")
        return ()
    if step is None:
        return ()
    digits = sum(len(t) for t in (axis.low, axis.high, str(step))) * 2 + 20
    with localcontext() as ctx:
        ctx.prec = digits  # exact: no rounding of these sums and products
        try:
            count = int((high - low) // step) + 1
        except (DivisionImpossible, InvalidOperation):
            count = MAX_CASES + 1
        if count > MAX_CASES:
            problems.append(f"{where}: {axis.low} to {axis.high} in steps of {_plain(step)} "
                            f"is more than {MAX_CASES} values")
            return ()
        return tuple(_plain(low + i * step) for i in range(count))


def _number(text: str) -> Decimal | None:
    """``text`` as a decimal number (digits, an optional sign and decimal point), else None."""
    text = text.strip()
    return Decimal(text) if _NUMBER.fullmatch(text) else None


def _plain(value: Decimal) -> str:
    """The shortest decimal form of ``value``: ``2`` for 2.0, ``0.3`` for 0.30, never an
    exponent, never ``-0``."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


# --- case ids -------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{[A-Za-z0-9_.-]+\}")


def case_ids(sweep: Sweep, rows: Sequence[tuple[str, tuple[str, ...]]]) -> list[str]:
    """The ids of the cases ``rows`` (command, point) (FORMAT.md §2): ``<name>-<value>`` per
    parameter, joined by ``_`` (``level-6_size-4``); without parameters, the command itself;
    with several commands, the command then the values (``sleep_0.1_n-2``). Runs of
    characters outside ``A-Za-z0-9._-`` become one ``_``, ids are cut at 128 characters,
    and an id met again (ignoring case) gets ``-2``, ``-3``... (the lowest that is free)."""

    def words(command: str) -> str:  # the command's text, its placeholders left out
        text = id_word(_PLACEHOLDER.sub("", command)).strip("._-")
        return text[:MAX_ID].rstrip("._-") or "cmd"

    several = len(sweep.commands) > 1
    natural = []
    for command, p in rows:
        values = "_".join(f"{n}-{id_word(v)}"
                          for n, v in zip(sweep.names, p, strict=True))
        parts = [words(command)] if several or not values else []
        natural.append("_".join(parts + ([values] if values else []))[:MAX_ID])
    taken = {i.lower() for i in natural}
    seen: set[str] = set()
    out = []
    for base in natural:
        key = base.lower()
        if key in seen:
            k = 2
            while True:
                suffix = f"-{k}"
                candidate = base[:MAX_ID - len(suffix)] + suffix
                if candidate.lower() not in taken:
                    break
                k += 1
            base, key = candidate, candidate.lower()
            taken.add(key)
        seen.add(key)
        assert CASE_ID_RE.fullmatch(base), base
        out.append(base)
    return out
