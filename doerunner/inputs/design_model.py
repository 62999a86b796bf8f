"""The validated design of ``srd design`` (``Design``, ``Factor``, ``Range``), the cases it
generates (``Generated``), and the rules for the values in a design.yaml: which YAML values
are levels, when two are the same, how one becomes a cases.csv cell."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from doerunner.inputs.vocabulary import RESERVED

DESIGNS = ("full", "fractional", "plackett-burman", "lhs", "zip")
CRITERIA = ("maximin", "center", "centermaximin", "correlation")
TOP_KEYS = ("design", "factors", "generator", "resolution", "samples", "criterion",
            "replicates", "randomize", "seed", "prefix", "id", "exclude", "template")
MAX_POINTS = 1_000_000  # more rows than anyone runs; stops a typo from eating the memory
DEFAULT_SEED = 0
DEFAULT_PREFIX = "case"

TEMPLATE_FIRST = RESERVED[1:]  # backend, cmd, timeout_s, repeat, warmup, tags, shell, hooks
RANGE_KEYS = ("min", "max", "integer")
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    "==": lambda a, b: same(a, b), "!=": lambda a, b: not same(a, b),
    "in": lambda a, b: any(same(a, x) for x in b),
}
ORDERING = ("<", "<=", ">", ">=")


# --- the validated design -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Range:
    """A continuous factor for ``lhs``: ``low``..``high``; integers only when ``integer``."""

    low: float
    high: float
    integer: bool


@dataclass(frozen=True, slots=True)
class Factor:
    """One factor: its levels (YAML scalars, in order) or a ``Range``."""

    name: str
    levels: tuple[Any, ...] | Range
    line: int


@dataclass(frozen=True, slots=True)
class Design:
    """A validated design.yaml. ``exclude`` holds rules as {factor: [(operator, value)]};
    ``template`` maps column names to their cell text, in YAML order; ``id_template`` (the
    ``id`` key) makes the case ids from the factors' values instead of ``prefix``."""

    file: str
    kind: str
    factors: tuple[Factor, ...]
    generator: str | None = None
    resolution: int | None = None
    samples: int | None = None
    criterion: str | None = None
    replicates: int = 1
    randomize: bool = True
    seed: int = DEFAULT_SEED
    prefix: str = DEFAULT_PREFIX
    id_template: str | None = None  # `id`: case ids from {factor} placeholders
    exclude: tuple[dict[str, list[tuple[str, Any]]], ...] = ()
    template: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)  # top-level key -> line


@dataclass(frozen=True, slots=True)
class Generated:
    """The cases of a design, in run order: ``header`` and one tuple of cells per case."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    kind: str
    points: int  # design points kept after exclusions, before replicates
    excluded: int
    replicates: int
    randomized: bool
    seed: int

    def summary(self) -> str:
        """One line: how many cases, which design, how they are ordered."""
        kind = {"full": "full factorial", "lhs": "Latin hypercube"}.get(self.kind, self.kind)
        parts = [f"{len(self.rows)} {'case' if len(self.rows) == 1 else 'cases'}",
                 f"design {kind}: {self.points} points"]
        if self.excluded:
            parts.append(f"{self.excluded} excluded")
        if self.replicates > 1:
            parts.append(f"{self.replicates} replicates")
        parts.append(f"run order randomized with seed {self.seed}" if self.randomized
                     else "design order")
        return ", ".join(parts)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (str, int, bool))


def same(a: Any, b: Any) -> bool:
    """Equal as YAML values, or as the cells they become (8 and "8", 0.5 and "0.5")."""
    if is_number(a) and is_number(b):
        return a == b
    return (type(a) is type(b) and a == b) or cell(a) == cell(b)


def cell(value: Any) -> str:
    """A YAML scalar as a cases.csv cell: numbers in their shortest form (``8``, ``0.5``,
    ``2.0`` → ``2``), booleans as ``true``/``false``, strings verbatim."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        text = repr(value)
        if "e" in text:  # positional, not 1e-05: commands rarely parse exponents
            import numpy as np

            text = np.format_float_positional(value, trim="-")
        return text
    return str(value)


def show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else cell(value) if is_scalar(value) \
        else repr(value)
